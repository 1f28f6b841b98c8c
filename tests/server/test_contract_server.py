"""The shared contract suite (tests/contract) against the real server app, over real HTTP (uvicorn).

Backends: the embedded SQLite store and local storage, the in-process runner with a fake engine and a
fake fetcher (edges we do not test here: the model, and real downloads, which ``test_fetch.py`` covers).
A 1402 job names an input URL the fetcher cannot get (the server's own input resolution fails it); the
fake engine picks its behaviour from the request's ``seed`` for the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts import RunOptions
from lipsync.errors import JobCancelled, NoFaceDetected
from lipsync.server import create_app
from lipsync.server.local_storage import LocalStorage
from lipsync.server.serving import ServerThread
from lipsync.server.sqlite_store import SQLiteJobStore
from lipsync.server.worker import InProcessRunner
from tests.contract.suite import ContractSuite
from tests.contract.target import BaseTarget, JobSpec, MediaFile
from tests.server.conftest import make_settings
from tests.server.fakes import FakeFetcher, RecordingWebhooks, make_mp4, make_wav

_OUTPUT = make_mp4(frames=5, size=32)
UNREACHABLE_VIDEO = "https://media.example/missing-face.mp4"  # FakeFetcher answers 404
SEED_NO_FACE = 1403
SEED_RUNS_UNTIL_CANCELLED = 7777


class ScenarioEngine:
    """Completes, fails with no face, or runs until cancelled, depending on the request's seed."""

    def __init__(self) -> None:
        self.stop = threading.Event()

    def run(
        self,
        video_path: Any,
        audio_path: Any,
        out_path: Any,
        options: RunOptions,
        progress: Any = None,
    ) -> None:
        seed = options.seed
        if seed == SEED_NO_FACE:
            raise NoFaceDetected("No face detected in the video", frame_index=0, timestamp_s=0.0)
        if seed == SEED_RUNS_UNTIL_CANCELLED:
            while not self.stop.wait(0.01):  # bounded by the fixture's teardown
                if progress is not None:
                    progress(0.5)
            raise JobCancelled("server shut down")
        Path(out_path).write_bytes(_OUTPUT)


class ServerTarget(BaseTarget):
    name = "server"
    api_key = "contract-key"

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def media_inputs(self) -> dict[str, str]:
        return {"video": "https://media.example/face.mp4", "audio": "https://media.example/speech.wav"}

    def media_files(self) -> dict[str, MediaFile]:
        return {
            "video": MediaFile("face.mp4", make_mp4(), "video/mp4"),
            "audio": MediaFile("speech.wav", make_wav(), "audio/wav"),
        }

    def failing_job(self, code: int) -> JobSpec:
        if code == 1402:
            return JobSpec({**self.media_inputs(), "video": UNREACHABLE_VIDEO})
        assert code == SEED_NO_FACE, code
        return JobSpec({**self.media_inputs(), "seed": code})

    def running_job(self) -> JobSpec:
        return JobSpec({**self.media_inputs(), "seed": SEED_RUNS_UNTIL_CANCELLED})


@pytest.fixture(scope="module")
def server_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerTarget]:
    """One server for the whole suite (starting one per test cost more than the tests): the suite's tests
    do not depend on each other's jobs, and every job they start ends (a running one is cancelled)."""
    settings = make_settings(
        tmp_path_factory.mktemp("contract-server"),
        api_keys=[ServerTarget.api_key],
        sync_timeout_s=20.0,
        max_active_jobs_per_key=1000,
    )
    engine = ScenarioEngine()
    app = create_app(
        settings,
        store=SQLiteJobStore(settings.db_path),
        storage=LocalStorage(settings.media_dir),
        runner=InProcessRunner(lambda device: engine),
        fetcher=FakeFetcher(),
        webhooks=RecordingWebhooks(),
    )
    with ServerThread(app) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        try:
            yield ServerTarget(client)
        finally:
            engine.stop.set()


@pytest.fixture
def contract_target(server_target: ServerTarget) -> ServerTarget:
    return server_target


class TestServerContract(ContractSuite):
    pass
