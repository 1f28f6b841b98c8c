"""In-memory backends: the job store's (``MemoryJobStore``) and the storage (``MemoryStorage``); test fakes.

They keep every rule the durable backends keep (the job store is the same ``BackendJobStore``; storage
checks keys and writes atomically) but lose everything on exit. ``InProcessRunner`` lives in ``worker.py``.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path

from lipsync.server.interfaces import ActiveLimitExceeded, JobRecord
from lipsync.server.job_store import BackendJobStore
from lipsync.server.keys import check_key
from lipsync.server.store_backend import Change, Match

__all__ = ["MemoryBackend", "MemoryJobStore", "MemoryStorage"]


def _oldest_first(job: JobRecord) -> tuple[float, str]:
    return (job.created_at, job.id)


class MemoryBackend:
    """A dict of records (copies in and out, like a real database). One event loop, no awaits inside an
    operation: each operation is atomic."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobRecord] = {}

    async def insert(self, job: JobRecord, *, active_limit: int | None, active: Match) -> None:
        if job.id in self._jobs:
            raise ValueError(f"duplicate job id {job.id}")
        if active_limit is not None:
            n = sum(1 for j in self._jobs.values() if active.matches(j))
            if n >= active_limit:
                raise ActiveLimitExceeded(n, active_limit)
        self._jobs[job.id] = copy.deepcopy(job)

    async def get(self, job_id: str) -> JobRecord | None:
        job = self._jobs.get(job_id)
        return copy.deepcopy(job) if job else None

    async def update(self, match: Match, change: Change, *, first: int | None = None) -> list[JobRecord]:
        changed: list[JobRecord] = []
        for job in sorted((j for j in self._jobs.values() if match.matches(j)), key=_oldest_first):
            draft = copy.deepcopy(job)
            if change(draft):
                self._jobs[job.id] = draft
                changed.append(copy.deepcopy(draft))
                if first is not None and len(changed) >= first:
                    break
        return changed

    async def scan(
        self, match: Match, *, offset: int = 0, limit: int | None = None, newest_first: bool = True
    ) -> tuple[list[JobRecord], int]:
        rows = sorted((j for j in self._jobs.values() if match.matches(j)), key=_oldest_first)
        if newest_first:
            rows.reverse()
        page = rows[offset:] if limit is None else rows[offset : offset + limit]
        return [copy.deepcopy(j) for j in page], len(rows)

    async def remove(self, match: Match) -> list[JobRecord]:
        gone = sorted((j for j in self._jobs.values() if match.matches(j)), key=_oldest_first)
        for job in gone:
            del self._jobs[job.id]
        return gone

    async def close(self) -> None:
        return None


class MemoryJobStore(BackendJobStore):
    """The job store in memory: the reference every other backend is tested against."""

    def __init__(self) -> None:
        super().__init__(MemoryBackend())


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
