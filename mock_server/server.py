"""Run the mock on a real socket with uvicorn: in a background thread (tests) or in the foreground (CLI).

The socket and uvicorn helpers are the server's own (``lipsync.web``); ``MockServer`` adds the mock instance.
"""

from __future__ import annotations

from lipsync.web import ServerThread, base_url_of, bind_socket, uvicorn_config
from mock_server.config import MockConfig
from mock_server.mock import WavespeedMock

__all__ = ["MockServer", "base_url_of", "bind_socket", "uvicorn_config"]


class MockServer(ServerThread):
    """``with MockServer() as server: server.base_url, server.mock`` — the mock on a free loopback port."""

    def __init__(
        self,
        mock: WavespeedMock | MockConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        from mock_server.app import create_app

        super().__init__(create_app(mock), host=host, port=port, name="wavespeed-mock")
        self.mock: WavespeedMock = self.app.state.mock

    def bound(self) -> None:
        self.mock.base_url = self.base_url

    def start(self) -> MockServer:
        super().start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)

    def __enter__(self) -> MockServer:
        return self.start()
