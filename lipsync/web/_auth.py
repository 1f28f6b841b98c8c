"""Bearer API-key authentication as a FastAPI dependency (401 envelope on a missing or wrong key)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection, Iterable

from fastapi import Request
from fastapi.security import HTTPBearer

from lipsync.web._responses import api_error

#: How both apps document the bearer scheme.
AUTH_DESCRIPTION = "WaveSpeed-style API key: `Authorization: Bearer <key>`"

__all__ = ["AUTH_DESCRIPTION", "BearerAuth", "bearer_auth", "extract_bearer"]

KeySource = Collection[str] | Callable[[], Iterable[str]]
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


class BearerAuth(HTTPBearer):
    """The dependency ``bearer_auth`` returns. Being an ``HTTPBearer`` makes FastAPI document the bearer
    scheme in OpenAPI; overriding ``__call__`` keeps it one async dependency (a plain ``def`` one would run in
    a worker thread, and a nested one costs another resolution step, on every request)."""

    def __init__(self, keys: KeySource, allow_any: bool | Callable[[], bool] = False) -> None:
        super().__init__(
            auto_error=False,
            scheme_name="HTTPBearer",
            description=AUTH_DESCRIPTION,
        )
        self._keys: Callable[[], Iterable[str]] = keys if callable(keys) else (lambda: keys)
        self._allow_any: Callable[[], bool] = allow_any if callable(allow_any) else (lambda: allow_any)

    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        return self.verify(request.headers.get("authorization"))

    def accepts(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries an accepted key (``RequestGuard``'s check)."""
        token = extract_bearer(authorization)
        return token is not None and (self._allow_any() or _matches(token, self._keys()))

    def verify(self, authorization: str | None) -> str:
        """The key in an ``Authorization`` header value, or the 401 ``HTTPException`` (no side effects)."""
        return self.check(extract_bearer(authorization))

    def check(self, token: str | None) -> str:
        """*token* (a bearer token, None when missing), or the 401 ``HTTPException`` (no side effects)."""
        if not token:
            raise api_error(401, "Missing API key: send 'Authorization: Bearer <key>'", headers=_CHALLENGE)
        if not self._allow_any() and not _matches(token, self._keys()):
            raise api_error(401, "Invalid API key", headers=_CHALLENGE)
        return token


def bearer_auth(keys: KeySource, *, allow_any: bool | Callable[[], bool] = False) -> BearerAuth:
    """A dependency that returns the presented key, or raises 401 (``{"code":401,...}``).

    *keys* is a collection, or a zero-argument callable returning the accepted keys on each request (so an
    app can rotate keys at runtime). An empty set of keys rejects everything. ``allow_any=True`` (or a callable
    returning True) accepts any non-empty key — the mock's local-development default; a real server should
    never set it — while still answering 401 when the header is missing.
    """
    return BearerAuth(keys, allow_any)
