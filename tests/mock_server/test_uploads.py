"""Upload ticket + PUT target, the legacy multipart upload, and downloading what was uploaded."""

from __future__ import annotations

import httpx
import pytest

from contracts import Paths, UploadTicketResponse
from mock_server.mock import WavespeedMock
from mock_server.output import sample_mp4
from tests.mock_server.conftest import poll_data, submit_ok


def test_ticket_put_download_and_use_as_input(api: httpx.Client, wavespeed_mock: WavespeedMock) -> None:
    payload = sample_mp4()
    r = api.post(
        Paths.UPLOAD_TICKET,
        json={"filename": "face clip.mp4", "size": len(payload), "content_type": "video/mp4"},
    )
    assert r.status_code == 200 and r.json()["code"] == 200
    ticket = UploadTicketResponse.model_validate(r.json()).data
    assert (ticket.type, ticket.filename, ticket.size, ticket.upload.method) == (
        "video",
        "face clip.mp4",
        len(payload),
        "PUT",
    )
    assert ticket.upload.headers == {"Content-Type": "video/mp4"}
    assert ticket.download_url.endswith("/face%20clip.mp4")
    # Like a presigned URL: the PUT carries only the ticket's headers, no API key.
    put = httpx.put(ticket.upload.url, content=payload, headers=ticket.upload.headers)
    assert put.status_code == 200
    got = httpx.get(ticket.download_url)
    assert (got.status_code, got.content, got.headers["content-type"]) == (200, payload, "video/mp4")
    pid = submit_ok(api, video=ticket.download_url)["id"]
    assert poll_data(api, pid)["status"] == "processing"
    kinds = [e.kind for e in wavespeed_mock.journal]
    assert kinds == ["upload_ticket", "upload_put", "download", "submit", "poll"]


def test_download_before_put_is_404_and_size_mismatch_is_400(api: httpx.Client) -> None:
    ticket = api.post(Paths.UPLOAD_TICKET, json={"filename": "a.wav", "size": 4}).json()["data"]
    assert ticket["type"] == "file" and ticket["upload"]["headers"] == {}
    assert httpx.get(ticket["download_url"]).status_code == 404
    r = httpx.put(ticket["upload"]["url"], content=b"12345")
    assert r.status_code == 400 and "declared 4 bytes, got 5" in r.json()["message"]
    assert httpx.put(ticket["upload"]["url"], content=b"1234").status_code == 200
    assert (
        httpx.put(ticket["upload"]["url"].replace("/uploads/", "/uploads/x"), content=b"1234").status_code
        == 404
    )


@pytest.mark.wavespeed_mock(max_upload_bytes=10)
def test_upload_limits(api: httpx.Client) -> None:
    r = api.post(Paths.UPLOAD_TICKET, json={"filename": "big.mp4", "size": 11})
    assert r.status_code == 413
    r = api.post(Paths.UPLOAD_BINARY, files={"file": ("big.wav", b"x" * 11, "audio/wav")})
    assert r.status_code == 413


def test_ticket_validation_names_the_field(api: httpx.Client) -> None:
    r = api.post(Paths.UPLOAD_TICKET, json={"size": 3})
    assert (r.status_code, r.json()["message"]) == (400, "Missing required parameter 'filename'")


def test_legacy_binary_upload(api: httpx.Client) -> None:
    r = api.post(Paths.UPLOAD_BINARY, files={"file": ("speech.wav", b"RIFF....WAVE", "audio/wav")})
    assert r.status_code == 200
    data = r.json()["data"]
    assert (data["type"], data["filename"], data["size"]) == ("audio", "speech.wav", 12)
    assert httpx.get(data["download_url"]).content == b"RIFF....WAVE"
    missing = api.post(Paths.UPLOAD_BINARY, files={"other": ("x", b"1")})
    assert missing.status_code == 400 and "'file'" in missing.json()["message"]


def test_uploads_need_a_key(wavespeed_mock: WavespeedMock) -> None:
    base = wavespeed_mock.base_url
    assert httpx.post(f"{base}{Paths.UPLOAD_TICKET}", json={"filename": "a", "size": 1}).status_code == 401
    assert httpx.post(f"{base}{Paths.UPLOAD_BINARY}", files={"file": ("a", b"1")}).status_code == 401
