"""The shared contract suite against ``modal_app``'s API, obtained through ``.local()``, over real HTTP.

Everything is the deployed code path except Modal itself: the ASGI app comes from ``modal_app.api.local()``
and every job is a spawned call of ``modal_app.LipSyncWorker().run_job.local(job_id)`` (enter hook + job
method) in its own thread and its own view of the Volume, over the fake Dict/Volume/FunctionCall. The
engine is the server suite's seed-driven fake (real media and the model are covered elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import modal_app
from lipsync.server.serving import ServerThread
from tests.contract.suite import ContractSuite
from tests.modal.conftest import FakeDeployment
from tests.server.conftest import make_settings
from tests.server.test_contract_server import ScenarioEngine, ServerTarget

pytestmark = pytest.mark.filterwarnings(
    # modal's .local() reminds that a local run has no Volume mounts: the fakes provide them.
    "ignore:The .* function is executing locally:UserWarning"
)


class ModalTarget(ServerTarget):
    name = "modal"


class _BufferedTransport(httpx.HTTPTransport):
    """schemathesis reads ``request.content`` afterwards; keep streamed (multipart) bodies readable."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return super().handle_request(request)


def run_gpu_call(job_id: str) -> Any:
    return modal_app.LipSyncWorker().run_job.local(job_id)


@pytest.fixture
def contract_target(tmp_path: Path) -> Iterator[ModalTarget]:
    settings = make_settings(
        tmp_path, api_keys=[ModalTarget.api_key], sync_timeout_s=20.0, max_active_jobs_per_key=1000
    )
    engine = ScenarioEngine()
    deployment = FakeDeployment(tmp_path, settings, engine=engine)
    deployment.use_target(run_gpu_call)
    with modal_app.wiring.use(deployment.api, gpu=deployment.gpu_backends):
        app = modal_app.api.local()
        with (
            ServerThread(app) as server,
            httpx.Client(base_url=server.base_url, timeout=30, transport=_BufferedTransport()) as client,
        ):
            try:
                yield ModalTarget(client)
            finally:
                engine.stop.set()
        deployment.function.join()


class TestModalContract(ContractSuite):
    pass
