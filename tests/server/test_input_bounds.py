"""Inputs bounded at submit (through real HTTP): oversize data: URIs and URLs are a 400 naming the field,
and a job's store row keeps no request text once its inputs are resolved."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from contracts import MAX_URL_LENGTH
from lipsync.server.memory import MemoryJobStore
from lipsync.server.serving import ServerThread
from tests.server.conftest import AUDIO, AUTH, SUBMIT, VIDEO, make_settings
from tests.server.fakes import FakeFetcher, make_mp4, make_wav
from tests.server.served import fake_app

MEDIA_CAP = 64 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, MemoryJobStore]]:
    settings = make_settings(tmp_path_factory.mktemp("bounds"), max_input_bytes=MEDIA_CAP)
    store = MemoryJobStore()

    app = fake_app(settings, store=store, fetcher=FakeFetcher({VIDEO: make_mp4(), AUDIO: make_wav()}))
    with ServerThread(app) as server:
        yield server.base_url, store


def _submit(base_url: str, **body: Any) -> httpx.Response:
    return httpx.post(base_url + SUBMIT, json={"video": VIDEO, "audio": AUDIO, **body}, headers=AUTH)


def _data_uri(raw: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(raw).decode()


def test_a_data_uri_over_the_media_cap_is_a_400_naming_the_field(served: tuple[str, Any]) -> None:
    base_url, _ = served
    reply = _submit(base_url, audio=_data_uri(b"\x00" * (MEDIA_CAP + 1), "audio/wav"))
    assert reply.status_code == 400
    body = reply.json()
    assert body["code"] == 400
    assert body["message"].startswith(
        f"Invalid parameter 'audio': the data: URI carries {MEDIA_CAP + 1} bytes, more than the {MEDIA_CAP}"
    )


def test_a_url_over_8_kib_is_a_400_naming_the_field(served: tuple[str, Any]) -> None:
    base_url, _ = served
    reply = _submit(base_url, video="https://media.example/" + "v" * MAX_URL_LENGTH)
    assert reply.status_code == 400
    assert reply.json()["message"].startswith("Invalid parameter 'video': URL longer than 8192 characters")


def test_a_resolved_job_keeps_no_sources_in_its_row(served: tuple[str, MemoryJobStore]) -> None:
    base_url, store = served
    reply = _submit(base_url, audio=_data_uri(make_wav(), "audio/wav"))
    assert reply.status_code == 200
    job_id = reply.json()["data"]["id"]
    deadline = time.monotonic() + 30
    while (job := httpx.get(f"{base_url}/api/v3/predictions/{job_id}/result", headers=AUTH)).json()["data"][
        "status"
    ] not in ("completed", "failed"):
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.05)
    assert job.json()["data"]["status"] == "completed"
    record = store_row(store, job_id)
    assert record.sources == {}
    assert set(record.inputs) == {"video", "audio"}


def store_row(store: MemoryJobStore, job_id: str) -> Any:
    import asyncio

    return asyncio.run(store.get(job_id))


def test_a_webhook_at_loopback_wrapped_in_6to4_is_a_400(served: tuple[str, Any]) -> None:
    """Refused at submit, naming the field: the published URL pattern admits no IPv6 literal (issue 19), and
    the SSRF guard behind it unwraps 6to4 too (tests/server/test_fetch.py checks that on its own)."""
    base_url, _ = served
    reply = httpx.post(
        base_url + SUBMIT,
        json={"video": VIDEO, "audio": AUDIO},
        params={"webhook": "http://[2002:7f00:1::]:8080/hook"},
        headers=AUTH,
    )
    assert reply.status_code == 400
    assert reply.json()["message"] == (
        "Invalid parameter 'webhook': must be an http(s) URL (got 'http://[2002:7f00:1::]:8080/hook')"
    )


def test_a_webhook_url_over_8_kib_is_a_400(served: tuple[str, Any]) -> None:
    base_url, _ = served
    webhook = "https://hooks.example/" + "w" * MAX_URL_LENGTH
    reply = httpx.post(
        base_url + SUBMIT, json={"video": VIDEO, "audio": AUDIO}, params={"webhook": webhook}, headers=AUTH
    )
    assert reply.status_code == 400
    assert reply.json()["message"] == "Invalid parameter 'webhook': URL longer than 8192 characters"
