"""Uploads: the ticket flow (SDK >= 1.0.11: ticket, then PUT to a signed URL) and the legacy multipart one.

The PUT target carries its own authorisation (a signature over key, expiry and size cap), because the SDK
sends the ticket's headers only. An upload's ``download_url`` is a signed link of this server; submitting
it as an input is resolved locally (see ``inputs.py``). Whether the bytes are media is checked when a job
uses them (before it is queued).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, UploadFile
from starlette.responses import Response

from contracts import (
    BinaryUploadResult,
    UploadInstruction,
    UploadTicket,
    UploadTicketRequest,
    media_type_of,
)
from lipsync.server.housekeeping import upload_usage
from lipsync.server.keys import InvalidKey, upload_key
from lipsync.server.signing import UPLOAD_PREFIX
from lipsync.server.state import ApiContext, ServerState, server_of
from lipsync.web import api_error, envelope_response, error_response

__all__ = ["create_upload", "storage_router", "upload_binary"]

storage_router = APIRouter(include_in_schema=False)

_CHUNK = 1 << 20


async def _quota_left(state: ServerState, owner: str) -> int | None:
    """Bytes *owner* may still upload (``LIPSYNC_UPLOAD_QUOTA_BYTES``), or None when storage cannot tell."""
    used = await upload_usage(state.storage, owner)
    return None if used is None else state.settings.upload_quota_bytes - used


def _over_quota(state: ServerState, left: int) -> Response:
    quota = state.settings.upload_quota_bytes
    return error_response(
        413,
        f"Upload quota exceeded: this API key may store {quota} bytes of uploads and has "
        f"{max(0, left)} left; uploads are deleted {state.settings.url_ttl_s} s after they were stored",
    )


async def create_upload(body: UploadTicketRequest, ctx: ApiContext) -> Response:
    state = ctx.state
    limit = state.settings.max_input_bytes
    if body.size > limit:
        raise api_error(413, f"Invalid parameter 'size': larger than the {limit} byte upload limit")
    left = await _quota_left(state, ctx.owner)
    if left is not None and (left <= 0 or body.size > left):
        return _over_quota(state, left)
    key = upload_key(ctx.owner, body.filename)
    base_url = ctx.base_url
    expires = int(state.clock.now()) + state.settings.upload_ttl_s
    max_bytes = body.size if body.size > 0 else limit
    headers = {"Content-Type": body.content_type} if body.content_type else {}
    ticket = UploadTicket(
        type=media_type_of(body.content_type),
        filename=body.filename,
        size=body.size,
        download_url=state.links.download(base_url, key),
        upload=UploadInstruction(
            url=state.signer.upload_url(base_url, key, expires=expires, max_bytes=max_bytes), headers=headers
        ),
    )
    return envelope_response(ticket)


async def upload_binary(file: UploadFile, ctx: ApiContext) -> Response:
    state = ctx.state
    filename = file.filename or "upload"
    key = upload_key(ctx.owner, filename)

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await file.read(_CHUNK):
            yield chunk

    limit = state.settings.max_input_bytes
    left = await _quota_left(state, ctx.owner)
    if left is not None and left <= 0:
        return _over_quota(state, left)
    try:
        size = await state.storage.put_stream(key, chunks(), max_bytes=min(limit, left or limit))
    except ValueError:
        if left is not None and left < limit:
            return _over_quota(state, left)
        return error_response(413, f"Upload larger than the {limit} byte limit")
    result = BinaryUploadResult(
        type=media_type_of(file.content_type),
        download_url=state.links.download(ctx.base_url, key),
        filename=filename,
        size=size,
    )
    return envelope_response(result)


@storage_router.put(UPLOAD_PREFIX + "{key:path}")
async def put_upload(
    key: str,
    request: Request,
    expires: Annotated[int, Query()],
    max_bytes: Annotated[int, Query(alias="max", ge=0)],
    sig: Annotated[str, Query()],
) -> Response:
    state = server_of(request)
    if not state.signer.check_upload(key, expires, max_bytes, sig, now=state.clock.now()):
        return error_response(403, "Upload URL is invalid or has expired")
    left = await _quota_left(state, key.split("/")[1])  # uploads/<owner>/...: signed, so trusted
    if left is not None and left <= 0:
        return _over_quota(state, left)
    cap = max_bytes if left is None else min(max_bytes, left)
    try:
        size = await state.storage.put_stream(key, request.stream(), max_bytes=cap)
    except InvalidKey:
        return error_response(400, "Invalid upload key")
    except ValueError:
        if cap < max_bytes:
            return _over_quota(state, cap)
        return error_response(413, f"Upload larger than the {max_bytes} bytes announced in the ticket")
    return envelope_response({"size": size})
