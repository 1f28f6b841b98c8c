"""Call an ASGI app synchronously from any thread: the app (and its lifespan) runs on its own event loop.

``ASGIBridge`` is what the respx fixture forwards intercepted requests into, and it is also a plain
``httpx.BaseTransport`` (``httpx.Client(transport=bridge)``), so a sync client can talk to any ASGI app —
the mock, or the real server in the contract suite — without a socket. One loop for the app's whole life
means its background work (webhook deliveries, the clock ticker) behaves as under uvicorn.
"""

from __future__ import annotations

import contextlib
from typing import Any

import anyio.from_thread
import httpx

__all__ = ["ASGIBridge"]


class ASGIBridge(httpx.BaseTransport):
    """``with ASGIBridge(app) as transport: httpx.Client(transport=transport, base_url=...)``."""

    def __init__(
        self, app: Any, *, client: tuple[str, int] = ("127.0.0.1", 50000), timeout_s: float = 60.0
    ) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client)
        self._stack: contextlib.ExitStack | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None

    def start(self) -> ASGIBridge:
        if self._stack is not None:
            return self
        stack = contextlib.ExitStack()
        try:
            portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
            lifespan = getattr(getattr(self.app, "router", None), "lifespan_context", None)
            if lifespan is not None:
                stack.enter_context(portal.wrap_async_context_manager(lifespan(self.app)))
        except BaseException:
            stack.close()
            raise
        self._stack, self._portal = stack, portal
        return self

    def close(self) -> None:
        stack, self._stack, self._portal = self._stack, None, None
        if stack is not None:
            stack.close()

    def __enter__(self) -> ASGIBridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._portal is None:
            raise RuntimeError("ASGIBridge is not started (use it as a context manager)")
        # A fresh request with the body in memory: the original's stream may be sync-only or already read.
        body = request.read()
        forwarded = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        status, headers, content = self._portal.call(self._send, forwarded)
        # A stream, not content=: the client then reads and closes it, which is what sets response.elapsed.
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content), request=request)

    async def _send(self, request: httpx.Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        with anyio.fail_after(self.timeout_s):
            response = await self._asgi.handle_async_request(request)
            content = await response.aread()
        return response.status_code, response.headers.raw, content
