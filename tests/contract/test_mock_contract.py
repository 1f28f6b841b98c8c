"""The contract suite against the mock (in process, through an ASGI bridge: no socket)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mock_server.app import create_app
from mock_server.bridge import ASGIBridge
from mock_server.config import MockConfig
from mock_server.mock import WavespeedMock
from mock_server.output import sample_mp4
from tests.contract.suite import ContractSuite
from tests.contract.target import BaseTarget, JobSpec, MediaFile, tiny_wav


class MockTarget(BaseTarget):
    name = "mock"
    api_key = "contract-key"

    def __init__(self, client: httpx.Client, mock: WavespeedMock) -> None:
        self.client = client
        self.mock = mock

    def media_inputs(self) -> dict[str, str]:
        # The mock does not download inputs, so any well-formed URL will do.
        return {"video": "https://media.example/face.mp4", "audio": "https://media.example/speech.wav"}

    def media_files(self) -> dict[str, MediaFile]:
        return {
            "video": MediaFile("face.mp4", sample_mp4(), "video/mp4"),
            "audio": MediaFile("speech.wav", tiny_wav(), "audio/wav"),
        }

    def failing_job(self, code: int) -> JobSpec:
        return JobSpec(self.media_inputs(), {"X-Mock-Scenario": f"fail; code={code}"})

    def running_job(self) -> JobSpec:
        return JobSpec(self.media_inputs(), {"X-Mock-Scenario": "stuck"})

    def step(self) -> None:
        self.mock.advance(1.0)  # virtual time: no waiting


# One app per module, not per test: starting them cost more than the tests, which do not depend on each
# other's jobs.
@pytest.fixture(scope="module")
def bridge_target() -> Iterator[MockTarget]:
    app = create_app(MockConfig(api_keys=(MockTarget.api_key,)))
    with ASGIBridge(app) as bridge, httpx.Client(transport=bridge, base_url="http://mock.test") as client:
        yield MockTarget(client, app.state.mock)


@pytest.fixture
def contract_target(bridge_target: MockTarget) -> MockTarget:
    return bridge_target


class TestMockContract(ContractSuite):
    pass


@pytest.fixture(scope="module")
def socket_target() -> Iterator[MockTarget]:
    from mock_server.server import MockServer

    with (
        MockServer(MockConfig(api_keys=(MockTarget.api_key,))) as server,
        httpx.Client(base_url=server.base_url) as client,
    ):
        yield MockTarget(client, server.mock)


class TestMockOverHTTPContract(ContractSuite):
    """The same suite through uvicorn on a loopback socket (real HTTP framing, headers and keep-alive)."""

    @pytest.fixture
    def contract_target(self, socket_target: MockTarget) -> MockTarget:
        return socket_target
