"""The embedded process runner over SQLite: worker crashes, restarts with jobs in flight (running, queued,
or still having their inputs resolved), one job per device.

Waits are bounded by generous deadlines (worker processes start slowly on a loaded machine); nothing here
asserts how long anything took."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lipsync.server import create_app
from lipsync.server.interfaces import Fetcher
from lipsync.server.local_storage import LocalStorage
from lipsync.server.settings import ServerSettings
from lipsync.server.sqlite_store import SQLiteJobStore
from lipsync.server.worker import EngineFactory, ProcessRunner
from tests.server.conftest import AUDIO, AUTH, SUBMIT, VIDEO, make_settings
from tests.server.fakes import (
    CrashingEngineFactory,
    FakeFetcher,
    GatedEngineFactory,
    GatedFetcher,
    RecordingWebhooks,
    make_wav,
)

#: A deadline for waits, not an expectation: spawned workers import slowly on a loaded 2-core machine.
DEADLINE_S = 120.0


@contextmanager
def process_app(
    settings: ServerSettings, engine_factory: EngineFactory, fetcher: Fetcher | None = None
) -> Iterator[tuple[TestClient, Any]]:
    runner = ProcessRunner(settings, engine_factory)
    app = create_app(
        settings,
        store=SQLiteJobStore(settings.db_path),
        storage=LocalStorage(settings.media_dir),
        runner=runner,
        fetcher=fetcher or FakeFetcher(),
        webhooks=RecordingWebhooks(),
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, runner


def submit(client: TestClient, **body: Any) -> str:
    r = client.post(SUBMIT, json={"video": VIDEO, "audio": AUDIO, **body}, headers=AUTH)
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["id"])


def wait_for(
    client: TestClient, job_id: str, statuses: set[str], timeout: float = DEADLINE_S
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        data: dict[str, Any] = client.get(f"/api/v3/predictions/{job_id}/result", headers=AUTH).json()["data"]
        if data["status"] in statuses:
            return data
        assert time.monotonic() < deadline, f"{job_id} still {data['status']}"
        time.sleep(0.05)


def wait_file(pattern: str, directory: Path, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not list(directory.glob(pattern)):
        assert time.monotonic() < deadline, f"no {pattern} in {directory}"
        time.sleep(0.02)


def settings_for(tmp_path: Path, **kw: Any) -> ServerSettings:
    values: dict[str, Any] = {"devices": "cpu", "heartbeat_s": 0.1, "lease_s": 3.0, "shutdown_grace_s": 0.2}
    return make_settings(tmp_path / "data", **{**values, **kw})


def test_a_worker_that_dies_is_replaced_and_its_job_retried_once_then_failed(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    # A lease far longer than the test: only the supervisor, seeing the exit, can retry or fail the job,
    # so the error names the exit code however slowly a loaded machine runs the worker processes.
    settings = settings_for(tmp_path, lease_s=600.0)
    with process_app(settings, CrashingEngineFactory(markers, crashes=99)) as (client, runner):
        job_id = submit(client)
        data = wait_for(client, job_id, {"failed"})
        assert data["code"] == 5000
        assert "stopped unexpectedly" in data["error"] and "exited with code 3" in data["error"]
        assert "HTTP 5" not in data["error"]
        assert len(list(markers.glob("crash-*"))) == 2  # first run + one retry
        # Each dead worker is replaced (test_a_job_survives_one_worker_crash shows a replacement at work).
        deadline = time.monotonic() + DEADLINE_S
        while (health := client.get("/healthz").json()["data"]["runner"])["alive"] != 1:
            assert time.monotonic() < deadline, health
            time.sleep(0.05)
        assert health["runner"] == "process" and runner.restarts == 2
        assert len(list(markers.glob("crash-*"))) == 2  # and nothing ran the failed job again


def test_a_job_survives_one_worker_crash(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    with process_app(settings_for(tmp_path), CrashingEngineFactory(markers, crashes=1)) as (client, _runner):
        job_id = submit(client)
        data = wait_for(client, job_id, {"completed", "failed"})
        assert data["status"] == "completed" and data["outputs"]
        video = client.get(data["outputs"][0].removeprefix("http://testserver"))
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"


def test_restart_with_a_job_in_flight(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    settings = settings_for(tmp_path)
    with process_app(settings, GatedEngineFactory(gate)) as (client, _runner):
        running = submit(client)
        wait_file("started-*", gate)
        queued = submit(client)
        assert wait_for(client, running, {"processing"})["status"] == "processing"
    # The server stopped with one job running and one queued; both are on disk.
    (gate / "release").touch()
    with process_app(settings, GatedEngineFactory(gate)) as (client, _runner):
        first = wait_for(client, running, {"completed", "failed"})
        second = wait_for(client, queued, {"completed", "failed"})
        assert first["status"] == "completed" and second["status"] == "completed"
    store_check = SQLiteJobStore(settings.db_path)
    job = asyncio.run(store_check.get(running))
    assert job is not None and job.attempts == 2  # interrupted once, run again
    asyncio.run(store_check.close())


def test_restart_with_a_job_mid_resolution(tmp_path: Path) -> None:
    """The server stops while a job's inputs are being downloaded; the next start resolves and runs it."""
    settings = settings_for(tmp_path)
    held = GatedFetcher()  # never released: the download is in flight when the server stops
    audio = "data:audio/wav;base64," + base64.b64encode(make_wav()).decode()  # kept across the restart
    with process_app(settings, GatedEngineFactory(tmp_path), held) as (client, _runner):
        job_id = submit(client, audio=audio)
        assert held.waiting.wait(DEADLINE_S)
        assert wait_for(client, job_id, {"created"})["status"] == "created"
    store_check = SQLiteJobStore(settings.db_path)
    stopped = asyncio.run(store_check.get(job_id))
    assert stopped is not None and stopped.status == "resolving" and stopped.inputs == {}
    (tmp_path / "release").touch()  # the engine's gate: it may run at once now
    fetcher = FakeFetcher()
    with process_app(settings, GatedEngineFactory(tmp_path), fetcher) as (client, _runner):
        data = wait_for(client, job_id, {"completed", "failed"})
        assert data["status"] == "completed", data
    assert fetcher.calls == [VIDEO]  # resolved again after the restart; the data: URI came from storage
    job = asyncio.run(store_check.get(job_id))
    assert job is not None and job.attempts == 1  # resolving twice did not use up the worker's retry
    assert job.inputs["audio"].startswith(f"inputs/{job_id}/audio")
    assert not (settings.media_dir / "inputs" / job_id / "source").exists()  # the kept data: URI is gone
    asyncio.run(store_check.close())


