"""The ``{code, message, data}`` envelope used by every WaveSpeed response, success or error."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = ["Envelope", "ErrorEnvelope", "error_envelope", "ok"]

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """Success: ``code`` 200, ``message`` "success", ``data`` the payload."""

    model_config = ConfigDict(extra="allow")

    code: int = 200
    message: str = "success"
    data: T


class ErrorEnvelope(BaseModel):
    """Error: ``code`` equals the HTTP status, ``message`` names the offending field, ``data`` is null."""

    model_config = ConfigDict(extra="allow")

    code: int
    message: str
    data: None = None


def ok(data: T) -> Envelope[T]:
    return Envelope[T](data=data)


def error_envelope(status: int, message: str) -> dict[str, Any]:
    """The JSON body of an error response (``data`` is always present and null)."""
    return ErrorEnvelope(code=status, message=message).model_dump(mode="json")
