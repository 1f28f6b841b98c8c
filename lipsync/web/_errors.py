"""Exception handlers: every error a client can see is the WaveSpeed error envelope."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from contracts import describe_validation_error
from lipsync.web._responses import error_response

__all__ = ["install_error_handlers"]

log = logging.getLogger(__name__)


def _message(exc: HTTPException) -> str:
    detail = exc.detail
    if isinstance(detail, str) and detail:
        # Starlette's default detail is the bare reason phrase ("Not Found"); keep it, WaveSpeed-ish text.
        return detail
    try:
        return HTTPStatus(exc.status_code).phrase
    except ValueError:
        return "error"


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, _message(exc), headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        # The location is a character offset, not a field; say what is wrong instead of naming "0".
        return error_response(400, "Request body is not valid JSON")
    message, _field = describe_validation_error(errors)
    return error_response(400, message)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Never leak a traceback or a non-JSON body: the SDK calls resp.json() on 200s and embeds text otherwise.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "Internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Map validation errors to 400 (message names the field), HTTP errors and crashes to the envelope."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)
