"""Envelope JSON responses, serialised once with pydantic (no second validation pass)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import Response

from contracts import error_envelope

__all__ = ["EnvelopeResponse", "api_error", "envelope_response", "error_response"]


_OK_HEAD = b'{"code":200,"message":"success",'


class EnvelopeResponse(Response):
    """``application/json`` response whose body is already-serialised bytes."""

    media_type = "application/json"


def _dump(data: Any) -> bytes:
    if isinstance(data, bytes):  # already-serialised JSON (a cached payload)
        return data
    if isinstance(data, BaseModel):
        return data.model_dump_json().encode()
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def envelope_response(
    data: Any,
    *,
    status_code: int = 200,
    message: str = "success",
    headers: Mapping[str, str] | None = None,
) -> EnvelopeResponse:
    """``{"code": status_code, "message": message, "data": <data>}``; *data* may be a pydantic model, a
    JSON-able value, or ``bytes`` of already-serialised JSON.

    Built by concatenation so a model is serialised exactly once (by pydantic's Rust serialiser).
    """
    if status_code == 200 and message == "success":
        head = _OK_HEAD
    else:
        head = (
            json.dumps({"code": status_code, "message": message}, separators=(",", ":"))[:-1].encode() + b","
        )
    body = head + b'"data":' + _dump(data) + b"}"
    return EnvelopeResponse(body, status_code=status_code, headers=dict(headers) if headers else None)


def error_response(
    status_code: int, message: str, *, headers: Mapping[str, str] | None = None
) -> EnvelopeResponse:
    """``{"code": status_code, "message": message, "data": null}`` with that HTTP status."""
    body = json.dumps(error_envelope(status_code, message), separators=(",", ":")).encode()
    return EnvelopeResponse(body, status_code=status_code, headers=dict(headers) if headers else None)


def api_error(status_code: int, message: str, *, headers: Mapping[str, str] | None = None) -> HTTPException:
    """An exception the installed handlers turn into the error envelope: ``raise api_error(404, "...")``."""
    return HTTPException(status_code=status_code, detail=message, headers=dict(headers) if headers else None)
