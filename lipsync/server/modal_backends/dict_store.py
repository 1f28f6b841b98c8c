"""The job store backend on a ``modal.Dict``: every container (API, GPU workers, the sweep) shares one table.

A Dict offers atomic single-key operations and one test-and-set (``put(..., skip_if_exists=True)``), no
transactions. Every write of a job is therefore a read-modify-write inside a per-job lock built on that
test-and-set; the rules applied inside it are ``BackendJobStore``'s, the same as every other backend's.
Keys::

    job:<id>          {"record": records.to_dict(job), "call_id": FunctionCall id or None, "spawns": int}
    active:<owner>    ids of the owner's jobs that may still be queued or running (pruned lazily)
    owners            every owner that ever submitted (to find active jobs without a full scan)
    lock:<name>       (token, expires_at): held while a job, an owner's index or ``owners`` is rewritten

``call_id`` is the FunctionCall that was spawned for the job, then the one that claimed it (the GPU
worker's id is its FunctionCall id, so a call Modal restarts after a preemption takes its own job back).
Scans of active jobs (claims, lease sweeps, the active count) read the active index; other scans (history,
purge) read the whole Dict (one streamed request); the hot paths (submit, poll, heartbeat) touch only
their own keys. A lock whose holder died is broken after ``lock_ttl_s``. Entries Modal has not touched for
7 days expire on Modal's side, which matches the server's default 7-day retention.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from lipsync.server.interfaces import ActiveLimitExceeded, JobRecord
from lipsync.server.job_store import BackendJobStore
from lipsync.server.modal_backends.handles import DictHandle, in_thread
from lipsync.server.records import from_dict, to_dict
from lipsync.server.store_backend import Change, Match
from lipsync.server.transitions import ACTIVE_STATUSES, apply_cancel, apply_claim, apply_finish

__all__ = ["ActiveJob", "DictBackend", "DictJobStore", "DictLock", "StoreBusy"]

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


def _entry(item: ActiveJob) -> dict[str, Any]:
    return {"record": to_dict(item.job), "call_id": item.call_id, "spawns": item.spawns}


def _unpack(entry: Any) -> ActiveJob:
    return ActiveJob(from_dict(entry["record"]), entry.get("call_id"), int(entry.get("spawns", 0)))


def _oldest_first(job: JobRecord) -> tuple[float, str]:
    return (job.created_at, job.id)


class DictBackend:
    """Records in a ``modal.Dict`` (see the module docstring). Dict calls run on the Modal I/O threads."""

    def __init__(
        self, jobs: DictHandle, *, lock_ttl_s: float = 10.0, lock_timeout_s: float | None = None
    ) -> None:
        self.jobs = jobs
        self.lock_ttl_s = lock_ttl_s
        self.lock_timeout_s = lock_timeout_s if lock_timeout_s is not None else 3 * lock_ttl_s

    # ---- plumbing (synchronous: run on the Modal I/O threads) -------------------------------------

    def lock(self, name: str) -> DictLock:
        return DictLock(self.jobs, name, ttl_s=self.lock_ttl_s, timeout_s=self.lock_timeout_s)

    def load(self, job_id: str) -> ActiveJob | None:
        entry = self.jobs.get(_JOB + job_id)
        return None if entry is None else _unpack(entry)

    def change_entry(
        self, job_id: str, change: Callable[[ActiveJob], tuple[ActiveJob | None, T]], missing: T
    ) -> T:
        """Under the job's lock: load it, let *change* return (new state to save or None, result)."""
        with self.lock(job_id):
            item = self.load(job_id)
            if item is None:
                return missing
            new, result = change(item)
            if new is not None:
                self.jobs.put(_JOB + job_id, _entry(new))
            return result

    def _owners(self) -> list[str]:
        return list(self.jobs.get(_OWNERS) or [])

    def _active_ids(self, owner: str) -> list[str]:
        return list(self.jobs.get(_ACTIVE + owner) or [])

    def active_entries(self, owners: list[str] | None = None) -> list[ActiveJob]:
        """Every queued or running job (of *owners*), oldest first; prunes the index of ended ones."""
        found: list[ActiveJob] = []
        for owner in self._owners() if owners is None else owners:
            stale: list[str] = []
            for job_id in self._active_ids(owner):
                item = self.load(job_id)
                if item is None or item.job.is_terminal:
                    stale.append(job_id)
                else:
                    found.append(item)
            if stale:
                self._prune(owner, stale)
        return sorted(found, key=lambda a: _oldest_first(a.job))

    def _prune(self, owner: str, candidates: list[str]) -> None:
        """Drop ids that are terminal or gone from *owner*'s active index (re-checked under its lock)."""
        with self.lock("owner:" + owner):
            ids = self._active_ids(owner)
            keep = []
            for job_id in ids:
                if job_id in candidates:
                    item = self.load(job_id)
                    if item is None or item.job.is_terminal:
                        continue
                keep.append(job_id)
            if keep != ids:
                self.jobs.put(_ACTIVE + owner, keep)

    def _candidates(self, match: Match) -> list[JobRecord]:
        """Records that may match, oldest first: by id, from the active index, or a full scan."""
        if match.ids is not None:
            items = [item for job_id in match.ids if (item := self.load(job_id)) is not None]
        elif match.statuses is not None and set(match.statuses) <= set(ACTIVE_STATUSES):
            items = self.active_entries(None if match.owner is None else [match.owner])
        else:
            items = [_unpack(v) for k, v in self.jobs.items() if isinstance(k, str) and k.startswith(_JOB)]
        return sorted((a.job for a in items if match.matches(a.job)), key=_oldest_first)

    def _insert(self, job: JobRecord, active_limit: int | None, active: Match) -> None:
        if job.owner not in self._owners():
            with self.lock(_OWNERS):
                owners = self._owners()
                if job.owner not in owners:
                    self.jobs.put(_OWNERS, [*owners, job.owner])
        with self.lock("owner:" + job.owner):
            if self.jobs.get(_JOB + job.id) is not None:
                raise ValueError(f"duplicate job id {job.id}")
            live = []
            for job_id in self._active_ids(job.owner):
                item = self.load(job_id)
                if item is not None and active.matches(item.job):
                    live.append(job_id)
            if active_limit is not None and len(live) >= active_limit:
                raise ActiveLimitExceeded(len(live), active_limit)
            if not self.jobs.put(_JOB + job.id, _entry(ActiveJob(job, None, 0)), skip_if_exists=True):
                raise ValueError(f"duplicate job id {job.id}")
            self.jobs.put(_ACTIVE + job.owner, [*live, job.id])

    def _update(self, match: Match, change: Change, first: int | None) -> list[JobRecord]:
        def apply(item: ActiveJob) -> tuple[ActiveJob | None, JobRecord | None]:
            if not match.matches(item.job) or not change(item.job):
                return None, None  # changed by another container since the candidate was read
            return item, item.job

        changed: list[JobRecord] = []
        for candidate in self._candidates(match):
            done = self.change_entry(candidate.id, apply, None)
            if done is not None:
                changed.append(done)
                if first is not None and len(changed) >= first:
                    break
        return changed

    def _remove(self, match: Match) -> list[JobRecord]:
        removed: list[JobRecord] = []
        for candidate in self._candidates(match):
            with self.lock(candidate.id):
                item = self.load(candidate.id)
                if item is not None and match.matches(item.job):
                    self.jobs.pop(_JOB + candidate.id, None)
                    removed.append(item.job)
        return removed

    # ---- StoreBackend -------------------------------------------------------------------------------

    async def insert(self, job: JobRecord, *, active_limit: int | None, active: Match) -> None:
        await in_thread(self._insert, job, active_limit, active)

    async def get(self, job_id: str) -> JobRecord | None:
        item = await in_thread(self.load, job_id)
        return None if item is None else item.job

    async def update(self, match: Match, change: Change, *, first: int | None = None) -> list[JobRecord]:
        return await in_thread(self._update, match, change, first)

    async def scan(
        self, match: Match, *, offset: int = 0, limit: int | None = None, newest_first: bool = True
    ) -> tuple[list[JobRecord], int]:
        rows = await in_thread(self._candidates, match)
        if newest_first:
            rows.reverse()
        page = rows[offset:] if limit is None else rows[offset : offset + limit]
        return page, len(rows)

    async def remove(self, match: Match) -> list[JobRecord]:
        return await in_thread(self._remove, match)

    async def close(self) -> None:
        return None


