"""The submit and poll handlers, shared by the FastAPI routes and the fast path (``mock_server.fastpath``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from contracts import LipsyncRequest
from lipsync.web import envelope_response, error_response
from mock_server.mock import MockError, WavespeedMock
from mock_server.scenarios import ScenarioError

__all__ = ["SCENARIO_HEADER", "handle_poll", "handle_submit", "mock_error", "note"]

#: Request header choosing a scenario for one submit; the response echoes the applied one under the same name.
SCENARIO_HEADER = "X-Mock-Scenario"


def note(request: Request, **fields: Any) -> None:
    """Tell the journal what this request was about (kind, prediction id, scenario)."""
    journal_note = request.scope.get("mock.note")
    if journal_note is not None:
        journal_note.update(fields)


def mock_error(exc: MockError) -> Response:
    return error_response(exc.status, exc.message, headers=exc.headers)


def _check_webhook(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MockError(400, f"Invalid parameter 'webhook': must be an http(s) URL (got {url[:80]!r})")


def handle_submit(
    mock: WavespeedMock, request: Request, body: LipsyncRequest, webhook: str | None
) -> Response:
    """A validated submit: create the job (or answer the scenario's 429, or 400 for a bad webhook/scenario)."""
    note(request, kind="submit")
    try:
        if webhook is not None:
            _check_webhook(webhook)
            if body.enable_base64_output:
                raise MockError(
                    400,
                    "webhook callback does not support base64 output, please use the normal API to use base64 output",
                )
        outcome = mock.submit(
            str(request.base_url).rstrip("/"),
            scenario_header=request.headers.get(SCENARIO_HEADER),
            webhook=webhook,
            sync=body.enable_sync_mode,
            base64_output=body.enable_base64_output,
            face=body.face,
        )
    except ScenarioError as exc:
        return error_response(400, f"Invalid {SCENARIO_HEADER} header: {exc}")
    except MockError as exc:
        note(request, scenario=exc.headers.get(SCENARIO_HEADER))
        return mock_error(exc)
    note(request, prediction_id=outcome.prediction.id, scenario=outcome.scenario.text)
    return envelope_response(outcome.prediction, headers={SCENARIO_HEADER: outcome.scenario.text})


def handle_poll(mock: WavespeedMock, request: Request, prediction_id: str) -> Response:
    """One poll of either result route (404 unknown id; a scenario may answer 429/5xx instead)."""
    note(request, kind="poll", prediction_id=prediction_id)
    try:
        pred, scenario = mock.poll(prediction_id)
    except MockError as exc:
        note(request, scenario=exc.headers.get(SCENARIO_HEADER))
        return mock_error(exc)
    note(request, scenario=scenario.text)
    return envelope_response(pred, headers={SCENARIO_HEADER: scenario.text})
