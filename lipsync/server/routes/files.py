"""Signed, expiring downloads of stored objects (outputs and uploads): ``GET /files/{key}?expires=&sig=``.

No API key is needed (like a presigned bucket URL): the signature is the credential, it covers the key
and the expiry, and the key must pass the storage's own checks, so no link reaches outside storage.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import FileResponse, Response, StreamingResponse

from lipsync.server.keys import InvalidKey, check_key
from lipsync.server.local_storage import LocalStorage
from lipsync.server.signing import DOWNLOAD_PREFIX
from lipsync.server.state import server_of
from lipsync.web import error_response

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.api_route(DOWNLOAD_PREFIX + "{key:path}", methods=["GET", "HEAD"])
async def download_file(
    key: str,
    request: Request,
    expires: Annotated[int, Query()],
    sig: Annotated[str, Query()],
) -> Response:
    state = server_of(request)
    try:
        check_key(key)
    except InvalidKey:
        return error_response(404, "file not found")
    if not state.signer.check_download(key, expires, sig, now=state.clock.now()):
        return error_response(403, "Download URL is invalid or has expired")
    try:
        size = await state.storage.size(key)
        local = state.storage.path_of(key) if isinstance(state.storage, LocalStorage) else None
    except (InvalidKey, OSError):  # e.g. a symlink out of storage, or a file that cannot be read
        size = None
    if size is None:
        return error_response(404, "file not found")
    media_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    filename = key.rsplit("/", 1)[-1]
    headers = {
        "Content-Disposition": f'inline; filename="{filename}"',
        "Cache-Control": "private, max-age=3600",
    }
    if local is not None:
        return FileResponse(local, media_type=media_type, headers=headers)
    headers["Content-Length"] = str(size)
    return StreamingResponse(state.storage.iter_bytes(key), media_type=media_type, headers=headers)
