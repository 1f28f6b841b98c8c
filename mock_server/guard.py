"""The mock's ``RequestGuard`` arguments: the same body limits as the server, over the mock's keys."""

from __future__ import annotations

from typing import Any

from lipsync.web import BearerAuth, BodyLimits
from mock_server.mock import WavespeedMock
from mock_server.uploads import put_path

__all__ = ["guard_options"]


def guard_options(mock: WavespeedMock, auth: BearerAuth) -> dict[str, Any]:
    """Limits read per request (``mock.configure`` takes effect at once); the ticket's PUT target is signed
    by its unguessable id, like a presigned URL."""

    def limits() -> BodyLimits:
        config = mock.config
        return BodyLimits.for_media(json_bytes=config.max_json_bytes, media_bytes=config.max_upload_bytes)

    return {"limits": limits, "authenticate": auth.accepts, "signed": (put_path(""),)}
