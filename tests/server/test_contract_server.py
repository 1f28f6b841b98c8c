"""The shared contract suite (tests/contract) against the real server app, over real HTTP (uvicorn).

Backends: the embedded SQLite store and local storage, the in-process runner with a fake engine (edges
we do not test here: the model, and input downloads, which ``test_fetch.py`` covers). The fake engine
picks its behaviour from the request's ``seed``, so each contract job can end the way the suite asks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lipsync.errors import JobCancelled, MediaFetchError, NoFaceDetected
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
SEED_FETCH_FAILS = 1402
SEED_NO_FACE = 1403
SEED_RUNS_UNTIL_CANCELLED = 7777


class ScenarioEngine:
    """Completes, fails with a chosen error, or runs until cancelled, depending on the request's seed."""

    def __init__(self) -> None:
        self.stop = threading.Event()

    def run(
        self,
        video_path: Any,
        audio_path: Any,
        out_path: Any,
        *,
        progress: Any = None,
        seed: int = 0,
        **_: Any,
    ) -> None:
        if seed == SEED_FETCH_FAILS:
            raise MediaFetchError("Failed to download the media from the provided URL")
        if seed == SEED_NO_FACE:
            raise NoFaceDetected("No face detected in the video", frame_index=0, timestamp_s=0.0)
        if seed == SEED_RUNS_UNTIL_CANCELLED:
            while not self.stop.wait(0.01):  # bounded by the fixture's teardown
                if progress is not None:
                    progress(0.5)
            raise JobCancelled("server shut down")
        Path(out_path).write_bytes(_OUTPUT)


class _BufferedTransport(httpx.HTTPTransport):
    """Reads each request body before sending: schemathesis inspects ``request.content`` afterwards, which
    httpx only keeps for buffered (not streamed, e.g. multipart) bodies."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return super().handle_request(request)


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
        assert code in (SEED_FETCH_FAILS, SEED_NO_FACE), code
        return JobSpec({**self.media_inputs(), "seed": code})

    def running_job(self) -> JobSpec:
        return JobSpec({**self.media_inputs(), "seed": SEED_RUNS_UNTIL_CANCELLED})


@pytest.fixture
def contract_target(tmp_path: Path) -> Iterator[ServerTarget]:
    settings = make_settings(
        tmp_path,
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
    with (
        ServerThread(app) as server,
        httpx.Client(base_url=server.base_url, timeout=30, transport=_BufferedTransport()) as client,
    ):
        try:
            yield ServerTarget(client)
        finally:
            engine.stop.set()


class TestServerContract(ContractSuite):
    pass
