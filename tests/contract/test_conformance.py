"""The published schema tells the truth: schemathesis, run as an outsider would, finds nothing on either app.

``st run <app>/openapi.json`` with every default check, ``--mode all`` (positive and negative data) and every
phase (examples, coverage, fuzzing, stateful: the OpenAPI links lead it from a submit to its result, cancel and
delete), against the real server (uvicorn, auth on, a fake engine) and the mock (uvicorn, a configured key).
Seeded and bounded (``--max-examples``), so a run is repeatable and takes about half a minute per app on two
loaded cores. Deviations from schemathesis' defaults are in ``schemathesis.toml`` and ``st_hooks.py``, each
with its reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lipsync.server import create_app
from lipsync.server.memory import MemoryJobStore, MemoryStorage
from lipsync.server.worker import InProcessRunner
from lipsync.web import ServerThread
from lipsync.web.netguard import AddressPolicy
from mock_server.config import MockConfig
from mock_server.server import MockServer
from tests.conftest import REPO_ROOT
from tests.server.conftest import make_settings
from tests.server.fakes import FakeEngine, FakeFetcher, RecordingWebhooks

HERE = Path(__file__).resolve().parent
API_KEY = "conformance-key"
#: Per operation and phase; the issue's outsider run used 40, CI keeps the run to about a minute.
MAX_EXAMPLES = 8
SEED = 19


async def _public_address(host: str, port: int) -> list[str]:
    """Every webhook host "resolves" to one public address, so generated hosts pass the SSRF guard (the
    webhook sender is a recorder: nothing is ever sent there)."""
    return ["93.184.215.14"]


def _st_run(base_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.contract.st_hooks",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {API_KEY}",
        "--mode",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--no-color",
    ]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False
    )


def _assert_clean(done: subprocess.CompletedProcess[str]) -> None:
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-8000:]
    assert "No issues found" in report or " 0 failures" in report or "passed" in report, report[-4000:]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = make_settings(tmp_path_factory.mktemp("conformance"), api_keys=[API_KEY])
    app = create_app(
        settings,
        store=MemoryJobStore(),
        storage=MemoryStorage(),
        runner=InProcessRunner(lambda device: FakeEngine()),
        fetcher=FakeFetcher(),
        webhooks=RecordingWebhooks(),
        policy=AddressPolicy(resolver=_public_address),
    )
    with ServerThread(app) as server:
        yield server.base_url


def test_server_conforms_to_its_schema(server_url: str, tmp_path: Path) -> None:
    _assert_clean(_st_run(server_url, tmp_path))


def test_mock_conforms_to_its_schema(tmp_path: Path) -> None:
    with MockServer(MockConfig(api_keys=(API_KEY,))) as server:
        _assert_clean(_st_run(server.base_url, tmp_path))