class DictJobStore(BackendJobStore):
    """The job store of a Modal deployment, plus the FunctionCall bookkeeping its runner needs.

    ``on_cancel_queued(call_id)`` is called when a queued job with a FunctionCall is cancelled, so that
    call can be dropped before it takes a GPU (the runner is only told about running jobs).
    """

    backend: DictBackend

    def __init__(
        self,
        jobs: DictHandle,
        *,
        lock_ttl_s: float = 10.0,
        lock_timeout_s: float | None = None,
        on_cancel_queued: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(DictBackend(jobs, lock_ttl_s=lock_ttl_s, lock_timeout_s=lock_timeout_s))
        self.on_cancel_queued = on_cancel_queued

    async def cancel(self, job_id: str, *, now: float) -> JobRecord | None:
        """As every store cancels; a queued job's FunctionCall is dropped too (read in the same step)."""
        dropped: list[str] = []

        def cancel(item: ActiveJob) -> tuple[ActiveJob | None, JobRecord]:
            was_queued = item.job.status == "created"
            if item.job.is_terminal:
                return None, item.job
            apply_cancel(item.job, now=now)
            if was_queued and item.call_id:
                dropped.append(item.call_id)
            return item, item.job

        job: JobRecord | None = await in_thread(self.backend.change_entry, job_id, cancel, None)
        if dropped and self.on_cancel_queued is not None:
            try:
                await in_thread(self.on_cancel_queued, dropped[0])
            except Exception:  # the call finds its job terminal and returns anyway; this only saves a start
                log.exception("could not cancel FunctionCall %s of cancelled job %s", dropped[0], job_id)
        return job

    async def claim_job(self, job_id: str, worker_id: str, *, now: float, lease_s: float) -> JobRecord | None:
        """Claim *this* job for *worker_id* (a GPU call claims the job it was spawned for).

        Queued: claimed as ``claim`` would. Running under the same worker id: taken back (Modal restarted the
        same FunctionCall), attempts + 1. Anything else (another worker holds it, or it ended): None.
        """

        def claim(item: ActiveJob) -> tuple[ActiveJob | None, JobRecord | None]:
            job = item.job
            if job.status == "created":
                apply_claim(job, worker_id, now=now, lease_s=lease_s)
            elif job.status == "processing" and job.worker_id == worker_id:
                # The same FunctionCall again: Modal restarted it (preemption, or a retry after a crash).
                job.attempts += 1
                job.lease_until = now + lease_s
                job.progress = 0.0
            else:
                return None, None
            return ActiveJob(job, worker_id, item.spawns), job

        return await in_thread(self.backend.change_entry, job_id, claim, None)

    async def set_call(self, job_id: str, call_id: str) -> bool:
        """Record the FunctionCall spawned for a queued job (counted in ``spawns``); False if not queued."""

        def record(item: ActiveJob) -> tuple[ActiveJob | None, bool]:
            if item.job.status != "created":
                return None, False
            return ActiveJob(item.job, call_id, item.spawns + 1), True

        return await in_thread(self.backend.change_entry, job_id, record, False)

    async def entry(self, job_id: str) -> ActiveJob | None:
        """The job with its FunctionCall bookkeeping."""
        return await in_thread(self.backend.load, job_id)

    async def active(self) -> list[ActiveJob]:
        """Every queued or running job with its FunctionCall bookkeeping."""
        return await in_thread(self.backend.active_entries)

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

        return await in_thread(self.backend.change_entry, job_id, fail, None)
