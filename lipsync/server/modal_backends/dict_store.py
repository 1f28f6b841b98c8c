"""``JobStore`` on a ``modal.Dict``: every container (API, GPU workers, the sweep) shares one job table.

A Dict offers atomic single-key operations and one test-and-set (``put(..., skip_if_exists=True)``), no
transactions. Every state change of a job is therefore a read-modify-write inside a per-job lock built on
that test-and-set, and the same ``transitions`` functions as every other store do the modifying, so the
job state machine is exactly the local one. Keys::

    job:<id>          {"record": JobRecord fields, "call_id": FunctionCall id or None, "spawns": int}
    active:<owner>    ids of the owner's jobs that may still be queued or running (pruned lazily)
    owners            every owner that ever submitted (to find active jobs without a full scan)
    lock:<name>       (token, expires_at): held while a job, an owner's index or ``owners`` is rewritten

``call_id`` is the FunctionCall that was spawned for the job, then the one that claimed it (the GPU
worker's id is its FunctionCall id, so a call Modal restarts after a preemption takes its own job back).
Listing history scans the Dict (one streamed request); the hot paths (submit, poll, heartbeat) touch only
their own keys. A lock whose holder died is broken after ``lock_ttl_s``. Entries Modal has not touched for
7 days expire on Modal's side, which matches the server's default 7-day retention.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from contracts import RunOptions
from lipsync.server.interfaces import ActiveLimitExceeded, HeartbeatReply, JobOutcome, JobRecord
from lipsync.server.modal_backends.handles import DictHandle, in_thread
from lipsync.server.transitions import (
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

__all__ = ["ActiveJob", "DictJobStore", "DictLock", "StoreBusy"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_JOB = "job:"
_ACTIVE = "active:"
_OWNERS = "owners"
_LOCK = "lock:"


class StoreBusy(RuntimeError):
    """A lock could not be taken in time (a very busy job, or Modal's Dict unreachable)."""


class DictLock:
    """A mutual-exclusion lock on one Dict key, usable from any container.

    Taken with ``put(key, (token, expires_at), skip_if_exists=True)``; released by popping it if it is still
    ours. A holder that died leaves its entry behind; once ``expires_at`` has passed, the next taker breaks
    it. Critical sections are a few Dict round trips, far below the TTL.
    """

    def __init__(
        self,
        jobs: DictHandle,
        name: str,
        *,
        ttl_s: float,
        timeout_s: float,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.jobs = jobs
        self.key = _LOCK + name
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.wall = wall
        self._token: str | None = None

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        pause = 0.002
        while True:
            token = uuid.uuid4().hex
            if self.jobs.put(self.key, (token, self.wall() + self.ttl_s), skip_if_exists=True):
                self._token = token
                return
            held = self.jobs.get(self.key)
            if held is not None and float(held[1]) < self.wall():
                self._break(held)
                continue
            if time.monotonic() > deadline:
                raise StoreBusy(f"could not lock {self.key} within {self.timeout_s:g} s")
            time.sleep(pause * (1 + random.random()))
            pause = min(pause * 2, 0.05)

    def _break(self, stale: Any) -> None:
        """Remove an expired lock. If someone else broke it and took it between our read and our pop, the
        value popped is theirs: put it back (only if the key is still free) and let the caller retry."""
        popped = self.jobs.pop(self.key, None)
        if popped is not None and tuple(popped) != tuple(stale):
            self.jobs.put(self.key, popped, skip_if_exists=True)
        else:
            log.warning(
                "broke the expired lock %s (its holder stopped inside the critical section)", self.key
            )

    def release(self) -> None:
        token, self._token = self._token, None
        held = self.jobs.get(self.key)
        if token is not None and held is not None and held[0] == token:
            self.jobs.pop(self.key, None)

    def __enter__(self) -> DictLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(frozen=True)
class ActiveJob:
    """A queued or running job with the FunctionCall bookkeeping the Modal runner needs."""

    job: JobRecord
    call_id: str | None
    spawns: int


def _entry(job: JobRecord, call_id: str | None, spawns: int) -> dict[str, Any]:
    # Plain data only (no pydantic objects in the Dict): the options as their JSON dump.
    record = {**dataclasses.asdict(job), "options": job.options.model_dump(mode="json")}
    return {"record": record, "call_id": call_id, "spawns": spawns}


def _unpack(entry: Any) -> ActiveJob:
    record = {**entry["record"], "options": RunOptions.from_stored(entry["record"]["options"])}
    return ActiveJob(JobRecord(**record), entry.get("call_id"), int(entry.get("spawns", 0)))


class DictJobStore:
    """The job store of a Modal deployment (see the module docstring). Dict calls run on the Modal I/O threads.

    ``on_cancel_queued(call_id)`` is called when a queued job with a FunctionCall is cancelled, so that
    call can be dropped before it takes a GPU (the runner is only told about running jobs).
    """

    def __init__(
        self,
        jobs: DictHandle,
        *,
        lock_ttl_s: float = 10.0,
        lock_timeout_s: float | None = None,
        on_cancel_queued: Callable[[str], None] | None = None,
    ) -> None:
        self.jobs = jobs
        self.lock_ttl_s = lock_ttl_s
        self.lock_timeout_s = lock_timeout_s if lock_timeout_s is not None else 3 * lock_ttl_s
        self.on_cancel_queued = on_cancel_queued

    # ---- plumbing -------------------------------------------------------------------------------------

    def _lock(self, name: str) -> DictLock:
        return DictLock(self.jobs, name, ttl_s=self.lock_ttl_s, timeout_s=self.lock_timeout_s)

    def _load(self, job_id: str) -> ActiveJob | None:
        entry = self.jobs.get(_JOB + job_id)
        return None if entry is None else _unpack(entry)

    def _save(self, item: ActiveJob) -> None:
        self.jobs.put(_JOB + item.job.id, _entry(item.job, item.call_id, item.spawns))

    def _update(
        self, job_id: str, change: Callable[[ActiveJob], tuple[ActiveJob | None, T]], missing: T
    ) -> T:
        """Under the job's lock: load it, let *change* return (new state to save or None, result)."""
        with self._lock(job_id):
            item = self._load(job_id)
            if item is None:
                return missing
            new, result = change(item)
            if new is not None:
                self._save(new)
            return result

    def _owners(self) -> list[str]:
        return list(self.jobs.get(_OWNERS) or [])

    def _active_ids(self, owner: str) -> list[str]:
        return list(self.jobs.get(_ACTIVE + owner) or [])

    def _active_sync(self) -> list[ActiveJob]:
        found: list[ActiveJob] = []
        for owner in self._owners():
            stale: list[str] = []
            for job_id in self._active_ids(owner):
                item = self._load(job_id)
                if item is None or item.job.is_terminal:
                    stale.append(job_id)
                else:
                    found.append(item)
            if stale:
                self._prune(owner, stale)
        return found

    def _prune(self, owner: str, candidates: Sequence[str]) -> None:
        """Drop ids that are terminal or gone from *owner*'s active index (re-checked under its lock)."""
        with self._lock("owner:" + owner):
            ids = self._active_ids(owner)
            keep = []
            for job_id in ids:
                if job_id in candidates:
                    item = self._load(job_id)
                    if item is None or item.job.is_terminal:
                        continue
                keep.append(job_id)
            if keep != ids:
                self.jobs.put(_ACTIVE + owner, keep)

    def _all_sync(self) -> list[ActiveJob]:
        return [_unpack(v) for k, v in self.jobs.items() if isinstance(k, str) and k.startswith(_JOB)]

    @staticmethod
    async def _run(fn: Callable[..., T], *args: Any) -> T:
        return await in_thread(fn, *args)

    # ---- JobStore -------------------------------------------------------------------------------------

    async def create(self, job: JobRecord, *, active_limit: int | None = None) -> None:
        await self._run(self._create, job, active_limit)

    def _create(self, job: JobRecord, active_limit: int | None) -> None:
        if job.owner not in self._owners():
            with self._lock(_OWNERS):
                owners = self._owners()
                if job.owner not in owners:
                    self.jobs.put(_OWNERS, [*owners, job.owner])
        with self._lock("owner:" + job.owner):
            if self.jobs.get(_JOB + job.id) is not None:
                raise ValueError(f"duplicate job id {job.id}")
            live = []
            for job_id in self._active_ids(job.owner):
                item = self._load(job_id)
                if item is not None and not item.job.is_terminal:
                    live.append(job_id)
            if active_limit is not None and len(live) >= active_limit:
                raise ActiveLimitExceeded(len(live), active_limit)
            if not self.jobs.put(_JOB + job.id, _entry(job, None, 0), skip_if_exists=True):
                raise ValueError(f"duplicate job id {job.id}")
            self.jobs.put(_ACTIVE + job.owner, [*live, job.id])

    async def get(self, job_id: str) -> JobRecord | None:
        item = await self._run(self._load, job_id)
        return None if item is None else item.job

    async def count_active(self, owner: str) -> int:
        def count() -> int:
            n = 0
            for job_id in self._active_ids(owner):
                item = self._load(job_id)
                n += item is not None and not item.job.is_terminal
            return n

        return await self._run(count)

    async def claim(self, worker_id: str, *, now: float, lease_s: float) -> JobRecord | None:
        """The oldest queued job (any owner). Modal workers use :meth:`claim_job` for their own job."""

        def claim() -> JobRecord | None:
            queued = sorted(
                (a.job for a in self._active_sync() if a.job.status == "created"),
                key=lambda j: (j.created_at, j.id),
            )
            for candidate in queued:
                got = self._claim_one(candidate.id, worker_id, now, lease_s, takeover=False)
                if got is not None:
                    return got
            return None

        return await self._run(claim)

    async def claim_resolution(self, resolver_id: str, *, now: float, lease_s: float) -> JobRecord | None:
        """The oldest resolving job nobody holds, taken over by *resolver_id* (an API container)."""

        def take(item: ActiveJob) -> tuple[ActiveJob | None, JobRecord | None]:
            if not resolution_claimable(item.job, now=now):
                return None, None  # taken or finished meanwhile
            apply_resolution_claim(item.job, resolver_id, now=now, lease_s=lease_s)
            return item, item.job

        def claim() -> JobRecord | None:
            free = sorted(
                (a.job for a in self._active_sync() if resolution_claimable(a.job, now=now)),
                key=lambda j: (j.created_at, j.id),
            )
            for candidate in free:
                got = self._update(candidate.id, take, None)
                if got is not None:
                    return got
            return None

        return await self._run(claim)

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
        def done(item: ActiveJob) -> tuple[ActiveJob | None, JobRecord | None]:
            job = item.job
            if job.status != "resolving" or job.worker_id != resolver_id:
                return None, None
            if inputs is not None:
                apply_resolved(job, inputs, timings)
            else:
                apply_finish(job, status="failed", now=now, error=error, code=code, timings=timings)
            return item, job

        return await self._run(self._update, job_id, done, None)

    async def heartbeat(
        self, job_id: str, worker_id: str, *, lease_until: float, progress: float | None
    ) -> HeartbeatReply:
        def beat(item: ActiveJob) -> tuple[ActiveJob | None, HeartbeatReply]:
            job = item.job
            if job.status != "processing" or job.worker_id != worker_id:
                return None, HeartbeatReply(owned=False, cancel_requested=job.cancel_requested)
            job.lease_until = lease_until
            if progress is not None:
                job.progress = progress
            return item, HeartbeatReply(owned=True, cancel_requested=job.cancel_requested)

        return await self._run(
            self._update, job_id, beat, HeartbeatReply(owned=False, cancel_requested=False)
        )

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
    ) -> JobRecord | None:
        def done(item: ActiveJob) -> tuple[ActiveJob | None, JobRecord | None]:
            job = item.job
            if job.status != "processing" or job.worker_id != worker_id:
                return None, None
            apply_finish(
                job, status=status, now=now, outputs=outputs, error=error, code=code, timings=timings
            )
            return item, job

        return await self._run(self._update, job_id, done, None)

    async def cancel(self, job_id: str, *, now: float) -> JobRecord | None:
        dropped: list[str] = []

        def cancel(item: ActiveJob) -> tuple[ActiveJob | None, JobRecord]:
            was_queued = item.job.status == "created"
            apply_cancel(item.job, now=now)
            if was_queued and item.job.is_terminal and item.call_id:
                dropped.append(item.call_id)
            return item, item.job

        job: JobRecord | None = await self._run(self._update, job_id, cancel, None)
        if dropped and self.on_cancel_queued is not None:
            try:
                await self._run(self.on_cancel_queued, dropped[0])
            except Exception:  # the call finds its job terminal and returns anyway; this only saves a start
                log.exception("could not cancel FunctionCall %s of cancelled job %s", dropped[0], job_id)
        return job

    async def expire_leases(
        self, *, now: float, max_attempts: int, message: str, worker_id: str | None = None
    ) -> list[JobRecord]:
        def expire() -> list[JobRecord]:
            changed: list[JobRecord] = []
            for candidate in self._active_sync():
                job = candidate.job
                if not expirable(job, now=now, worker_id=worker_id):
                    continue

                def lapse(item: ActiveJob) -> tuple[ActiveJob | None, JobRecord | None]:
                    if not expirable(item.job, now=now, worker_id=worker_id):
                        return None, None  # renewed or finished meanwhile
                    apply_expiry(item.job, now=now, max_attempts=max_attempts, message=message)
                    return item, item.job

                result = self._update(job.id, lapse, None)
                if result is not None:
                    changed.append(result)
            return changed

        return await self._run(expire)

    async def release_worker(self, worker_id: str) -> int:
        def release() -> int:
            n = 0
            for candidate in self._active_sync():
                if candidate.job.status != "processing" or candidate.job.worker_id != worker_id:
                    continue

                def drop(item: ActiveJob) -> tuple[ActiveJob | None, int]:
                    if item.job.status != "processing" or item.job.worker_id != worker_id:
                        return None, 0
                    item.job.lease_until = 0.0
                    return item, 1

                n += self._update(candidate.job.id, drop, 0)
            return n

        return await self._run(release)

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
        items = await self._run(self._all_sync)
        rows = [
            j
            for j in (a.job for a in items)
            if j.owner == owner
            and (status is None or j.status in stored_statuses(status))
            and (created_after is None or j.created_at >= created_after)
            and (created_before is None or j.created_at < created_before)
        ]
        rows.sort(key=lambda j: (j.created_at, j.id), reverse=True)
        start = (page - 1) * page_size
        return rows[start : start + page_size], len(rows)

    async def delete(self, owner: str, ids: Sequence[str]) -> list[JobRecord]:
        def delete() -> list[JobRecord]:
            removed: list[JobRecord] = []
            for job_id in dict.fromkeys(ids):
                with self._lock(job_id):
                    item = self._load(job_id)
                    if item is None or item.job.owner != owner:
                        continue
                    if item.job.status == "processing":
                        item.job.cancel_requested = True
                        self._save(item)
                        continue
                    self.jobs.pop(_JOB + job_id, None)
                    removed.append(item.job)
            return removed

        return await self._run(delete)

    async def purge(self, *, before: float) -> list[JobRecord]:
        def purge() -> list[JobRecord]:
            old: list[JobRecord] = []
            for candidate in self._all_sync():
                if not (candidate.job.is_terminal and candidate.job.created_at < before):
                    continue
                with self._lock(candidate.job.id):
                    item = self._load(candidate.job.id)
                    if item is not None and item.job.is_terminal:
                        self.jobs.pop(_JOB + item.job.id, None)
                        old.append(item.job)
            return old

        return await self._run(purge)

    async def close(self) -> None:
        return None

    # ---- Modal-specific ---------------------------------------------------------------------------------

    def _claim_one(
        self, job_id: str, worker_id: str, now: float, lease_s: float, *, takeover: bool
    ) -> JobRecord | None:
        def claim(item: ActiveJob) -> tuple[ActiveJob | None, JobRecord | None]:
            job = item.job
            if job.status == "created":
                apply_claim(job, worker_id, now=now, lease_s=lease_s)
            elif takeover and job.status == "processing" and job.worker_id == worker_id:
                # The same FunctionCall again: Modal restarted it (preemption, or a retry after a crash).
                job.attempts += 1
                job.lease_until = now + lease_s
                job.progress = 0.0
            else:
                return None, None
            return ActiveJob(job, worker_id, item.spawns), job

        return self._update(job_id, claim, None)

    async def claim_job(self, job_id: str, worker_id: str, *, now: float, lease_s: float) -> JobRecord | None:
        """Claim *this* job for *worker_id* (a GPU call claims the job it was spawned for).

        Queued: claimed as ``claim`` would. Running under the same worker id: taken back (Modal restarted the
        same FunctionCall), attempts + 1. Anything else (another worker holds it, or it ended): None.
        """
        return await self._run(lambda: self._claim_one(job_id, worker_id, now, lease_s, takeover=True))

    async def set_call(self, job_id: str, call_id: str) -> bool:
        """Record the FunctionCall spawned for a queued job (counted in ``spawns``); False if not queued."""

        def record(item: ActiveJob) -> tuple[ActiveJob | None, bool]:
            if item.job.status != "created":
                return None, False
            return ActiveJob(item.job, call_id, item.spawns + 1), True

        return await self._run(self._update, job_id, record, False)

    async def entry(self, job_id: str) -> ActiveJob | None:
        """The job with its FunctionCall bookkeeping."""
        return await self._run(self._load, job_id)

    async def active(self) -> list[ActiveJob]:
        """Every queued or running job with its FunctionCall bookkeeping."""
        return await self._run(self._active_sync)

    async def fail_for_call(
        self, job_id: str, call_id: str, *, now: float, error: str, code: int
    ) -> JobRecord | None:
        """Fail the job if it is still unfinished and *call_id* is still its call (the call ended without
        recording an outcome: Modal's timeout, retries exhausted, an expired result, ...)."""

        def fail(item: ActiveJob) -> tuple[ActiveJob | None, JobRecord | None]:
            if item.job.is_terminal or item.call_id != call_id:
                return None, None
            apply_finish(item.job, status="failed", now=now, error=error, code=code)
            return item, item.job

        return await self._run(self._update, job_id, fail, None)
