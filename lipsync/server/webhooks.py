"""Webhook delivery: WaveSpeed's signed callback (``webhook-signature: v3,<hex>``) with bounded retries.

The body is the bare prediction object (no envelope), signed with the owner's ``whsec_`` secret (see
``GET /api/v3/webhook/secret``). Each attempt is re-signed with a fresh timestamp so a slow retry still
passes the receiver's 300 s tolerance; all attempts share one ``webhook-id`` so receivers can de-duplicate.
A 2xx ends delivery; a 4xx other than 408/429 is the receiver refusing and is not retried; network errors,
408, 429 and 5xx are retried with exponential backoff. Webhook URLs go through the same SSRF guard as
input URLs, and redirects are not followed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx

from contracts import signature_headers
from lipsync.web.netguard import AddressPolicy, Refused, guarded_request

__all__ = ["HttpWebhookSender"]

log = logging.getLogger(__name__)

_RETRYABLE = frozenset({408, 429})


class HttpWebhookSender:
    def __init__(
        self,
        policy: AddressPolicy,
        *,
        attempts: int = 4,
        backoff_s: float = 2.0,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.policy = policy
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._transport = transport
        self._sleep = sleep
        self._clock = clock

    async def send(self, url: str, body: bytes, *, webhook_id: str, secret: str) -> bool:
        delay = self.backoff_s
        async with httpx.AsyncClient(
            transport=self._transport, trust_env=False, follow_redirects=False, timeout=self.timeout_s
        ) as client:
            for attempt in range(1, self.attempts + 1):
                timestamp = int(self._clock()) if self._clock else None
                headers = signature_headers(secret, webhook_id, body, timestamp=timestamp)
                outcome = await self._attempt(client, url, body, headers)
                if outcome == "delivered":
                    return True
                if outcome == "give_up":
                    break
                if attempt < self.attempts:
                    log.info("webhook %s attempt %d failed; retrying in %.1f s", webhook_id, attempt, delay)
                    await self._sleep(delay)
                    delay *= 2
        log.warning("webhook %s to %s was not delivered", webhook_id, url)
        return False

    async def _attempt(
        self, client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
    ) -> str:
        try:
            response = await guarded_request(client, self.policy, "POST", url, headers=headers, content=body)
        except Refused as exc:
            log.warning("webhook to %s refused: %s", url, exc)
            return "give_up"
        except httpx.HTTPError as exc:
            log.info("webhook to %s: %s", url, exc)
            return "retry"
        await response.aclose()
        if 200 <= response.status_code < 300:
            return "delivered"
        if response.status_code in _RETRYABLE or response.status_code >= 500:
            return "retry"
        return "give_up"
