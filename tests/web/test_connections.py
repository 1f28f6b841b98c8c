"""``connection_limits`` on a real uvicorn server: a client trickling its headers is disconnected, one
sending them promptly is served, and keep-alive requests after the first are timed again."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from lipsync.server.serving import ServerThread
from lipsync.web import connection_limits

HEADER_TIMEOUT_S = 0.5


def _hello(request: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    app = Starlette(routes=[Route("/", _hello)])
    limits = connection_limits(header_timeout_s=HEADER_TIMEOUT_S, max_connections=50)
    with ServerThread(app, **limits) as server:
        yield int(server.base_url.rsplit(":", 1)[1])


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_headers_that_never_finish_get_the_connection_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # no blank line: the headers never end
        assert _read_all(sock) == b""  # closed by the server, nothing answered


def test_a_prompt_request_is_served_and_a_stalled_second_one_is_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200") and first.endswith(b"hello")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # keep-alive, then stall mid-headers
        assert _read_all(sock) == b""


def test_the_connection_cap_is_passed_to_uvicorn() -> None:
    assert connection_limits(header_timeout_s=1, max_connections=7)["limit_concurrency"] == 7
