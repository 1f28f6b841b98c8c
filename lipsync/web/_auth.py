"""Bearer API-key authentication as a FastAPI dependency (401 envelope on a missing or wrong key)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection, Iterable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lipsync.web._responses import api_error

__all__ = ["bearer_auth", "extract_bearer"]

KeySource = Collection[str] | Callable[[], Iterable[str]]

# auto_error=False: we raise our own envelope; the scheme object still documents "bearer" in OpenAPI.
_scheme = HTTPBearer(auto_error=False, description="WaveSpeed-style API key: `Authorization: Bearer <key>`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def extract_bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _matches(presented: str, accepted: Iterable[str]) -> bool:
    # Compare against every key without short-circuiting, each comparison constant-time, so the response
    # time says nothing about which key (or how much of one) matched.
    given = presented.encode()
    found = False
    for key in accepted:
        found |= hmac.compare_digest(given, key.encode())
    return found


def bearer_auth(keys: KeySource, *, allow_any: bool = False) -> Callable[..., str]:
    """A dependency that returns the presented key, or raises 401 (``{"code":401,...}``).

    *keys* is a collection, or a zero-argument callable returning the accepted keys on each request (so an
    app can rotate keys at runtime). An empty set of keys rejects everything. ``allow_any=True`` accepts any
    non-empty key (the mock's local-development default; a real server should never set it) while still
    answering 401 when the header is missing.
    """
    source: Callable[[], Iterable[str]] = keys if callable(keys) else (lambda: keys)

    def require_api_key(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_scheme)],
    ) -> str:
        if credentials is None or not credentials.credentials:
            raise api_error(401, "Missing API key: send 'Authorization: Bearer <key>'", headers=_CHALLENGE)
        if not allow_any and not _matches(credentials.credentials, source()):
            raise api_error(401, "Invalid API key", headers=_CHALLENGE)
        return credentials.credentials

    return require_api_key
