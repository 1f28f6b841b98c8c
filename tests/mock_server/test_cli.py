"""`lipsync mock` and `python -m mock_server` as subprocesses: they print the base URL and serve it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from contracts import Paths

INPUTS = {"audio": "https://media.example/speech.wav", "video": "https://media.example/face.mp4"}
LIPSYNC_CLI = [sys.executable, "-c", "from lipsync.cli import app; app()", "mock"]
MODULE_CLI = [sys.executable, "-m", "mock_server"]


@contextmanager
def running(argv: list[str]) -> Iterator[str]:
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            # The first stdout line is printed once the socket listens (readline returns "" if it died).
            line = proc.stdout.readline()
            if not line.startswith("WaveSpeed mock listening on "):
                proc.kill()
                _, err = proc.communicate(timeout=10)
                raise AssertionError(f"mock did not start: {line!r} {err}")
            yield line.rsplit(" ", 1)[1].strip()
        finally:
            proc.terminate()
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


@pytest.mark.parametrize("argv", [LIPSYNC_CLI, MODULE_CLI], ids=["lipsync-mock", "python-m-mock_server"])
def test_cli_serves_with_options(argv: list[str]) -> None:
    cmd = [*argv, "--port", "0", "--scenario", "fail; code=1402", "--api-key", "k1", "--clock", "virtual"]
    with running(cmd) as base:
        assert base.startswith("http://127.0.0.1:")
        auth = {"Authorization": "Bearer k1"}
        assert (
            httpx.post(base + Paths.SUBMIT, json=INPUTS, headers={"Authorization": "Bearer x"}).status_code
            == 401
        )
        r = httpx.post(base + Paths.SUBMIT, json=INPUTS, headers=auth)
        assert r.headers["x-mock-scenario"] == "fail; code=1402"
        assert r.json()["data"]["urls"]["get"].startswith(base)
        pid = r.json()["data"]["id"]
        httpx.post(base + "/__mock/clock/advance", json={"seconds": 10})
        data = httpx.get(base + Paths.RESULT.format(id=pid), headers=auth).json()["data"]
        assert (data["status"], data["code"]) == ("failed", 1402)


def test_cli_rejects_a_bad_scenario() -> None:
    proc = subprocess.run([*LIPSYNC_CLI, "--scenario", "explode"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown scenario 'explode'" in proc.stderr
