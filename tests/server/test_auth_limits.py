"""API keys (hashed, 401 envelope) and the per-key concurrency limit (429 + Retry-After)."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from lipsync.server import create_app
from lipsync.server.auth import Keyring
from lipsync.server.memory import MemoryJobStore, MemoryStorage
from lipsync.server.worker import InProcessRunner
from tests.server.conftest import AUTH, OTHER_KEY, SUBMIT, Harness, make_settings
from tests.server.fakes import FakeEngine, FakeFetcher, RecordingWebhooks

ROUTES = [
    ("POST", SUBMIT),
    ("GET", "/api/v3/predictions/x/result"),
    ("GET", "/api/v3/predictions/x"),
    ("POST", "/api/v3/predictions/x/cancel"),
    ("POST", "/api/v3/predictions"),
    ("POST", "/api/v3/predictions/delete"),
    ("POST", "/api/v3/media/uploads"),
    ("POST", "/api/v3/media/upload/binary"),
    ("GET", "/api/v3/webhook/secret"),
    ("GET", "/api/v3/balance"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_api_route_needs_a_valid_key(harness: Harness, method: str, path: str) -> None:
    missing = harness.client.request(method, path)
    assert missing.status_code == 401
    assert missing.json() == {
        "code": 401,
        "message": "Missing API key: send 'Authorization: Bearer <key>'",
        "data": None,
    }
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = harness.client.request(method, path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["message"] == "Invalid API key"
    basic = harness.client.request(method, path, headers={"Authorization": "Basic dGVzdC1rZXk6"})
    assert basic.status_code == 401


def test_keyring_keeps_hashes_only_and_accepts_prehashed_entries() -> None:
    hashed = "sha256:" + hashlib.sha256(b"from-env").hexdigest()
    ring = Keyring(["plain-key", hashed, " "])
    assert len(ring) == 2
    assert "plain-key" not in repr(vars(ring)) and b"plain-key" not in b"".join(ring._hashes)
    a, b = ring.authenticate("plain-key"), ring.authenticate("from-env")
    assert a is not None and b is not None and a.owner != b.owner and a.owner.startswith("k_")
    assert ring.authenticate("plain-key ") is None and ring.authenticate("") is None


def test_prehashed_key_works_over_http(harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(api_keys=["sha256:" + hashlib.sha256(b"secret-k").hexdigest()])
    ok = h.client.get("/api/v3/balance", headers={"Authorization": "Bearer secret-k"})
    assert ok.status_code == 200
    assert h.client.get("/api/v3/balance", headers=AUTH).status_code == 401


def test_app_refuses_to_start_without_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no API keys"):
        create_app(
            make_settings(tmp_path, api_keys=[]),
            store=MemoryJobStore(),
            storage=MemoryStorage(),
            runner=InProcessRunner(lambda device: FakeEngine()),
            fetcher=FakeFetcher(),
            webhooks=RecordingWebhooks(),
        )


def test_per_key_concurrency_limit_answers_429_with_retry_after(
    harness_factory: Callable[..., Harness],
) -> None:
    gate = threading.Event()
    h = harness_factory(FakeEngine(gate=gate), max_active_jobs_per_key=2, retry_after_s=7)
    first = h.submit().json()["data"]["id"]
    h.submit()
    r = h.submit()
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert r.json()["code"] == 429 and "(2 of 2)" in r.json()["message"]
    other = h.client.post(
        SUBMIT,
        json={"video": "https://m.example/v.mp4", "audio": "https://m.example/a.wav"},
        headers={"Authorization": f"Bearer {OTHER_KEY}"},
    )
    assert other.status_code == 200  # the limit is per key
    h.client.post(f"/api/v3/predictions/{first}/cancel", headers=AUTH)
    assert h.submit().status_code == 200  # a slot freed up
    gate.set()


class _CountingStorage(MemoryStorage):
    """Memory storage that remembers the keys written with ``put_bytes`` (how data: URIs are stashed)."""

    def __init__(self) -> None:
        super().__init__()
        self.put_keys: list[str] = []

    async def put_bytes(self, key: str, data: bytes) -> int:
        self.put_keys.append(key)
        return await super().put_bytes(key, data)


def test_over_the_limit_a_submit_with_data_uris_is_refused_before_anything_is_stored(
    harness_factory: Callable[..., Harness],
) -> None:
    gate = threading.Event()
    storage = _CountingStorage()
    h = harness_factory(FakeEngine(gate=gate), storage=storage, max_active_jobs_per_key=1)
    try:
        assert h.submit().status_code == 200
        inline = "data:video/mp4;base64," + base64.b64encode(b"\0" * 64).decode()
        r = h.submit({"video": inline, "audio": inline.replace("video/mp4", "audio/wav")})
        assert r.status_code == 429 and "(1 of 1)" in r.json()["message"], r.text
        # The data: URIs were never stashed (source_prefix); the first job's resolved inputs may be written.
        assert [key for key in storage.put_keys if "/source/" in key] == []
    finally:
        gate.set()
