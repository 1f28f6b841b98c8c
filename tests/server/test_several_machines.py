"""Several machines over one PostgreSQL: two `lipsync serve` API processes and a `lipsync worker`.

Each process has its own data directory, as on its own machine; they share the job store (PostgreSQL, a
real server: see ``tests/server/postgres.py``), the signing secret, and the media storage (each data
directory's ``media`` is a link to one directory, standing in for a shared mount; S3 in production).
Everything goes through HTTP, with the SDK's wire format.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from contracts import Paths
from tests.conftest import REPO_ROOT
from tests.server.postgres import postgres_url
from tests.server.test_sdk_e2e import API_KEY, LIPSYNC, Served, media_site, start_serve, stop

__all__ = ["media_site", "postgres_url"]  # fixtures, re-exported for pytest

pytestmark = pytest.mark.slow

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
SECRET = "several-machines-test-secret"


def machine(root: Path, name: str, media: Path) -> Path:
    data = root / name / "data"
    data.mkdir(parents=True)
    (data / "media").symlink_to(media, target_is_directory=True)
    return data


def api(served: Served, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    response = httpx.request(method, served.base_url + path, json=body, headers=HEADERS, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def result(served: Served, job_id: str) -> dict[str, Any]:
    data: dict[str, Any] = api(served, "GET", Paths.RESULT.format(id=job_id))
    return data


def wait_status(served: Served, job_id: str, status: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (data := result(served, job_id))["status"] != status:
        assert time.monotonic() < deadline, f"job {job_id} still {data['status']}"
        time.sleep(0.1)
    return data


def test_two_api_servers_and_a_worker_share_one_postgres(
    postgres_url: str, media_site: str, tmp_path: Path
) -> None:
    media = tmp_path / "shared-media"
    media.mkdir()
    shared = {"LIPSYNC_STORE_URL": postgres_url, "LIPSYNC_SIGNING_SECRET": SECRET}
    api_only = {**shared, "LIPSYNC_DEVICES": ""}  # no workers on the API machines
    a = start_serve(machine(tmp_path, "a", media), extra_env=api_only)
    b = start_serve(machine(tmp_path, "b", media), extra_env=api_only)
    worker: subprocess.Popen[str] | None = None
    worker_log = tmp_path / "worker-stderr.log"
    try:
        inputs = {"video": f"{media_site}/face.mp4", "audio": f"{media_site}/speech.wav"}
        first = api(a, "POST", Paths.SUBMIT, inputs)["id"]
        # B sees A's job, lists it, and cancels it; A sees the cancel.
        assert result(b, first)["status"] == "created"  # queued: no worker anywhere yet
        listed = api(b, "POST", Paths.HISTORY, {"page": 1, "page_size": 10})
        assert [item["id"] for item in listed["items"]] == [first] and listed["total"] == 1
        cancelled = api(b, "POST", Paths.CANCEL.format(id=first))
        assert cancelled["status"] == "failed" and "cancelled" in cancelled["error"]
        assert result(a, first)["status"] == "failed"

        # A GPU machine joins: `lipsync worker` runs B's next job; A serves its output.
        second = api(b, "POST", Paths.SUBMIT, inputs)["id"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIPSYNC_")}
        env |= shared | {
            "PYTHONPATH": str(REPO_ROOT),
            "LIPSYNC_ENGINE_FACTORY": "tests.server.fakes:ok_engine",
            "LIPSYNC_HEARTBEAT_S": "0.2",
        }
        with worker_log.open("w") as log:  # the child keeps its own copy of the descriptor
            worker = subprocess.Popen(
                [LIPSYNC, "worker", "--device", "cpu", "--data-dir", str(machine(tmp_path, "gpu", media))],
                env=env,
                cwd=REPO_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
                text=True,
            )
        done = wait_status(a, second, "completed")
        (url,) = done["outputs"]
        assert url.startswith(a.base_url)
        response = httpx.get(url, timeout=30)
        assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
        with av.open(io.BytesIO(response.content)) as container:
            assert next(container.decode(video=0)).width > 0
        assert result(b, second)["status"] == "completed"
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        stop(a)
        stop(b)
    assert worker.returncode == 0, worker_log.read_text()
