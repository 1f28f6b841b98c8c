"""``GET /healthz``: liveness plus what the runner reports (no auth, not part of the WaveSpeed API).

Counters named ``*_total`` count since this process started; the others are current values (docs/server.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from lipsync.server.state import server_of
from lipsync.web import envelope_response

__all__ = ["router"]

router = APIRouter()


@router.get("/healthz", summary="Liveness and worker status", tags=["ops"])
async def healthz(request: Request) -> Response:
    state = server_of(request)
    return envelope_response(
        {"status": "ok", "runner": state.runner.describe(), "inputs": state.resolver.describe()}
    )
