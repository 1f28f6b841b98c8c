"""History (``POST /api/v3/predictions``) and delete (``POST /api/v3/predictions/delete``), per API key."""

from __future__ import annotations

from starlette.responses import Response

from contracts import (
    MODEL_ID,
    DeleteRequest,
    DeleteResult,
    HistoryPage,
    HistoryRequest,
)
from lipsync.server.state import ApiContext
from lipsync.server.views import parse_iso_time, to_prediction
from lipsync.web import api_error, envelope_response

__all__ = ["delete_predictions", "list_predictions"]


def _time(field: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_iso_time(value)
    except ValueError:
        raise api_error(
            400, f"Invalid parameter '{field}': not an ISO-8601 time (got {value[:40]!r})"
        ) from None


async def list_predictions(query: HistoryRequest, ctx: ApiContext) -> Response:
    state = ctx.state
    after = _time("created_after", query.created_after)
    before = _time("created_before", query.created_before)
    if query.model is not None and query.model != MODEL_ID:
        return envelope_response(HistoryPage(page=query.page, items=[], total=0))
    jobs, total = await state.store.list_jobs(
        ctx.owner,
        page=query.page,
        page_size=query.page_size,
        status=query.status,
        created_after=after,
        created_before=before,
    )
    base_url = ctx.base_url
    items = [await to_prediction(job, state.links, base_url=base_url, inline_base64=False) for job in jobs]
    return envelope_response(HistoryPage(page=query.page, items=items, total=total))


async def delete_predictions(body: DeleteRequest, ctx: ApiContext) -> Response:
    """Deletes the key's finished or queued predictions and their files; running ones are cancelled instead."""
    state = ctx.state
    removed = await state.store.delete(ctx.owner, body.ids)
    for job in removed:
        state.resolver.cancel(job.id)
        await state.storage.delete_prefix(f"inputs/{job.id}")
        await state.storage.delete_prefix(f"outputs/{job.id}")
    return envelope_response(DeleteResult(deleted_count=len(removed)))
