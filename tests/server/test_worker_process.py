"""The embedded process runner over SQLite: worker crashes, restarts with jobs in flight, one job per device."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lipsync.server import create_app
from lipsync.server.local_storage import LocalStorage
from lipsync.server.settings import ServerSettings
from lipsync.server.sqlite_store import SQLiteJobStore
from lipsync.server.worker import EngineFactory, ProcessRunner
from tests.server.conftest import AUDIO, AUTH, SUBMIT, VIDEO, make_settings
from tests.server.fakes import CrashingEngineFactory, FakeFetcher, GatedEngineFactory, RecordingWebhooks


@contextmanager
def process_app(settings: ServerSettings, engine_factory: EngineFactory) -> Iterator[tuple[TestClient, Any]]:
    runner = ProcessRunner(settings, engine_factory)
    app = create_app(
        settings,
        store=SQLiteJobStore(settings.db_path),
        storage=LocalStorage(settings.media_dir),
        runner=runner,
        fetcher=FakeFetcher(),
        webhooks=RecordingWebhooks(),
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, runner


def submit(client: TestClient) -> str:
    r = client.post(SUBMIT, json={"video": VIDEO, "audio": AUDIO}, headers=AUTH)
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["id"])


def wait_for(client: TestClient, job_id: str, statuses: set[str], timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        data: dict[str, Any] = client.get(f"/api/v3/predictions/{job_id}/result", headers=AUTH).json()["data"]
        if data["status"] in statuses:
            return data
        assert time.monotonic() < deadline, f"{job_id} still {data['status']}"
        time.sleep(0.05)


def wait_file(pattern: str, directory: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not list(directory.glob(pattern)):
        assert time.monotonic() < deadline, f"no {pattern} in {directory}"
        time.sleep(0.02)


def settings_for(tmp_path: Path, **kw: Any) -> ServerSettings:
    return make_settings(
        tmp_path / "data", devices="cpu", heartbeat_s=0.1, lease_s=3.0, shutdown_grace_s=0.2, **kw
    )


def test_a_worker_that_dies_is_replaced_and_its_job_retried_once_then_failed(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    with process_app(settings_for(tmp_path), CrashingEngineFactory(markers, crashes=99)) as (client, runner):
        job_id = submit(client)
        data = wait_for(client, job_id, {"failed"})
        assert data["code"] == 5000
        assert "stopped unexpectedly" in data["error"] and "exited with code 3" in data["error"]
        assert "HTTP 5" not in data["error"]
        assert len(list(markers.glob("crash-*"))) == 2  # first run + one retry
        health = client.get("/healthz").json()["data"]["runner"]
        assert health["runner"] == "process"
        # A replacement worker serves the next job (it crashes too: this engine always does).
        wait_for(client, submit(client), {"failed"})
        assert len(list(markers.glob("crash-*"))) == 4 and runner.restarts >= 2


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
