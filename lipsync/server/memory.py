"""In-memory reference implementations of the store and storage (the executable spec, and test fakes).

They keep every rule the durable backends keep (compare-and-set transitions, active limits, key checks,
atomic writes) but lose everything on exit. ``InProcessRunner`` lives in ``worker.py``.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from lipsync.server.interfaces import ActiveLimitExceeded, HeartbeatReply, JobOutcome, JobRecord
from lipsync.server.keys import check_key
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

__all__ = ["MemoryJobStore", "MemoryStorage"]


class MemoryJobStore:
    """A dict of jobs; the reference semantics every JobStore must match."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobRecord] = {}

    async def create(self, job: JobRecord, *, active_limit: int | None = None) -> None:
        if job.id in self._jobs:
            raise ValueError(f"duplicate job id {job.id}")
        if active_limit is not None:
            active = await self.count_active(job.owner)
            if active >= active_limit:
                raise ActiveLimitExceeded(active, active_limit)
        self._jobs[job.id] = copy.deepcopy(job)

    async def get(self, job_id: str) -> JobRecord | None:
        job = self._jobs.get(job_id)
        return copy.deepcopy(job) if job else None

    async def count_active(self, owner: str) -> int:
        return sum(1 for j in self._jobs.values() if j.owner == owner and not j.is_terminal)

    async def claim(self, worker_id: str, *, now: float, lease_s: float) -> JobRecord | None:
        queued = [j for j in self._jobs.values() if j.status == "created"]
        if not queued:
            return None
        job = min(queued, key=lambda j: (j.created_at, j.id))
        apply_claim(job, worker_id, now=now, lease_s=lease_s)
        return copy.deepcopy(job)

    async def claim_resolution(self, resolver_id: str, *, now: float, lease_s: float) -> JobRecord | None:
        free = [j for j in self._jobs.values() if resolution_claimable(j, now=now)]
        if not free:
            return None
        job = min(free, key=lambda j: (j.created_at, j.id))
        apply_resolution_claim(job, resolver_id, now=now, lease_s=lease_s)
        return copy.deepcopy(job)

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
        job = self._jobs.get(job_id)
        if job is None or job.status != "resolving" or job.worker_id != resolver_id:
            return None
        if inputs is not None:
            apply_resolved(job, inputs, timings)
        else:
            apply_finish(job, status="failed", now=now, error=error, code=code, timings=timings)
        return copy.deepcopy(job)

    async def heartbeat(
        self, job_id: str, worker_id: str, *, lease_until: float, progress: float | None
    ) -> HeartbeatReply:
        job = self._jobs.get(job_id)
        if job is None or job.status != "processing" or job.worker_id != worker_id:
            return HeartbeatReply(owned=False, cancel_requested=bool(job and job.cancel_requested))
        job.lease_until = lease_until
        if progress is not None:
            job.progress = progress
        return HeartbeatReply(owned=True, cancel_requested=job.cancel_requested)

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
        job = self._jobs.get(job_id)
        if job is None or job.status != "processing" or job.worker_id != worker_id:
            return None
        apply_finish(job, status=status, now=now, outputs=outputs, error=error, code=code, timings=timings)
        return copy.deepcopy(job)

    async def cancel(self, job_id: str, *, now: float) -> JobRecord | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        apply_cancel(job, now=now)
        return copy.deepcopy(job)

    async def expire_leases(
        self, *, now: float, max_attempts: int, message: str, worker_id: str | None = None
    ) -> list[JobRecord]:
        changed: list[JobRecord] = []
        for job in self._jobs.values():
            if not expirable(job, now=now, worker_id=worker_id):
                continue
            apply_expiry(job, now=now, max_attempts=max_attempts, message=message)
            changed.append(copy.deepcopy(job))
        return changed

    async def release_worker(self, worker_id: str) -> int:
        n = 0
        for job in self._jobs.values():
            if job.status == "processing" and job.worker_id == worker_id:
                job.lease_until = 0.0
                n += 1
        return n

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
        rows = [
            j
            for j in self._jobs.values()
            if j.owner == owner
            and (status is None or j.status in stored_statuses(status))
            and (created_after is None or j.created_at >= created_after)
            and (created_before is None or j.created_at < created_before)
        ]
        rows.sort(key=lambda j: (j.created_at, j.id), reverse=True)
        start = (page - 1) * page_size
        return [copy.deepcopy(j) for j in rows[start : start + page_size]], len(rows)

    async def delete(self, owner: str, ids: Sequence[str]) -> list[JobRecord]:
        removed: list[JobRecord] = []
        for job_id in dict.fromkeys(ids):
            job = self._jobs.get(job_id)
            if job is None or job.owner != owner:
                continue
            if job.status == "processing":
                job.cancel_requested = True
                continue
            removed.append(self._jobs.pop(job_id))
        return removed

    async def purge(self, *, before: float) -> list[JobRecord]:
        old = [j for j in self._jobs.values() if j.is_terminal and j.created_at < before]
        for job in old:
            del self._jobs[job.id]
        return old

    async def close(self) -> None:
        return None


class MemoryStorage:
    """Objects in a dict of bytes."""

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}

    async def put_file(self, key: str, src: Path) -> int:
        data = await asyncio.to_thread(Path(src).read_bytes)
        return await self.put_bytes(key, data)

    async def put_bytes(self, key: str, data: bytes) -> int:
        self._objects[check_key(key)] = bytes(data)
        return len(data)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> int:
        check_key(key)
        parts: list[bytes] = []
        total = 0
        async for chunk in chunks:
            total += len(chunk)
            if total > max_bytes:
                raise ValueError(f"larger than {max_bytes} bytes")
            parts.append(chunk)
        return await self.put_bytes(key, b"".join(parts))

    async def size(self, key: str) -> int | None:
        data = self._objects.get(check_key(key))
        return None if data is None else len(data)

    async def read_head(self, key: str, n: int) -> bytes:
        return self._get(key)[:n]

    async def iter_bytes(self, key: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        data = self._get(key)
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    async def local_path(self, key: str, scratch: Path) -> Path:
        data = self._get(key)
        dest = scratch / key.replace("/", "_")
        dest.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(dest.write_bytes, data)
        return dest

    async def delete_prefix(self, prefix: str) -> None:
        for key in [k for k in self._objects if k.startswith(prefix)]:
            del self._objects[key]

    def presigned_url(self, key: str, *, expires_s: int) -> str | None:
        return None

    def _get(self, key: str) -> bytes:
        data = self._objects.get(check_key(key))
        if data is None:
            raise FileNotFoundError(key)
        return data
