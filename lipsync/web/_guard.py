"""Request bodies bounded while they are read, and by who is asking, before any route parses them.

FastAPI reads (and parses) a request's body before it resolves the route's dependencies, so the API-key
check of a route runs only after the whole body is in memory (JSON) or spooled to disk (multipart). This
pure-ASGI middleware sits in front of that: it authenticates from the ``Authorization`` header alone, picks
a limit from :class:`BodyLimits`, answers 413 at once when ``Content-Length`` is over it, and otherwise
counts the bytes as the app reads them, ending the request with 413 the moment the count passes the limit.

- a request without a valid API key: ``anonymous_bytes`` (small: the 401 the route then answers needs no
  body), so nobody can make the server read or spool a large body without a key;
- ``multipart/form-data`` with a valid key: ``multipart_bytes`` (the media cap plus the form's framing);
- anything else with a valid key: ``json_bytes``.

Paths under a ``signed`` prefix carry their credential in the URL (a signed upload target, checked by the
route), so the header says nothing: they get the media cap (``multipart_bytes``) whoever sends them, and
the route may cap tighter (the server's: the size the ticket signed).

Both the server and the mock install it (one line where each app is built); each passes its own key check
and limits. Every rejection is the WaveSpeed error envelope naming the limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lipsync.web._responses import error_response

__all__ = [
    "DEFAULT_ANONYMOUS_BYTES",
    "DEFAULT_JSON_BYTES",
    "MULTIPART_OVERHEAD",
    "BodyLimits",
    "BodyRejected",
    "BodyTimeout",
    "BodyTooLarge",
    "RequestGuard",
]

_KIB = 1024
#: Default cap of a JSON body with a valid key: room for two data: URIs of short clips (larger media goes
#: through an upload, whose cap is the media cap).
DEFAULT_JSON_BYTES = 16 * 1024 * _KIB
#: Default cap of a body without a valid key: the route answers 401 without needing it.
DEFAULT_ANONYMOUS_BYTES = 64 * _KIB
#: Multipart framing (boundaries, part headers) allowed on top of the media cap.
MULTIPART_OVERHEAD = 64 * _KIB


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Request-body caps in bytes, by what the request is (see the module docstring)."""

    json_bytes: int
    multipart_bytes: int
    anonymous_bytes: int = DEFAULT_ANONYMOUS_BYTES
    #: Longest wait for the next piece of a body (a client trickling bytes holds a connection); None: no cap.
    idle_timeout_s: float | None = None

    @classmethod
    def for_media(
        cls,
        *,
        json_bytes: int,
        media_bytes: int,
        anonymous_bytes: int = DEFAULT_ANONYMOUS_BYTES,
        idle_timeout_s: float | None = None,
    ) -> BodyLimits:
        """Limits whose multipart cap is one file of *media_bytes* plus the form's framing."""
        return cls(json_bytes, media_bytes + MULTIPART_OVERHEAD, anonymous_bytes, idle_timeout_s)


class BodyRejected(HTTPException):
    """A request body refused while it was read (the app's HTTPException handler writes the envelope)."""


class BodyTooLarge(BodyRejected):
    """A request body over its limit (HTTP 413)."""

    def __init__(self, limit: int, kind: str) -> None:
        self.limit = limit
        self.kind = kind
        super().__init__(413, f"Request body too large: the limit for {kind} is {limit} bytes")


class BodyTimeout(BodyRejected):
    """A request body that stopped arriving (HTTP 408)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(408, f"Request body timed out: no data for {timeout_s:g} seconds")


Authenticate = Callable[[str | None], bool]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value)
    return None


async def _refuse(exc: BodyRejected, scope: Scope, receive: Receive, send: Send) -> None:
    # ``Connection: close``: the unread rest of the body is not drained into this connection.
    response = error_response(exc.status_code, exc.detail, headers={"Connection": "close"})
    await response(scope, receive, send)


class RequestGuard:
    """``app.add_middleware(RequestGuard, limits=..., authenticate=...)`` (see the module docstring).

    *limits* is the limits or a zero-argument callable returning them (read per request, so a
    reconfigured mock takes effect at once); *authenticate* gets the ``Authorization`` header value (or
    None) and says whether it carries a valid key, without side effects.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: BodyLimits | Callable[[], BodyLimits],
        authenticate: Authenticate,
        signed: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self._limits: Callable[[], BodyLimits] = limits if callable(limits) else (lambda: limits)
        self._authenticate = authenticate
        self._signed = signed

    def _limit(self, scope: Scope, limits: BodyLimits) -> tuple[int, str]:
        if scope["path"].startswith(self._signed):
            return limits.multipart_bytes, "file uploads"
        raw = _header(scope, b"authorization")
        if not self._authenticate(raw.decode("latin-1") if raw is not None else None):
            return limits.anonymous_bytes, "requests without a valid API key"
        content_type = (_header(scope, b"content-type") or b"").lower()
        if content_type.startswith(b"multipart/form-data"):
            return limits.multipart_bytes, "file uploads"
        return limits.json_bytes, "request bodies"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self._limits()
        limit, kind = self._limit(scope, limits)
        idle_s = limits.idle_timeout_s
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(BodyTooLarge(limit, kind), scope, receive, send)
            return

        received = 0
        complete = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, complete
            if complete or idle_s is None:
                message = await receive()  # after the body, receive() waits for a disconnect: no cap
            else:
                try:
                    async with asyncio.timeout(idle_s):
                        message = await receive()
                except TimeoutError:
                    raise BodyTimeout(idle_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > limit:
                    raise BodyTooLarge(limit, kind)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyRejected as exc:
            # Routes normally turn it into the envelope (it is an HTTPException); this covers a reader
            # outside the routing layer (another middleware buffering the body).
            if started:
                raise
            await _refuse(exc, scope, receive, send)
