"""Webhook delivery: POST the bare prediction, signed with WaveSpeed's v3 scheme, when a job ends.

Deliveries run on an asyncio loop (the app's, bound at start-up) so a slow receiver never blocks a request.
Every attempt is recorded (``deliveries``) and tests can wait for them without sleeping
(``wait_for(n, timeout)``). The scenario controls delay, duplicates, drops, bad signatures and retries.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import httpx

from contracts import Prediction, signature_headers
from lipsync.web.netguard import AddressPolicy, guarded_request
from mock_server.scenarios import Scenario

__all__ = ["HttpxWebhookSender", "WebhookDelivery", "WebhookDispatcher", "WebhookSender"]

#: The secret used for ``webhook=bad_signature`` deliveries (anything but the real one).
_WRONG_SECRET = "whsec_this-is-not-the-secret"


class WebhookSender(Protocol):
    """Transport seam: send one delivery, return the receiver's HTTP status (raise on transport errors)."""

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int: ...


class HttpxWebhookSender:
    """The default sender: one short-lived httpx.AsyncClient per delivery (deliveries are rare and a client
    bound to one event loop must not leak into another). Every target goes through the server's SSRF guard
    (``AddressPolicy``: public addresses, plus the *allow* exceptions; no redirects followed); a refused one
    is a failed delivery whose error says why."""

    def __init__(self, timeout_s: float = 10.0, *, allow: Sequence[str] = ()) -> None:
        self.timeout_s = timeout_s
        self.policy = AddressPolicy(allow)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        async with httpx.AsyncClient(timeout=self.timeout_s, trust_env=False) as client:
            response = await guarded_request(client, self.policy, "POST", url, headers=headers, content=body)
            await response.aclose()
            return response.status_code


@dataclass(frozen=True)
class WebhookDelivery:
    """One delivery attempt."""

    prediction_id: str
    url: str
    attempt: int
    copy: int
    status: int | None
    error: str | None
    headers: dict[str, str]
    body: str
    wall_time: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class WebhookDispatcher:
    def __init__(
        self,
        secret: str,
        sender: WebhookSender | None = None,
        *,
        retry_backoff_s: float = 0.2,
        max_records: int = 1000,
    ) -> None:
        self.secret = secret
        self.sender: WebhookSender = sender or HttpxWebhookSender()
        self.retry_backoff_s = retry_backoff_s
        self._records: deque[WebhookDelivery] = deque(maxlen=max_records)
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    # -- scheduling ---------------------------------------------------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Run deliveries on *loop* (the app's loop; called from the app's lifespan)."""
        self._loop = loop

    def dispatch(self, url: str, prediction: Prediction, scenario: Scenario) -> None:
        """Deliver *prediction* to *url* in the background, as *scenario* says."""
        if scenario.webhook == "drop":
            return
        self._spawn(self._deliver(url, prediction, scenario))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._loop if self._loop is not None and not self._loop.is_closed() else running
        if loop is not None and loop is running:
            task: asyncio.Future[None] = loop.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif loop is not None:
            cfut = asyncio.run_coroutine_threadsafe(coro, loop)
            cfut.add_done_callback(lambda _f: None)
        else:
            # No loop anywhere (a plain Python call outside any server): deliver on a daemon thread.
            threading.Thread(target=asyncio.run, args=(coro,), daemon=True, name="mock-webhook").start()

    # -- delivery -----------------------------------------------------------------------------------------
    async def _deliver(self, url: str, prediction: Prediction, scenario: Scenario) -> None:
        if scenario.webhook_delay:
            await asyncio.sleep(scenario.webhook_delay)
        body = prediction.model_dump_json().encode()
        secret = _WRONG_SECRET if scenario.webhook == "bad_signature" else self.secret
        # One signature for all copies: a duplicate is the same delivery arriving twice (same webhook-id).
        headers = signature_headers(secret, prediction.id, body, timestamp=int(time.time()))
        for copy in range(1, scenario.webhook_duplicates + 1):
            for attempt in range(1, scenario.webhook_retries + 2):
                status: int | None = None
                error: str | None = None
                try:
                    status = await self.sender.post(url, body, headers)
                except Exception as exc:  # any transport failure is recorded, then retried
                    error = f"{type(exc).__name__}: {exc}"
                self._record(
                    WebhookDelivery(
                        prediction_id=prediction.id,
                        url=url,
                        attempt=attempt,
                        copy=copy,
                        status=status,
                        error=error,
                        headers=dict(headers),
                        body=body.decode(),
                        wall_time=time.time(),
                    )
                )
                if status is not None and 200 <= status < 300:
                    break
                if attempt <= scenario.webhook_retries:
                    await asyncio.sleep(self.retry_backoff_s * 2 ** (attempt - 1))

    def _record(self, delivery: WebhookDelivery) -> None:
        with self._cond:
            self._records.append(delivery)
            self._cond.notify_all()

    # -- inspection ---------------------------------------------------------------------------------------
    @property
    def deliveries(self) -> list[WebhookDelivery]:
        with self._cond:
            return list(self._records)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[WebhookDelivery]:
        """Block until at least *count* attempts are recorded (TimeoutError after *timeout* seconds).

        Must not be called on the loop that runs the deliveries (use ``await asyncio.to_thread(...)`` there).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._records) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self._records)} of {count} webhook deliveries after {timeout} s"
                    )
                self._cond.wait(left)
            return list(self._records)

    def clear(self) -> None:
        with self._cond:
            self._records.clear()
