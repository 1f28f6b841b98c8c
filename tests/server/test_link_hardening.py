"""Signed links under attack, through real HTTP: forged non-ASCII signatures are a 403 (never a 500), also
as a job's input URL, and a symlink planted in storage is a 404."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lipsync.server.local_storage import LocalStorage
from lipsync.server.serving import ServerThread
from lipsync.server.signing import UrlSigner
from tests.server.conftest import AUDIO, AUTH, SUBMIT, make_settings
from tests.server.fakes import FakeFetcher, make_wav
from tests.server.served import fake_app

FORGED = "%C3%A9t%C3%A9"  # "été": not ASCII


@dataclass
class Served:
    base_url: str
    media: Path
    signer: UrlSigner


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("links")
    settings = make_settings(root)
    media = root / "media"

    app = fake_app(settings, storage=LocalStorage(media), fetcher=FakeFetcher({AUDIO: make_wav()}))
    with ServerThread(app) as server:
        yield Served(server.base_url, media, UrlSigner(b"s" * 32))


def test_a_non_ascii_download_signature_is_a_403(served: Served) -> None:
    reply = httpx.get(f"{served.base_url}/files/outputs/x/output.mp4?expires=9999999999&sig={FORGED}")
    assert reply.status_code == 403
    assert reply.json()["code"] == 403


def test_a_non_ascii_upload_signature_is_a_403(served: Served) -> None:
    url = f"{served.base_url}/uploads/uploads/k_1/abc/a.mp4?expires=9999999999&max=10&sig={FORGED}"
    reply = httpx.put(url, content=b"0123")
    assert reply.status_code == 403


def test_a_non_ascii_signature_in_an_input_url_fails_the_job_not_the_server(served: Served) -> None:
    video = f"{served.base_url}/files/uploads/k_1/abc/face.mp4?expires=9999999999&sig={FORGED}"
    reply = httpx.post(served.base_url + SUBMIT, json={"video": video, "audio": AUDIO}, headers=AUTH)
    assert reply.status_code == 200
    job_id = reply.json()["data"]["id"]
    deadline = time.monotonic() + 30
    while (
        data := httpx.get(f"{served.base_url}/api/v3/predictions/{job_id}/result", headers=AUTH).json()[
            "data"
        ]
    )["status"] != "failed":
        assert data["status"] in ("created", "processing"), data
        assert time.monotonic() < deadline, "job did not fail"
        time.sleep(0.05)
    assert data["code"] == 1402
    assert "download link is invalid or has expired" in data["error"]


def test_a_symlink_in_storage_is_a_404(served: Served, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for you")
    key = "outputs/planted/output.mp4"
    link = served.media / key
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    url = served.signer.download_url(served.base_url, key, expires=int(time.time()) + 60)
    reply = httpx.get(url)
    assert reply.status_code == 404
    assert reply.json() == {"code": 404, "message": "file not found", "data": None}
