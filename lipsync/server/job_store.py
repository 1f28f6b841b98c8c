"""The one ``JobStore``: the job state machine's rules over any :class:`~lipsync.server.store_backend.StoreBackend`.

Every transition is a ``backend.update`` whose change function re-checks the precondition and applies the
shared ``transitions`` function inside the backend's atomic section, so memory, SQLite, PostgreSQL and
Modal's Dict apply exactly the same rules, written once here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from lipsync.server.interfaces import HeartbeatReply, JobOutcome, JobRecord
from lipsync.server.store_backend import Match, StoreBackend
from lipsync.server.transitions import (
    ACTIVE_STATUSES,
    apply_cancel,
    apply_claim,
    apply_expiry,
    apply_finish,
    apply_resolution_claim,
    apply_resolved,
    expirable,
    resolution_claimable,
    stored_statuses,
)

__all__ = ["BackendJobStore", "describe_transition"]

#: One INFO line per job transition (``lipsync serve`` shows them): what happened, for how long, and why.
log = logging.getLogger("lipsync.jobs")

_TERMINAL = ("completed", "failed")
_NOT_RUNNING = ("resolving", "created", *_TERMINAL)


def _held(job: JobRecord, status: str, holder: str) -> bool:
    """The ownership check of every holder's write: *job* is in *status* and leased to *holder*."""
    return job.status == status and job.worker_id == holder


def describe_transition(job: JobRecord, event: str) -> str:
    """``job <id> <event>: <status>`` plus durations and the error code and message of a failed job."""
    parts = [f"job {job.id} {event}: {job.public_status}"]
    if job.is_terminal and job.finished_at is not None:
        if job.started_at is not None:
            parts.append(f"ran {job.finished_at - job.started_at:.1f} s")
        parts.append(f"{job.finished_at - job.created_at:.1f} s since submit")
    if job.status == "failed":
        parts.append(f"code {job.code}: {job.error[:200]}")
    return ", ".join(parts)


def _logged(jobs: list[JobRecord], event: Callable[[JobRecord], str]) -> list[JobRecord]:
    for job in jobs:
        log.info(describe_transition(job, event(job)))
    return jobs


