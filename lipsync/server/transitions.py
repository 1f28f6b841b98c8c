"""The job state machine's transitions, as plain functions on a JobRecord.

``job_store.BackendJobStore`` runs these inside the backend's atomic section (a SQL transaction, a Dict
lock, ...) after checking the precondition, so every backend applies exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contracts import TaskErrorCode
from lipsync.server.interfaces import JobOutcome, JobRecord

__all__ = [
    "ACTIVE_STATUSES",
    "CANCELLED_MESSAGE",
    "apply_cancel",
    "apply_claim",
    "apply_expiry",
    "apply_finish",
    "apply_resolution_claim",
    "apply_resolved",
    "expirable",
    "resolution_claimable",
    "stored_statuses",
]

#: ``error`` of a cancelled job (status failed, code 1405): the SDK has no "cancelled" it could poll for.
CANCELLED_MESSAGE = "cancelled: The prediction was cancelled"

#: Statuses of jobs that count against an owner's active limit.
ACTIVE_STATUSES: tuple[str, ...] = ("resolving", "created", "processing")


def stored_statuses(status: str) -> tuple[str, ...]:
    """The stored statuses a public status filter matches (clients see ``resolving`` as ``created``)."""
    return ("created", "resolving") if status == "created" else (status,)


def resolution_claimable(job: JobRecord, *, now: float) -> bool:
    """A resolving job nobody holds: released, or its resolver's lease ran out."""
    return job.status == "resolving" and (job.lease_until is None or job.lease_until < now)


def expirable(job: JobRecord, *, now: float, worker_id: str | None = None) -> bool:
    """Whether ``expire_leases`` applies to *job*: a processing job whose lease ran out, or any of
    *worker_id*'s processing jobs when given; a resolving job whose resolver's lease ran out."""
    if worker_id is not None:
        return job.status == "processing" and job.worker_id == worker_id
    if job.status == "processing":
        return (job.lease_until or 0.0) < now
    return job.status == "resolving" and job.lease_until is not None and job.lease_until < now


def apply_resolution_claim(job: JobRecord, resolver_id: str, *, now: float, lease_s: float) -> None:
    """A resolver takes over a resolving job (precondition: ``resolution_claimable``)."""
    job.worker_id = resolver_id
    job.lease_until = now + lease_s
    job.attempts += 1


def apply_resolved(job: JobRecord, inputs: dict[str, str], timings: dict[str, int] | None) -> None:
    """resolving -> created (precondition: resolving, held by the caller). Resolution attempts do not
    count against the runs a worker may make."""
    job.status = "created"
    job.inputs = dict(inputs)
    job.sources = {}  # the inputs are in storage now; the row keeps no request text it no longer needs
    job.worker_id = None
    job.lease_until = None
    job.attempts = 0
    job.timings = {**job.timings, **(timings or {})}


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
    face: dict[str, Any] | None = None,
) -> None:
    """-> completed/failed (precondition: not terminal; for workers also: they hold the lease). *face*: the
    face report of a completed job (kept only then)."""
    job.status = status
    job.finished_at = now
    job.outputs = list(outputs)
    job.sources = {}
    job.error = error
    job.code = code
    job.lease_until = None
    job.face = dict(face) if face is not None and status == "completed" else None
    if status == "completed":
        job.progress = 1.0
    merged = {**job.timings, **(timings or {})}
    merged["total"] = max(0, round((now - job.created_at) * 1000))
    job.timings = merged


def apply_cancel(job: JobRecord, *, now: float) -> None:
    """resolving/created -> failed(1405) at once; processing -> cancel flag (the worker stops); terminal:
    unchanged."""
    if job.status in ("resolving", "created"):
        apply_finish(
            job, status="failed", now=now, error=CANCELLED_MESSAGE, code=int(TaskErrorCode.TASK_FAILED)
        )
    elif job.status == "processing":
        job.cancel_requested = True


def apply_expiry(job: JobRecord, *, now: float, max_attempts: int, message: str) -> None:
    """A processing job whose lease ran out (its worker died or hung): retry, or fail with *message*.
    A resolving job whose resolver's lease ran out: released for another resolver (which counts the
    attempt and gives up past the limit)."""
    if job.status == "resolving":
        job.worker_id = None
        job.lease_until = None
    elif job.cancel_requested:
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
