"""The WaveSpeed-compatible job server (``lipsync serve``).

``create_app`` takes its backends as arguments (see ``interfaces``); ``create_default_app`` wires the
embedded ones. Imports are lazy so a worker process (which imports ``lipsync.server.worker``) does not load
FastAPI, and nothing here imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from lipsync.server.app import create_app, create_default_app
    from lipsync.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app", "create_default_app"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "create_default_app"):
        from lipsync.server import app

        return getattr(app, name)
    if name == "ServerSettings":
        from lipsync.server.settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module 'lipsync.server' has no attribute {name!r}")
