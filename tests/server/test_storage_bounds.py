"""Storage bounded, through real HTTP: a per-key upload quota (413 with a clear message), uploads purged
once their links expired, and input folders no job owns swept by the maintenance pass."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lipsync.server.local_storage import LocalStorage
from lipsync.server.serving import ServerThread
from tests.server.conftest import AUTH, OTHER_KEY, make_settings
from tests.server.served import fake_app

QUOTA = 100_000
URL_TTL_S = 3600
JOB_TIMEOUT_S = 60
OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}


class ShiftedClock:
    """Wall time plus an offset the test moves forward (file times stay real, so they compare)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


@dataclass
class Served:
    base_url: str
    media: Path
    clock: ShiftedClock


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("storage")
    settings = make_settings(
        root, upload_quota_bytes=QUOTA, url_ttl_s=URL_TTL_S, job_timeout_s=JOB_TIMEOUT_S, lease_s=1.0
    )
    clock = ShiftedClock()

    app = fake_app(settings, storage=LocalStorage(root / "media"), clock=clock)
    with ServerThread(app) as server:
        yield Served(server.base_url, root / "media", clock)


def _upload(served: Served, size: int, headers: dict[str, str]) -> httpx.Response:
    files = {"file": ("clip.mp4", b"\x00" * size, "video/mp4")}
    return httpx.post(served.base_url + "/api/v3/media/upload/binary", files=files, headers=headers)


def test_the_upload_quota_refuses_uploads_past_it(served: Served) -> None:
    assert _upload(served, 60_000, AUTH).status_code == 200
    over = _upload(served, 60_000, AUTH)
    assert over.status_code == 413
    message = over.json()["message"]
    assert message.startswith(f"Upload quota exceeded: this API key may store {QUOTA} bytes of uploads")
    assert "has 40000 left" in message
    ticket = httpx.post(
        served.base_url + "/api/v3/media/uploads",
        json={"filename": "a.mp4", "size": 50_000, "content_type": "video/mp4"},
        headers=AUTH,
    )
    assert ticket.status_code == 413 and ticket.json()["message"].startswith("Upload quota exceeded")
    assert _upload(served, 60_000, OTHER).status_code == 200  # another key has its own quota


def test_maintenance_purges_expired_uploads_and_orphan_inputs(served: Served) -> None:
    reply = _upload(served, 1000, OTHER)
    assert reply.status_code == 200
    uploads = served.media / "uploads"
    assert any(uploads.rglob("clip.mp4"))
    orphan = served.media / "inputs" / ("0" * 32) / "source"
    orphan.mkdir(parents=True)
    (orphan / "video").write_bytes(b"data:...")

    served.clock.offset = URL_TTL_S + JOB_TIMEOUT_S + 2 * 3600  # past the links and the orphan grace
    deadline = time.monotonic() + 30
    while any(uploads.rglob("clip.mp4")) or orphan.exists():
        assert time.monotonic() < deadline, "maintenance did not purge"
        time.sleep(0.1)
    assert httpx.get(reply.json()["data"]["download_url"]).status_code in (403, 404)
    assert _upload(served, 60_000, AUTH).status_code == 200  # the quota counts what is stored
