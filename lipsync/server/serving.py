"""Running the server with uvicorn: the helpers live in ``lipsync.web`` (shared with the mock)."""

from __future__ import annotations

from lipsync.web._serving import ServerThread, base_url_of, bind_socket, uvicorn_config

__all__ = ["ServerThread", "base_url_of", "bind_socket", "uvicorn_config"]
