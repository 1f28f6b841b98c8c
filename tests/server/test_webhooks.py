"""Webhook delivery: v3 signatures a receiver can verify, bounded retries, the end-to-end callback."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts import Prediction, WebhookVerificationError, verify
from lipsync.server.backends import build_webhooks
from lipsync.server.serving import ServerThread
from lipsync.server.webhooks import HttpWebhookSender
from lipsync.web.netguard import AddressPolicy
from tests.server.conftest import AUTH, Harness, make_settings

SECRET = "whsec_test-secret-123"


@dataclass
class Receiver:
    base_url: str
    #: statuses to answer, in order (then 200)
    script: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(base_url="")

    async def hook(request: Request) -> Response:
        state.received.append((dict(request.headers), await request.body()))
        status = state.script.pop(0) if state.script else 200
        if status == 200:
            state.arrived.set()
        return Response(status_code=status)

    with ServerThread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as server:
        state.base_url = server.base_url
        yield state


def sender(**kw: Any) -> HttpWebhookSender:
    delays: list[float] = []

    async def no_wait(seconds: float) -> None:
        delays.append(seconds)

    s = HttpWebhookSender(AddressPolicy(["127.0.0.1"]), sleep=no_wait, **kw)
    s.delays = delays  # type: ignore[attr-defined]
    return s


def test_delivery_is_signed_and_verifiable(receiver: Receiver) -> None:
    body = b'{"id":"abc","status":"completed"}'
    ok = asyncio.run(sender().send(f"{receiver.base_url}/hook", body, webhook_id="abc", secret=SECRET))
    assert ok
    ((headers, got),) = receiver.received
    assert got == body and headers["content-type"] == "application/json"
    assert headers["webhook-id"] == "abc" and headers["webhook-signature"].startswith("v3,")
    verify(SECRET, headers, got)
    with pytest.raises(WebhookVerificationError):
        verify("whsec_wrong", headers, got)


def test_transient_failures_are_retried_with_backoff(receiver: Receiver) -> None:
    receiver.script = [500, 503, 429]
    s = sender(attempts=4, backoff_s=1.5)
    assert asyncio.run(s.send(f"{receiver.base_url}/hook", b"{}", webhook_id="j1", secret=SECRET))
    assert len(receiver.received) == 4
    assert s.delays == [1.5, 3.0, 6.0]  # type: ignore[attr-defined]
    for headers, body in receiver.received:  # every attempt is independently verifiable
        verify(SECRET, headers, body)
        assert headers["webhook-id"] == "j1"


def test_retries_are_bounded(receiver: Receiver) -> None:
    receiver.script = [500] * 10
    s = sender(attempts=3, backoff_s=0.1)
    assert not asyncio.run(s.send(f"{receiver.base_url}/hook", b"{}", webhook_id="j1", secret=SECRET))
    assert len(receiver.received) == 3


def test_a_client_error_is_not_retried(receiver: Receiver) -> None:
    receiver.script = [410]
    assert not asyncio.run(sender().send(f"{receiver.base_url}/hook", b"{}", webhook_id="j", secret=SECRET))
    assert len(receiver.received) == 1


def test_private_webhook_targets_are_refused_without_a_request(receiver: Receiver) -> None:
    strict = HttpWebhookSender(AddressPolicy())
    assert not asyncio.run(strict.send(f"{receiver.base_url}/hook", b"{}", webhook_id="j", secret=SECRET))
    assert receiver.received == []


def test_unreachable_receiver_is_retried_then_given_up() -> None:
    s = sender(attempts=2, backoff_s=0.0, timeout_s=2.0)
    assert not asyncio.run(s.send("http://127.0.0.1:9/hook", b"{}", webhook_id="j", secret=SECRET))
    assert s.delays == [0.0]  # type: ignore[attr-defined]


def test_job_webhook_end_to_end(
    harness_factory: Callable[..., Harness], receiver: Receiver, tmp_path: Path
) -> None:
    webhooks = build_webhooks(make_settings(tmp_path, fetch_allow="127.0.0.1"))
    h = harness_factory(webhooks=webhooks, fetch_allow="127.0.0.1")
    receiver.script = [502]  # the first delivery fails, the retry lands
    job = h.submit(webhook=f"{receiver.base_url}/hook").json()["data"]
    assert receiver.arrived.wait(15)
    secret = h.client.get("/api/v3/webhook/secret", headers=AUTH).json()["data"]["secret"]
    assert len(receiver.received) == 2
    headers, body = receiver.received[-1]
    verify(secret, headers, body)
    payload = Prediction.model_validate(json.loads(body))
    assert payload.id == job["id"] and payload.status == "completed" and payload.outputs
    assert "code" not in json.loads(body)  # the bare prediction object, no envelope
    assert headers["webhook-id"] == job["id"]