class BackendJobStore:
    """``interfaces.JobStore`` over *backend*."""

    def __init__(self, backend: StoreBackend) -> None:
        self.backend = backend

    async def _one(
        self, job_id: str, change: Callable[[JobRecord], bool], event: Callable[[JobRecord], str]
    ) -> JobRecord | None:
        done = _logged(await self.backend.update(Match(ids=(job_id,)), change), event)
        return done[0] if done else None

    async def create(self, job: JobRecord, *, active_limit: int | None = None) -> None:
        active = Match(owner=job.owner, statuses=ACTIVE_STATUSES)
        await self.backend.insert(job, active_limit=active_limit, active=active)
        log.info(describe_transition(job, "accepted"))

    async def get(self, job_id: str) -> JobRecord | None:
        return await self.backend.get(job_id)

    async def count_active(self, owner: str) -> int:
        _, n = await self.backend.scan(Match(owner=owner, statuses=ACTIVE_STATUSES), limit=0)
        return n

    async def has_queued(self) -> bool:
        """Whether any job waits to be claimed (a cheap read: idle workers poll it)."""
        _, n = await self.backend.scan(Match(statuses=("created",)), limit=0)
        return n > 0

    async def claim(self, worker_id: str, *, now: float, lease_s: float) -> JobRecord | None:
        def take(job: JobRecord) -> bool:
            if job.status != "created":
                return False
            apply_claim(job, worker_id, now=now, lease_s=lease_s)
            return True

        done = await self.backend.update(Match(statuses=("created",)), take, first=1)
        _logged(done, lambda job: f"claimed by {job.worker_id} (attempt {job.attempts})")
        return done[0] if done else None

    async def claim_resolution(self, resolver_id: str, *, now: float, lease_s: float) -> JobRecord | None:
        def take(job: JobRecord) -> bool:
            if not resolution_claimable(job, now=now):
                return False
            apply_resolution_claim(job, resolver_id, now=now, lease_s=lease_s)
            return True

        done = await self.backend.update(Match(statuses=("resolving",), lease_before=now), take, first=1)
        return done[0] if done else None

    async def finish_resolution(
        self,
        job_id: str,
        resolver_id: str,
        *,
        now: float,
        inputs: dict[str, str] | None,
        timings: dict[str, int] | None = None,
        error: str = "",
        code: int | None = None,
    ) -> JobRecord | None:
        def done(job: JobRecord) -> bool:
            if not _held(job, "resolving", resolver_id):
                return False
            if inputs is not None:
                apply_resolved(job, inputs, timings)
            else:
                apply_finish(job, status="failed", now=now, error=error, code=code, timings=timings)
            return True

        return await self._one(
            job_id, done, lambda job: "inputs ready" if job.status == "created" else "inputs"
        )

    async def heartbeat(
        self, job_id: str, worker_id: str, *, lease_until: float, progress: float | None
    ) -> HeartbeatReply:
        def beat(job: JobRecord) -> bool:
            if not _held(job, "processing", worker_id):
                return False
            job.lease_until = lease_until
            if progress is not None:
                job.progress = progress
            return True

        done = await self.backend.update(Match(ids=(job_id,)), beat)  # not logged: every second
        job = done[0] if done else None
        if job is not None:
            return HeartbeatReply(owned=True, cancel_requested=job.cancel_requested)
        current = await self.backend.get(job_id)
        return HeartbeatReply(owned=False, cancel_requested=bool(current and current.cancel_requested))

    async def finish(
        self,
        job_id: str,
        worker_id: str,
        *,
        status: JobOutcome,
        now: float,
        outputs: Sequence[str] = (),
        error: str = "",
        code: int | None = None,
        timings: dict[str, int] | None = None,
        face: dict[str, Any] | None = None,
    ) -> JobRecord | None:
        def done(job: JobRecord) -> bool:
            if not _held(job, "processing", worker_id):
                return False
            apply_finish(
                job,
                status=status,
                now=now,
                outputs=outputs,
                error=error,
                code=code,
                timings=timings,
                face=face,
            )
            return True

        return await self._one(job_id, done, lambda job: "finished")

    async def cancel(self, job_id: str, *, now: float) -> JobRecord | None:
        def stop(job: JobRecord) -> bool:
            if job.is_terminal:
                return False
            apply_cancel(job, now=now)
            return True

        return await self._one(job_id, stop, lambda job: "cancel") or await self.backend.get(job_id)

    async def expire_leases(
        self, *, now: float, max_attempts: int, message: str, worker_id: str | None = None
    ) -> list[JobRecord]:
        def lapse(job: JobRecord) -> bool:
            if not expirable(job, now=now, worker_id=worker_id):
                return False  # renewed or finished meanwhile
            apply_expiry(job, now=now, max_attempts=max_attempts, message=message)
            return True

        if worker_id is not None:
            match = Match(statuses=("processing",), worker_id=worker_id)
        else:
            match = Match(statuses=("processing", "resolving"), lease_before=now)
        return _logged(await self.backend.update(match, lapse), lambda job: f"lease expired ({message})")

    async def release_worker(self, worker_id: str) -> int:
        def drop(job: JobRecord) -> bool:
            if not _held(job, "processing", worker_id):
                return False
            job.lease_until = 0.0
            return True

        return len(await self.backend.update(Match(statuses=("processing",), worker_id=worker_id), drop))

    async def list_jobs(
        self,
        owner: str,
        *,
        page: int,
        page_size: int,
        status: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
    ) -> tuple[list[JobRecord], int]:
        match = Match(
            owner=owner,
            statuses=None if status is None else stored_statuses(status),
            created_after=created_after,
            created_before=created_before,
        )
        return await self.backend.scan(match, offset=(page - 1) * page_size, limit=page_size)

    async def delete(self, owner: str, ids: Sequence[str]) -> list[JobRecord]:
        """Jobs that are not running go; then running ones get a cancel flag (a job claimed in between
        was running when the delete ran: it is flagged, never removed under its worker)."""
        unique = tuple(dict.fromkeys(ids))
        if not unique:
            return []

        def flag(job: JobRecord) -> bool:
            job.cancel_requested = True
            return job.status == "processing"

        removed = await self.backend.remove(Match(ids=unique, owner=owner, statuses=_NOT_RUNNING))
        await self.backend.update(Match(ids=unique, owner=owner, statuses=("processing",)), flag)
        order = {job_id: n for n, job_id in enumerate(unique)}
        return sorted(removed, key=lambda j: order[j.id])

    async def purge(self, *, before: float) -> list[JobRecord]:
        return await self.backend.remove(Match(statuses=_TERMINAL, created_before=before))

    async def close(self) -> None:
        await self.backend.close()
