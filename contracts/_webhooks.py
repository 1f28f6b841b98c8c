"""WaveSpeed webhook signatures (scheme "v3").

``webhook-signature: v3,<hex HMAC-SHA256(key, f"{id}.{timestamp}.{raw_body}")>`` where the key is the
secret with the ``whsec_`` prefix stripped, used as raw UTF-8 — NOT base64-decoded (this is where WaveSpeed
differs from Standard Webhooks and Replicate). The body is the bare prediction object.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

__all__ = [
    "SIGNATURE_VERSION",
    "WebhookVerificationError",
    "sign",
    "signature_headers",
    "verify",
]

SIGNATURE_VERSION = "v3"
DEFAULT_TOLERANCE_S = 300


class WebhookVerificationError(ValueError):
    """The callback's signature is missing, wrong, or too old."""


def _key(secret: str) -> bytes:
    return secret.removeprefix("whsec_").encode("utf-8")


def sign(secret: str, webhook_id: str, timestamp: int | str, body: bytes | str) -> str:
    """The ``webhook-signature`` header value for one delivery."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    msg = f"{webhook_id}.{timestamp}.".encode() + raw
    digest = hmac.new(_key(secret), msg, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION},{digest}"


def signature_headers(
    secret: str, webhook_id: str, body: bytes | str, *, timestamp: int | None = None
) -> dict[str, str]:
    """All three headers a sender attaches (plus the JSON content type)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, webhook_id, ts, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Raise WebhookVerificationError unless *body* was signed with *secret* within *tolerance_s*.

    Several space-separated signatures are accepted (key rotation), as in Standard Webhooks.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        webhook_id = lower["webhook-id"]
        ts_text = lower["webhook-timestamp"]
        signatures = lower["webhook-signature"]
    except KeyError as missing:
        raise WebhookVerificationError(f"missing header {missing.args[0]}") from None
    try:
        ts = int(ts_text)
    except ValueError:
        raise WebhookVerificationError(f"webhook-timestamp is not an integer: {ts_text!r}") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise WebhookVerificationError(f"webhook-timestamp {ts} is outside the {tolerance_s} s tolerance")
    expected = sign(secret, webhook_id, ts, body)
    for candidate in signatures.split():
        if hmac.compare_digest(candidate.strip(), expected):
            return
    raise WebhookVerificationError("webhook-signature does not match")
