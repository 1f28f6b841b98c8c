"""Run the mock on a real socket with uvicorn: in a background thread (tests) or in the foreground (CLI).

The listening socket is bound (and listening) before the server starts, so the base URL is known at once and
early connections simply wait in the backlog: no start-up polling is needed.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from mock_server.config import MockConfig
from mock_server.mock import WavespeedMock

__all__ = ["MockServer", "bind_socket", "uvicorn_config"]


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket (port 0: a free port chosen by the OS)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def base_url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def uvicorn_config(app: Any, **overrides: Any) -> Any:
    """uvicorn settings tuned for a mock under load: uvloop + httptools when present, no access log."""
    import uvicorn

    options: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "loop": "auto",
        "http": "auto",
        "timeout_keep_alive": 30,
        "backlog": 2048,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


class MockServer:
    """``with MockServer() as server: server.base_url, server.mock`` — the mock on a free loopback port."""

    def __init__(
        self,
        mock: WavespeedMock | MockConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        from mock_server.app import create_app

        self.app = create_app(mock)
        self.mock: WavespeedMock = self.app.state.mock
        self.host, self.port = host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self) -> MockServer:
        import uvicorn

        sock = bind_socket(self.host, self.port)
        self.base_url = base_url_of(sock)
        self.mock.base_url = self.base_url
        self._server = uvicorn.Server(uvicorn_config(self.app))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="wavespeed-mock", daemon=True
        )
        self._thread.start()
        self._sock = sock
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        sock = getattr(self, "_sock", None)
        if sock is not None:
            sock.close()
        self._server = self._thread = None

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
