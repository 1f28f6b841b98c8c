"""Builders for server apps over in-memory backends and fake engines (see fakes.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lipsync.server import create_app
from lipsync.server.interfaces import Engine, Fetcher, Storage, WebhookSender
from lipsync.server.memory import MemoryJobStore, MemoryStorage
from lipsync.server.settings import ServerSettings
from lipsync.server.worker import InProcessRunner
from tests.server.fakes import FakeEngine, FakeFetcher, RecordingWebhooks

API_KEY = "test-key"
OTHER_KEY = "other-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SUBMIT = "/api/v3/bytedance/lipsync/audio-to-video"
VIDEO = "https://media.example/face.mp4"
AUDIO = "https://media.example/speech.wav"


def make_settings(data_dir: Path, **overrides: Any) -> ServerSettings:
    values: dict[str, Any] = {
        "api_keys": [API_KEY, OTHER_KEY],
        "data_dir": data_dir,
        "signing_secret": "s" * 32,
        "heartbeat_s": 0.05,
        "lease_s": 5.0,
        "poll_interval_s": 0.02,
        "webhook_backoff_s": 0.0,
    }
    values.update(overrides)
    return ServerSettings(**values)


def wait_until(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Poll *condition* until it is true; fail naming *what* when *timeout* seconds pass first (a bound on
    eventual state, e.g. work a background task does just after a status change, not a speed check)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.02)


@dataclass
class Harness:
    app: FastAPI
    client: TestClient
    engine: FakeEngine
    store: MemoryJobStore
    storage: Storage
    fetcher: Any
    webhooks: Any
    settings: ServerSettings

    def submit(self, body: dict[str, Any] | None = None, **params: Any) -> Any:
        payload = {"video": VIDEO, "audio": AUDIO, **(body or {})}
        return self.client.post(SUBMIT, json=payload, headers=AUTH, params=params)

    def result(self, job_id: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.get(f"/api/v3/predictions/{job_id}/result", headers=headers or AUTH)

    def wait_status(self, job_id: str, statuses: set[str], timeout: float = 10.0) -> dict[str, Any]:
        """Poll (as a client would) until the status is one of *statuses*; bounded by *timeout*."""
        deadline = time.monotonic() + timeout
        while True:
            data: dict[str, Any] = self.result(job_id).json()["data"]
            if data["status"] in statuses:
                return data
            assert time.monotonic() < deadline, f"job {job_id} still {data['status']}"
            time.sleep(0.02)


@pytest.fixture
def harness_factory(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[TestClient] = []

    def build(
        engine: FakeEngine | None = None,
        *,
        fetcher: Fetcher | None = None,
        webhooks: WebhookSender | None = None,
        storage: Storage | None = None,
        **settings_overrides: Any,
    ) -> Harness:
        settings = make_settings(tmp_path, **settings_overrides)
        engine = engine or FakeEngine()
        store = MemoryJobStore()
        storage = storage or MemoryStorage()
        fetcher = fetcher or FakeFetcher()
        webhooks = webhooks or RecordingWebhooks()

        def factory(device: str) -> Engine:
            return engine

        app = create_app(
            settings,
            store=store,
            storage=storage,
            runner=InProcessRunner(factory),
            fetcher=fetcher,
            webhooks=webhooks,
        )
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        made.append(client)
        return Harness(app, client, engine, store, storage, fetcher, webhooks, settings)

    yield build
    for client in made:
        client.__exit__(None, None, None)


@pytest.fixture
def harness(harness_factory: Callable[..., Harness]) -> Harness:
    return harness_factory()
