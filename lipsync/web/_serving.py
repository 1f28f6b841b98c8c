"""Running an ASGI app with uvicorn on a socket bound up front, shared by the server and the mock.

The listening socket is bound (and listening) before uvicorn starts, so the base URL is known at once and early
connections simply wait in the backlog: no start-up polling is needed. ``ServerThread`` serves an app from a
background thread (end-to-end tests, ``bench/``); ``lipsync serve`` and ``lipsync mock`` run
``uvicorn.Server(uvicorn_config(app)).run(sockets=[bind_socket(...)])`` in the foreground.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

__all__ = ["ServerThread", "base_url_of", "bind_socket", "uvicorn_config"]


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
    """``http://host:port`` of a bound socket; a wildcard address becomes the loopback one (a usable URL)."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def uvicorn_config(app: Any, **overrides: Any) -> Any:
    """uvicorn settings for an API under load: uvloop + httptools when present, no access log."""
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


class ServerThread:
    """``with ServerThread(app) as server: server.base_url`` — *app* on a free loopback port."""

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0, name: str = "lipsync-server", **config: Any
    ) -> None:
        self.app = app
        self.host, self.port = host, port
        self.name = name
        self.config = config
        self.base_url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self) -> ServerThread:
        import uvicorn

        self._sock = bind_socket(self.host, self.port)
        self.base_url = base_url_of(self._sock)
        self.bound()
        self._server = uvicorn.Server(uvicorn_config(self.app, **self.config))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def bound(self) -> None:
        """Called once the socket listens and ``base_url`` is known, before serving starts (a hook)."""

    def stop(self, timeout: float = 30.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        thread, self._thread, self._server = self._thread, None, None
        if thread is not None:
            thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if thread is not None and thread.is_alive():
            raise RuntimeError(f"{self.name} thread did not stop within {timeout:g} s")

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
