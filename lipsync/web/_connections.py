"""Connection-level limits for uvicorn: a deadline for a request's headers, and a cap on connections.

uvicorn times out idle keep-alive connections but not a client that trickles a request's headers (one
byte a second holds a connection and a parser for ever), and it accepts any number of connections unless
told. ``connection_limits`` returns the ``uvicorn.Config`` keyword arguments that close both gaps; the body
of a request is bounded separately, while the app reads it (``RequestGuard``'s idle timeout).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "DEFAULT_HEADER_TIMEOUT_S",
    "DEFAULT_MAX_CONNECTIONS",
    "HeaderTimeoutProtocol",
    "connection_limits",
]

#: Defaults of ``LIPSYNC_HEADER_TIMEOUT_S`` / ``LIPSYNC_MAX_CONNECTIONS`` (and of ``lipsync mock``).
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNECTIONS = 1000


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request headers take longer than
    ``header_timeout_s`` (from the first byte of a request, or from the connection when none came)."""

    header_timeout_s = DEFAULT_HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def connection_limits(
    *, header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S, max_connections: int = DEFAULT_MAX_CONNECTIONS
) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments: headers within *header_timeout_s*, at most *max_connections*
    connections at once (uvicorn answers 503 beyond)."""
    protocol = type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": header_timeout_s})
    return {"http": protocol, "limit_concurrency": max_connections}
