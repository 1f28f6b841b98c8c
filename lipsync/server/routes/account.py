"""Account-level endpoints WaveSpeed tools call: the webhook secret and the balance."""

from __future__ import annotations

from starlette.responses import Response

from contracts import WebhookSecret
from lipsync.server.state import ApiContext
from lipsync.web import envelope_response

__all__ = ["get_balance", "get_webhook_secret"]


async def get_webhook_secret(ctx: ApiContext) -> Response:
    """Each API key has its own ``whsec_`` secret; callbacks for its jobs are signed with it."""
    return envelope_response(WebhookSecret(secret=ctx.state.signer.webhook_secret(ctx.owner)))


async def get_balance(ctx: ApiContext) -> Response:
    """A self-hosted server bills nothing: a constant (``LIPSYNC_REPORTED_BALANCE``) for tools that check."""
    return envelope_response({"balance": ctx.state.settings.reported_balance})
