"""The mock off loopback and under abuse, through real HTTP: admin token, redacted journal, webhooks through
the SSRF guard, a bounded clock, and request bodies bounded before authentication."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from contracts import Paths
from mock_server.cli import is_loopback
from mock_server.config import MockConfig
from mock_server.server import MockServer
from tests.mock_server.conftest import INPUTS
from tests.mock_server.test_cli import LIPSYNC_CLI, running

KEY = "secret-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def server() -> Iterator[MockServer]:
    with MockServer(MockConfig(api_keys=(KEY,))) as running_mock:
        yield running_mock


def test_a_non_loopback_bind_without_an_admin_token_is_refused_with_a_warning() -> None:
    done = subprocess.run(
        [*LIPSYNC_CLI, "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "WARNING: the mock listens on 0.0.0.0" in done.stderr
    assert "requires --admin-token" in done.stderr


def test_off_loopback_the_admin_routes_and_the_journal_need_the_token() -> None:
    with running([*LIPSYNC_CLI, "--host", "0.0.0.0", "--port", "0", "--admin-token", "adm"]) as base:
        base = base.replace("0.0.0.0", "127.0.0.1")
        refused = httpx.get(base + "/__mock/requests")
        assert refused.status_code == 401
        assert "admin token" in refused.json()["message"]
        assert httpx.post(base + "/__mock/reset", headers={"Authorization": "Bearer nope"}).status_code == 401
        allowed = httpx.get(base + "/__mock/requests", headers={"Authorization": "Bearer adm"})
        assert allowed.status_code == 200


@pytest.mark.parametrize(
    ("host", "local"), [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False)]
)
def test_is_loopback(host: str, local: bool) -> None:
    assert is_loopback(host) is local


def test_the_journal_redacts_credentials_over_http(server: MockServer) -> None:
    headers = {**AUTH, "Cookie": "session=abc", "X-Api-Key": "xk-1"}
    assert httpx.post(server.base_url + Paths.SUBMIT, json=INPUTS, headers=headers).status_code == 200
    journal = httpx.get(server.base_url + "/__mock/requests")
    (entry,) = journal.json()["data"]["entries"]
    assert entry["headers"]["authorization"] == "Bearer <redacted>"
    assert entry["headers"]["cookie"] == "<redacted>"
    assert entry["headers"]["x-api-key"] == "<redacted>"
    assert KEY not in journal.text and "xk-1" not in journal.text


def test_an_absurd_clock_advance_is_a_400_and_later_submits_work(server: MockServer) -> None:
    reply = httpx.post(server.base_url + "/__mock/clock/advance", json={"seconds": 1e300})
    assert reply.status_code == 400
    assert reply.json()["message"].startswith("Invalid parameter 'seconds'")
    assert httpx.post(server.base_url + Paths.SUBMIT, json=INPUTS, headers=AUTH).status_code == 200


def test_webhooks_to_loopback_are_refused_unless_allowed() -> None:
    config = MockConfig(api_keys=(KEY,), webhook_allow=())
    with MockServer(config) as guarded:
        target = guarded.base_url + "/hook"  # loopback: the mock itself
        reply = httpx.post(
            guarded.base_url + Paths.SUBMIT, json=INPUTS, headers=AUTH, params={"webhook": target}
        )
        pid = reply.json()["data"]["id"]
        guarded.mock.advance(60)
        httpx.get(guarded.base_url + Paths.RESULT.format(id=pid), headers=AUTH)
        (delivery, *_) = guarded.mock.webhooks.wait_for(1, timeout=30)
        assert delivery.status is None
        assert delivery.error is not None and "is loopback" in delivery.error


def test_an_unauthenticated_large_body_is_refused_before_it_is_read(server: MockServer) -> None:
    reply = httpx.post(
        server.base_url + Paths.SUBMIT,
        content=b"x" * (128 * 1024),
        headers={"Content-Type": "application/json", "Authorization": "Bearer wrong"},
    )
    assert reply.status_code == 413
    assert reply.json()["message"] == (
        "Request body too large: the limit for requests without a valid API key is 65536 bytes"
    )
