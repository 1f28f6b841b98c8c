"""Webhooks through real HTTP: a loopback receiver verifies the v3 signature; delay/duplicate/drop/retry."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from contracts import Prediction, WebhookVerificationError, verify
from mock_server.config import DEFAULT_WEBHOOK_SECRET
from mock_server.mock import WavespeedMock
from tests.mock_server.conftest import poll_data, submit, submit_ok


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answers to give, in order (then 200)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise TimeoutError(f"{len(self.received)} of {count} callbacks")
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.cond:
                status = state.statuses.pop(0) if state.statuses else 200
                state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                state.cond.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def test_completed_job_calls_back_signed_v3_with_the_bare_prediction(
    api: httpx.Client, receiver: Receiver, wavespeed_mock: WavespeedMock
) -> None:
    pid = submit_ok(api, params={"webhook": receiver.url})["id"]
    poll_data(api, pid)
    final = poll_data(api, pid)
    ((headers, body),) = receiver.wait(1)
    verify(DEFAULT_WEBHOOK_SECRET, headers, body)  # raises if the signature is wrong
    assert headers["webhook-id"] == pid and headers["webhook-signature"].startswith("v3,")
    assert json.loads(body) == final  # the bare prediction, no envelope
    Prediction.model_validate_json(body)
    with pytest.raises(WebhookVerificationError):
        verify("whsec_other", headers, body)
    (delivery,) = wavespeed_mock.wait_for_webhooks(1)
    assert (delivery.ok, delivery.attempt, delivery.status) == (True, 1, 200)
    assert api.get("/__mock/webhooks").json()["data"]["deliveries"][0]["prediction_id"] == pid


def test_time_alone_ends_a_webhook_job_nobody_polls(
    api: httpx.Client, receiver: Receiver, wavespeed_mock: WavespeedMock
) -> None:
    pid = submit_ok(
        api, params={"webhook": receiver.url}, headers={"X-Mock-Scenario": "no_face; seconds=30"}
    )["id"]
    api.post("/__mock/clock/advance", json={"seconds": 30})
    ((_, body),) = receiver.wait(1)
    sent = json.loads(body)
    assert (sent["id"], sent["status"], sent["code"]) == (pid, "failed", 1403)


def test_cancel_calls_back_once(api: httpx.Client, receiver: Receiver, wavespeed_mock: WavespeedMock) -> None:
    pid = submit_ok(api, params={"webhook": receiver.url}, headers={"X-Mock-Scenario": "stuck"})["id"]
    api.post(f"/api/v3/predictions/{pid}/cancel")
    ((_, body),) = receiver.wait(1)
    assert json.loads(body)["code"] == 1405
    poll_data(api, pid)
    assert len(wavespeed_mock.wait_for_webhooks(1)) == 1


def test_duplicates_share_one_webhook_id(api: httpx.Client, receiver: Receiver) -> None:
    submit_ok(
        api,
        params={"webhook": receiver.url},
        enable_sync_mode=True,
        headers={"X-Mock-Scenario": "success; webhook_duplicates=3"},
    )
    got = receiver.wait(3)
    assert len({h["webhook-id"] for h, _ in got}) == 1 and len({b for _, b in got}) == 1


@pytest.mark.wavespeed_mock(webhook_retry_backoff_s=0.01)
def test_failing_receiver_is_retried(
    api: httpx.Client, receiver: Receiver, wavespeed_mock: WavespeedMock
) -> None:
    receiver.statuses = [500, 503]
    submit_ok(
        api,
        params={"webhook": receiver.url},
        enable_sync_mode=True,
        headers={"X-Mock-Scenario": "success; webhook_retries=2"},
    )
    receiver.wait(3)
    attempts = [(d.attempt, d.status) for d in wavespeed_mock.wait_for_webhooks(3)]
    assert attempts == [(1, 500), (2, 503), (3, 200)]


@pytest.mark.wavespeed_mock(webhook_retry_backoff_s=0.01)
def test_unreachable_receiver_is_recorded(api: httpx.Client, wavespeed_mock: WavespeedMock) -> None:
    submit_ok(
        api,
        params={"webhook": "http://127.0.0.1:9/nothing-listens"},
        enable_sync_mode=True,
        headers={"X-Mock-Scenario": "success; webhook_retries=1"},
    )
    attempts = wavespeed_mock.wait_for_webhooks(2)
    assert [(d.attempt, d.status, d.ok) for d in attempts] == [(1, None, False), (2, None, False)]
    assert attempts[0].error and "Connect" in attempts[0].error


def test_bad_signature_and_delay(api: httpx.Client, receiver: Receiver) -> None:
    submit_ok(
        api,
        params={"webhook": receiver.url},
        enable_sync_mode=True,
        headers={"X-Mock-Scenario": "success; webhook=bad_signature; webhook_delay=0.05"},
    )
    ((headers, body),) = receiver.wait(1)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(DEFAULT_WEBHOOK_SECRET, headers, body)


def test_drop_never_delivers(api: httpx.Client, receiver: Receiver, wavespeed_mock: WavespeedMock) -> None:
    submit_ok(
        api,
        params={"webhook": receiver.url},
        enable_sync_mode=True,
        headers={"X-Mock-Scenario": "success; webhook=drop"},
    )
    # Then a normal one: once it has arrived, the dropped one (dispatched earlier) would have too.
    r = submit(api, params={"webhook": receiver.url}, enable_sync_mode=True)
    ((_, body),) = receiver.wait(1)
    assert json.loads(body)["id"] == r.json()["data"]["id"]
    assert len(wavespeed_mock.wait_for_webhooks(1)) == 1
