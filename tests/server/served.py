"""The app over in-memory jobs and a fake engine, for tests that serve it through real HTTP (uvicorn)."""

from __future__ import annotations

from fastapi import FastAPI

from lipsync.server import create_app
from lipsync.server.interfaces import Clock, Engine, Fetcher, Storage
from lipsync.server.memory import MemoryJobStore, MemoryStorage
from lipsync.server.settings import ServerSettings
from lipsync.server.worker import InProcessRunner
from tests.server.fakes import FakeEngine, FakeFetcher, RecordingWebhooks


def fake_app(
    settings: ServerSettings,
    *,
    store: MemoryJobStore | None = None,
    storage: Storage | None = None,
    fetcher: Fetcher | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """``create_app`` with a fake engine run in-process; in-memory store and storage unless given."""

    def factory(device: str) -> Engine:
        return FakeEngine()

    return create_app(
        settings,
        store=store or MemoryJobStore(),
        storage=storage or MemoryStorage(),
        runner=InProcessRunner(factory),
        fetcher=fetcher or FakeFetcher(),
        webhooks=RecordingWebhooks(),
        clock=clock,
    )
