"""The job state machine's transitions, as plain functions on a JobRecord.

Stores run these inside their own atomic section (a dict update, a SQLite ``BEGIN IMMEDIATE``
transaction, ...) after checking the precondition, so every backend applies exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts import TaskErrorCode
from lipsync.server.interfaces import JobOutcome, JobRecord

__all__ = ["CANCELLED_MESSAGE", "apply_cancel", "apply_claim", "apply_expiry", "apply_finish"]

#: ``error`` of a cancelled job (status failed, code 1405): the SDK has no "cancelled" it could poll for.
CANCELLED_MESSAGE = "cancelled: The prediction was cancelled"


def apply_claim(job: JobRecord, worker_id: str, *, now: float, lease_s: float) -> None:
    """created -> processing (precondition: status created)."""
    job.status = "processing"
    job.worker_id = worker_id
    job.lease_until = now + lease_s
    job.attempts += 1
    job.progress = 0.0
    if job.started_at is None:
        job.started_at = now
        job.timings = {**job.timings, "queue": max(0, round((now - job.created_at) * 1000))}


def apply_finish(
    job: JobRecord,
    *,
    status: JobOutcome,
    now: float,
    outputs: Sequence[str] = (),
    error: str = "",
    code: int | None = None,
    timings: dict[str, int] | None = None,
) -> None:
    """-> completed/failed (precondition: not terminal; for workers also: they hold the lease)."""
    job.status = status
    job.finished_at = now
    job.outputs = list(outputs)
    job.error = error
    job.code = code
    job.lease_until = None
    if status == "completed":
        job.progress = 1.0
    merged = {**job.timings, **(timings or {})}
    merged["total"] = max(0, round((now - job.created_at) * 1000))
    job.timings = merged


def apply_cancel(job: JobRecord, *, now: float) -> None:
    """created -> failed(1405) at once; processing -> cancel flag (the worker stops); terminal: unchanged."""
    if job.status == "created":
        apply_finish(
            job, status="failed", now=now, error=CANCELLED_MESSAGE, code=int(TaskErrorCode.TASK_FAILED)
        )
    elif job.status == "processing":
        job.cancel_requested = True


def apply_expiry(job: JobRecord, *, now: float, max_attempts: int, message: str) -> None:
    """A processing job whose lease ran out (its worker died or hung): retry, or fail with *message*."""
    if job.cancel_requested:
        apply_finish(
            job, status="failed", now=now, error=CANCELLED_MESSAGE, code=int(TaskErrorCode.TASK_FAILED)
        )
    elif job.attempts < max_attempts:
        job.status = "created"
        job.worker_id = None
        job.lease_until = None
        job.progress = None
    else:
        apply_finish(job, status="failed", now=now, error=message, code=int(TaskErrorCode.INTERNAL_ERROR))
