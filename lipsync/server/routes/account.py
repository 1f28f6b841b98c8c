"""Account-level endpoints WaveSpeed tools call: the webhook secret and the balance."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from contracts import Paths, WebhookSecret, WebhookSecretResponse
from lipsync.server.state import ApiDep
from lipsync.web import envelope_response

__all__ = ["router"]

router = APIRouter()


@router.get(Paths.WEBHOOK_SECRET, response_model=WebhookSecretResponse, summary="The webhook signing secret")
async def get_webhook_secret(ctx: ApiDep) -> Response:
    """Each API key has its own ``whsec_`` secret; callbacks for its jobs are signed with it."""
    return envelope_response(WebhookSecret(secret=ctx.state.signer.webhook_secret(ctx.owner)))


@router.get(Paths.BALANCE, summary="Account balance (USD)")
async def get_balance(ctx: ApiDep) -> Response:
    """A self-hosted server bills nothing: a constant (``LIPSYNC_REPORTED_BALANCE``) for tools that check."""
    return envelope_response({"balance": ctx.state.settings.reported_balance})