def test_one_job_at_a_time_per_device(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    with process_app(settings_for(tmp_path), GatedEngineFactory(gate)) as (client, _runner):
        first, second = submit(client), submit(client)
        wait_file("started-*", gate)
        assert wait_for(client, first, {"processing"})["status"] == "processing"
        assert client.get(f"/api/v3/predictions/{second}", headers=AUTH).json()["data"]["status"] == "created"
        (gate / "release").touch()
        assert wait_for(client, second, {"completed"})["status"] == "completed"


def test_a_second_server_cannot_share_the_data_dir(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with (
        process_app(settings, GatedEngineFactory(tmp_path)),
        pytest.raises(RuntimeError, match="another lipsync server"),
        process_app(settings, GatedEngineFactory(tmp_path)),
    ):
        pass


def test_cancel_reaches_a_job_running_in_a_worker_process(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    with process_app(settings_for(tmp_path), GatedEngineFactory(gate)) as (client, _runner):
        job_id = submit(client)
        wait_file("started-*", gate)
        r = client.post(f"/api/v3/predictions/{job_id}/cancel", headers=AUTH)
        data = r.json()["data"]
        assert r.status_code == 200 and (data["status"], data["code"]) == ("failed", 1405), data
        # The worker is free again: the next job runs (and is released at once).
        (gate / "release").touch()
        assert wait_for(client, submit(client), {"completed"})["status"] == "completed"
