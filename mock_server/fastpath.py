"""A fast path for the two requests a polling client repeats: submit and poll.

FastAPI's per-request machinery (route matching, dependency resolution, exception middleware) costs several
times what the mock's own work does. This ASGI middleware answers the *plain, valid* submit and poll itself,
through the very same handlers the FastAPI routes call (``mock_server.handlers``), and passes everything
else to the app untouched: a missing or wrong key, an unknown id, an invalid body, a ``?webhook=``, a
non-JSON content type. Those then get FastAPI's answer, so there is one implementation of every error.
Checks run before any state changes, so a request that falls through has had no effect.
``MockConfig(fast_path=False)`` turns it off; a test asserts both give byte-identical responses.
"""

from __future__ import annotations

import re

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts import LipsyncRequest, Paths
from lipsync.web import BearerAuth
from mock_server.handlers import handle_poll, handle_submit
from mock_server.mock import WavespeedMock

__all__ = ["FastPath"]


_POLL = re.compile(r"/api/v3/predictions/([^/]+)(?:/result)?")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class FastPath:
    def __init__(self, app: ASGIApp, mock: WavespeedMock, auth: BearerAuth) -> None:
        self.app = app
        self.mock = mock
        self.auth = auth

    def _authorized(self, scope: Scope) -> bool:
        try:
            self.auth.verify(_header(scope, b"authorization"))
        except HTTPException:
            return False  # FastAPI answers the 401
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.mock.config.fast_path:
            method, path = scope["method"], scope["path"]
            if method == "GET":
                match = _POLL.fullmatch(path)
                if match and self._authorized(scope) and self.mock.jobs.get(match[1]) is not None:
                    await handle_poll(self.mock, Request(scope, receive), match[1])(scope, receive, send)
                    return
            elif (
                method == "POST"
                and path == Paths.SUBMIT
                and not scope.get("query_string")
                and (_header(scope, b"content-type") or "").startswith("application/json")
                and self._authorized(scope)
            ):
                body, receive = await _buffer(receive)
                try:
                    parsed = LipsyncRequest.model_validate_json(body)
                except ValidationError:
                    pass  # FastAPI answers the 400 (same contracts model, same message)
                else:
                    await handle_submit(self.mock, Request(scope, receive), parsed, None)(
                        scope, receive, send
                    )
                    return
        await self.app(scope, receive, send)


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole request body; return it and a ``receive`` that replays it for whoever comes next."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay
