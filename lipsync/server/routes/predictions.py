"""Submit, result (both routes) and cancel.

Submit checks only the request itself (400 naming the field) and answers ``created`` at once: the inputs
are downloaded and checked in the background (``resolver.py``), and unusable ones end the job ``failed``
with code 1401/1402, as WaveSpeed reports them.
"""

from __future__ import annotations

import uuid

from starlette.responses import Response

from contracts import MAX_URL_LENGTH, LipsyncRequest, Prediction, TaskErrorCode
from lipsync.server.inputs import STORED, carries_data_uri, oversize_data_uri, source_prefix, stash_sources
from lipsync.server.interfaces import ActiveLimitExceeded, JobRecord
from lipsync.server.state import ApiContext, ServerState, wait_terminal
from lipsync.server.transitions import CANCELLED_MESSAGE
from lipsync.server.views import to_prediction
from lipsync.web import api_error, envelope_response, error_response
from lipsync.web.netguard import Refused

__all__ = [
    "CANCEL_WAIT_S",
    "cancel_prediction",
    "get_prediction",
    "get_result",
    "submit_lipsync",
    "sync_timeout_text",
]

#: How long a cancel request waits for a running job to stop before answering with its current state.
CANCEL_WAIT_S = 10.0


def sync_timeout_text(seconds: float) -> str:
    """The SDK recognises this text (and code 5004) as a sync-mode timeout."""
    return (
        f"Sync mode timed out after {seconds:g} seconds. The prediction is still processing asynchronously."
    )


def _too_many(state: ServerState, active: int) -> Response:
    limit = state.settings.max_active_jobs_per_key
    return error_response(
        429,
        f"Too many active predictions for this API key ({active} of {limit}); retry when one has finished",
        headers={"Retry-After": str(state.settings.retry_after_s)},
    )


async def _check_webhook(state: ServerState, url: str) -> None:
    if len(url) > MAX_URL_LENGTH:  # it is kept in the job's row
        raise api_error(400, f"Invalid parameter 'webhook': URL longer than {MAX_URL_LENGTH} characters")
    try:
        await state.policy.pin(url)
    except Refused as exc:
        raise api_error(400, f"Invalid parameter 'webhook': {exc}") from None


async def _owned(state: ServerState, prediction_id: str, owner: str) -> JobRecord:
    job = await state.store.get(prediction_id)
    if job is None or job.owner != owner:
        raise api_error(404, "prediction not found")
    return job


async def submit_lipsync(
    body: LipsyncRequest,
    ctx: ApiContext,
    webhook: str | None = None,
) -> Response:
    state = ctx.state
    settings = state.settings
    if webhook is not None:
        if body.enable_base64_output:
            raise api_error(
                400,
                "webhook callback does not support base64 output, please use the normal API to use base64 output",
            )
        await _check_webhook(state, webhook)
    if (oversize := oversize_data_uri(body, settings.max_input_bytes)) is not None:
        raise api_error(400, oversize)
    limit = settings.max_active_jobs_per_key
    # create() below enforces the limit atomically. Counting first only pays off before data: URIs are
    # written to storage; for URLs it would be one more store read on every submit's path.
    if carries_data_uri(body) and (active := await state.store.count_active(ctx.owner)) >= limit:
        return _too_many(state, active)

    base_url = ctx.base_url
    job_id = uuid.uuid4().hex
    sources = await stash_sources(state.storage, job_id, body)  # data: URIs must outlive this process
    job = state.resolver.hold(
        JobRecord(
            id=job_id,
            owner=ctx.owner,
            base_url=base_url,
            # model_version: the client's choice, else LIPSYNC_MODEL_VERSION, fixed now so the record says
            # what runs.
            options=body.run_options(default_version=settings.model_version),
            inputs={},
            created_at=state.clock.now(),
            webhook=webhook,
            base64_output=body.enable_base64_output,
            sources=sources,
        )
    )
    try:
        await state.store.create(job, active_limit=limit)
    except ActiveLimitExceeded as exc:
        if any(ref.startswith(STORED) for ref in sources.values()):
            await state.storage.delete_prefix(source_prefix(job_id))
        return _too_many(state, exc.active)
    state.resolver.start(job)

    if not body.enable_sync_mode:
        return envelope_response(await to_prediction(job, state.links, base_url=base_url))
    final = await wait_terminal(state, job_id, settings.sync_timeout_s) or job
    prediction = await to_prediction(final, state.links, base_url=base_url)
    if not final.is_terminal:
        prediction = prediction.model_copy(
            update={
                "status": "processing",
                "code": int(TaskErrorCode.TIMEOUT),
                "error": sync_timeout_text(settings.sync_timeout_s),
            }
        )
    return envelope_response(prediction)


async def _poll(ctx: ApiContext, prediction_id: str) -> Response:
    job = await _owned(ctx.state, prediction_id, ctx.owner)
    prediction: Prediction = await to_prediction(job, ctx.state.links, base_url=ctx.base_url)
    return envelope_response(prediction)


async def get_result(prediction_id: str, ctx: ApiContext) -> Response:
    return await _poll(ctx, prediction_id)


async def get_prediction(prediction_id: str, ctx: ApiContext) -> Response:
    return await _poll(ctx, prediction_id)


async def cancel_prediction(prediction_id: str, ctx: ApiContext) -> Response:
    state = ctx.state
    job = await _owned(state, prediction_id, ctx.owner)
    if job.is_terminal:
        raise api_error(409, f"prediction already {job.status}")
    updated = await state.store.cancel(prediction_id, now=state.clock.now())
    if updated is None:
        raise api_error(404, "prediction not found")
    if updated.is_terminal and updated.error != CANCELLED_MESSAGE:  # it ended on its own a moment ago
        raise api_error(409, f"prediction already {updated.status}")
    # Resolving or queued: it ended at once (and its resolution stops); running: its worker stops at the
    # next heartbeat. The runner hears of both, so it can also drop work it scheduled for a queued job.
    state.resolver.cancel(prediction_id)
    await state.runner.cancel(prediction_id)
    if updated.is_terminal:
        await state.notifier.job_finished(updated)
    else:
        updated = await wait_terminal(state, prediction_id, CANCEL_WAIT_S) or updated
    return envelope_response(await to_prediction(updated, state.links, base_url=ctx.base_url))
