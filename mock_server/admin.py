"""``/__mock/*``: control and inspection over HTTP (not in the OpenAPI schema).

Open on loopback; with ``MockConfig.admin_token`` (``lipsync mock --admin-token``, required off loopback)
every route needs ``Authorization: Bearer <admin token>``. The journal shows credentials redacted unless
``MockConfig.journal_secrets``.

GET    /__mock/clock                      {"now": <unix s>, "iso": "..."}
POST   /__mock/clock/advance              {"seconds": 30}          -> the new time
GET    /__mock/requests                   journal; filters: method, path (prefix), prediction_id, kind, limit
DELETE /__mock/requests                   clear the journal
GET    /__mock/scenario                   {"default": "...", "queued": [...]}
POST   /__mock/scenario                   {"scenario": "fail; code=1402"}             new default
                                          {"scenario": "...", "times": 2}             the next 2 submits only
DELETE /__mock/scenario                   back to the start-up default, queue emptied
GET    /__mock/webhooks                   delivery attempts
POST   /__mock/reset                      forget everything (jobs, uploads, journal, deliveries, clock)
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from lipsync.web import api_error, envelope_response, error_response, extract_bearer
from mock_server.mock import WavespeedMock
from mock_server.scenarios import ScenarioError

__all__ = ["AdvanceRequest", "ScenarioRequest", "admin_router"]


#: The longest clock jump accepted (ten years): beyond it, times no longer fit dates and every submit fails.
MAX_ADVANCE_S = 10 * 365 * 24 * 3600


class AdvanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(ge=0, le=MAX_ADVANCE_S, allow_inf_nan=False)


class ScenarioRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scenario: str
    times: int | None = Field(default=None, ge=1, description="None: the new default; N: the next N submits")


def _admin_check(mock: WavespeedMock) -> Any:
    async def require_admin(request: Request) -> None:
        token = mock.config.admin_token
        if token is None:
            return
        given = extract_bearer(request.headers.get("authorization")) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise api_error(
                401,
                "Admin routes need the mock's admin token: send 'Authorization: Bearer <admin token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_admin


def admin_router(mock: WavespeedMock) -> APIRouter:
    router = APIRouter(prefix="/__mock", include_in_schema=False, dependencies=[Depends(_admin_check(mock))])

    def clock_state() -> dict[str, Any]:
        return {"now": mock.now(), "iso": mock.now_iso()}

    @router.get("/clock")
    async def get_clock() -> Response:
        return envelope_response(clock_state())

    @router.post("/clock/advance")
    async def advance_clock(body: AdvanceRequest) -> Response:
        mock.advance(body.seconds)
        return envelope_response(clock_state())

    @router.get("/requests")
    async def list_requests(
        method: str | None = None,
        path: str | None = None,
        prediction_id: str | None = None,
        kind: str | None = None,
        limit: Annotated[int | None, Query(ge=1)] = None,
    ) -> Response:
        entries = mock.journal.entries(method=method, path=path, prediction_id=prediction_id, kind=kind)
        if limit is not None:
            entries = entries[-limit:]
        return envelope_response(
            {
                "entries": [e.to_json(redact=not mock.config.journal_secrets) for e in entries],
                "dropped": mock.journal.dropped,
                "maxlen": mock.journal.maxlen,
            }
        )

    @router.delete("/requests")
    async def clear_requests() -> Response:
        mock.journal.clear()
        return envelope_response(None)

    def scenario_state() -> dict[str, Any]:
        return {"default": mock.default_scenario.text, "queued": [s.text for s in mock.queued_scenarios]}

    @router.get("/scenario")
    async def get_scenario() -> Response:
        return envelope_response(scenario_state())

    @router.post("/scenario")
    async def set_scenario(body: ScenarioRequest) -> Response:
        try:
            if body.times is None:
                mock.set_scenario(body.scenario)
            else:
                mock.queue_scenario(body.scenario, body.times)
        except ScenarioError as exc:
            return error_response(400, f"Invalid parameter 'scenario': {exc}")
        return envelope_response(scenario_state())

    @router.delete("/scenario")
    async def reset_scenario() -> Response:
        mock.clear_scenarios()
        return envelope_response(scenario_state())

    @router.get("/webhooks")
    async def list_webhooks() -> Response:
        return envelope_response({"deliveries": [d.to_json() for d in mock.deliveries]})

    @router.post("/reset")
    async def reset() -> Response:
        mock.reset()
        return envelope_response(None)

    return router
