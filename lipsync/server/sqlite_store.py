"""The embedded JobStore: one SQLite file in WAL mode, shared by the API process and its worker processes.

WAL lets readers (result polls) proceed while a writer commits, and ``synchronous=NORMAL`` makes a commit
cost a write, not an fsync (a power cut may lose the last commits, a process crash loses nothing). Every
transition runs in a ``BEGIN IMMEDIATE`` transaction: read the row, check the precondition, apply the
shared transition function, write it back, so concurrent processes cannot interleave half-updates.

The async methods run their (sub-millisecond) statements inline on the caller's loop: a thread hop would
cost more than the query. ``busy_timeout`` bounds the wait for another process's write lock.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from contracts import RunOptions
from lipsync.server.interfaces import ActiveLimitExceeded, HeartbeatReply, JobOutcome, JobRecord, JobStatus
from lipsync.server.transitions import (
    apply_cancel,
    apply_claim,
    apply_expiry,
    apply_finish,
    apply_resolution_claim,
    apply_resolved,
    stored_statuses,
)

__all__ = ["SQLiteJobStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    base_url TEXT NOT NULL,
    options TEXT NOT NULL,
    inputs TEXT NOT NULL,
    webhook TEXT,
    base64_output INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    outputs TEXT NOT NULL DEFAULT '[]',
    error TEXT NOT NULL DEFAULT '',
    code INTEGER,
    progress REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    lease_until REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    timings TEXT NOT NULL DEFAULT '{}',
    sources TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, created_at);
CREATE INDEX IF NOT EXISTS jobs_owner_active ON jobs (owner, status);
"""

#: Version 2 added ``sources`` (inputs resolved after submit); older files get the column on open.
_USER_VERSION = 2

_COLUMNS = (
    "id, owner, status, created_at, base_url, options, inputs, webhook, base64_output, started_at, "
    "finished_at, outputs, error, code, progress, attempts, worker_id, lease_until, cancel_requested, timings, "
    "sources"
)
_ACTIVE = "status IN ('resolving', 'created', 'processing')"
#: SQLite integers are 64-bit; a page beyond every row is simply empty.
_MAX_OFFSET = 2**63 - 1
_PLACEHOLDERS = ", ".join("?" for _ in _COLUMNS.split(","))


def _to_row(job: JobRecord) -> tuple[Any, ...]:
    return (
        job.id,
        job.owner,
        job.status,
        job.created_at,
        job.base_url,
        json.dumps(job.options.model_dump(mode="json"), separators=(",", ":")),
        json.dumps(job.inputs, separators=(",", ":")),
        job.webhook,
        int(job.base64_output),
        job.started_at,
        job.finished_at,
        json.dumps(job.outputs, separators=(",", ":")),
        job.error,
        job.code,
        job.progress,
        job.attempts,
        job.worker_id,
        job.lease_until,
        int(job.cancel_requested),
        json.dumps(job.timings, separators=(",", ":")),
        json.dumps(job.sources, separators=(",", ":")),
    )


def _from_row(row: sqlite3.Row | tuple[Any, ...]) -> JobRecord:
    (
        id_,
        owner,
        status,
        created_at,
        base_url,
        options,
        inputs,
        webhook,
        base64_output,
        started_at,
        finished_at,
        outputs,
        error,
        code,
        progress,
        attempts,
        worker_id,
        lease_until,
        cancel_requested,
        timings,
        sources,
    ) = tuple(row)
    return JobRecord(
        id=id_,
        owner=owner,
        status=cast(JobStatus, status),
        created_at=created_at,
        base_url=base_url,
        options=RunOptions.from_stored(json.loads(options)),  # rows of older versions load too
        inputs=json.loads(inputs),
        webhook=webhook,
        base64_output=bool(base64_output),
        started_at=started_at,
        finished_at=finished_at,
        outputs=json.loads(outputs),
        error=error,
        code=code,
        progress=progress,
        attempts=attempts,
        worker_id=worker_id,
        lease_until=lease_until,
        cancel_requested=bool(cancel_requested),
        timings=json.loads(timings),
        sources=json.loads(sources),
    )


class SQLiteJobStore:
    """JobStore on one SQLite database file (created with its schema on first open).

    Two connections: reads (result polls, history) run inline on the caller's loop, since WAL readers never
    wait for writers; writes run on one dedicated thread, because a write may have to wait for another
    process's write lock, and that wait must not stall the event loop (and every poll with it).
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_ms / 1000
        # The writer waits for other processes' write locks itself (see _write), in finer steps than
        # SQLite's own busy handler, whose sleeps grow to 100 ms and dominate a loaded server's latency.
        self._writer = self._connect(0)
        self._retry_busy(lambda: self._migrate(self._writer))
        self._reader = self._connect(busy_timeout_ms)
        self._read_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    def _connect(self, busy_timeout_ms: int) -> sqlite3.Connection:
        # Autocommit mode (isolation_level=None): transactions are explicit BEGIN IMMEDIATE blocks.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        db.executescript(_SCHEMA)
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version >= _USER_VERSION:
            return
        columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        if "sources" not in columns:
            db.execute("ALTER TABLE jobs ADD COLUMN sources TEXT NOT NULL DEFAULT '{}'")
        db.execute(f"PRAGMA user_version = {_USER_VERSION}")

    # -- plumbing ------------------------------------------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run *fn* with the writer connection on the writer thread (retried while the database is locked)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._retry_busy, lambda: fn(self._writer))

    def _retry_busy(self, fn: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._busy_timeout_s
        pause = 0.0002
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK")
                if time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.005)

    @staticmethod
    @contextmanager
    def _tx(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @staticmethod
    def _select(db: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[JobRecord]:
        return [_from_row(r) for r in db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE {where}", params)]

    @staticmethod
    def _put(db: sqlite3.Connection, job: JobRecord) -> None:
        db.execute(f"REPLACE INTO jobs ({_COLUMNS}) VALUES ({_PLACEHOLDERS})", _to_row(job))

    async def _mutate(
        self, where: str, params: Sequence[Any], change: Callable[[JobRecord], bool]
    ) -> list[JobRecord]:
        """Apply *change* to the matching rows in one transaction; write back those it returns True for."""

        def run(db: sqlite3.Connection) -> list[JobRecord]:
            with self._tx(db):
                changed = []
                for job in self._select(db, where, params):
                    if change(job):
                        self._put(db, job)
                        changed.append(job)
                return changed

        return await self._write(run)

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._read_lock:
            return fn(self._reader)

    # -- JobStore ------------------------------------------------------------------------------------

    async def create(self, job: JobRecord, *, active_limit: int | None = None) -> None:
        def run(db: sqlite3.Connection) -> None:
            with self._tx(db):
                if active_limit is not None:
                    (active,) = db.execute(
                        f"SELECT COUNT(*) FROM jobs WHERE owner = ? AND {_ACTIVE}", (job.owner,)
                    ).fetchone()
                    if active >= active_limit:
                        raise ActiveLimitExceeded(active, active_limit)
                db.execute(f"INSERT INTO jobs ({_COLUMNS}) VALUES ({_PLACEHOLDERS})", _to_row(job))

        await self._write(run)

    async def get(self, job_id: str) -> JobRecord | None:
        row = self._read(
            lambda db: db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        )
        return _from_row(row) if row else None

    async def count_active(self, owner: str) -> int:
        (n,) = self._read(
            lambda db: db.execute(
                f"SELECT COUNT(*) FROM jobs WHERE owner = ? AND {_ACTIVE}", (owner,)
            ).fetchone()
        )
        return int(n)

    async def has_queued(self) -> bool:
        """Whether any job waits to be claimed (an indexed read: idle workers poll it)."""
        row = self._read(
            lambda db: db.execute("SELECT 1 FROM jobs WHERE status = 'created' LIMIT 1").fetchone()
        )
        return row is not None

    async def claim(self, worker_id: str, *, now: float, lease_s: float) -> JobRecord | None:
        def run(db: sqlite3.Connection) -> JobRecord | None:
            with self._tx(db):
                rows = self._select(db, "status = 'created' ORDER BY created_at, id LIMIT 1", ())
                if not rows:
                    return None
                job = rows[0]
                apply_claim(job, worker_id, now=now, lease_s=lease_s)
                self._put(db, job)
                return job

        return await self._write(run)

    async def claim_resolution(self, resolver_id: str, *, now: float, lease_s: float) -> JobRecord | None:
        def run(db: sqlite3.Connection) -> JobRecord | None:
            with self._tx(db):
                rows = self._select(
                    db,
                    "status = 'resolving' AND (lease_until IS NULL OR lease_until < ?) "
                    "ORDER BY created_at, id LIMIT 1",
                    (now,),
                )
                if not rows:
                    return None
                job = rows[0]
                apply_resolution_claim(job, resolver_id, now=now, lease_s=lease_s)
                self._put(db, job)
                return job

        return await self._write(run)

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
        def change(job: JobRecord) -> bool:
            if inputs is not None:
                apply_resolved(job, inputs, timings)
            else:
                apply_finish(job, status="failed", now=now, error=error, code=code, timings=timings)
            return True

        done = await self._mutate(
            "id = ? AND status = 'resolving' AND worker_id = ?", (job_id, resolver_id), change
        )
        return done[0] if done else None

    async def heartbeat(
        self, job_id: str, worker_id: str, *, lease_until: float, progress: float | None
    ) -> HeartbeatReply:
        def run(db: sqlite3.Connection) -> HeartbeatReply:
            row = db.execute(
                "UPDATE jobs SET lease_until = ?, progress = COALESCE(?, progress) "
                "WHERE id = ? AND status = 'processing' AND worker_id = ? RETURNING cancel_requested",
                (lease_until, progress, job_id, worker_id),
            ).fetchone()
            if row is None:
                flag = db.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
                return HeartbeatReply(owned=False, cancel_requested=bool(flag and flag[0]))
            return HeartbeatReply(owned=True, cancel_requested=bool(row[0]))

        return await self._write(run)

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
        def change(job: JobRecord) -> bool:
            apply_finish(
                job, status=status, now=now, outputs=outputs, error=error, code=code, timings=timings
            )
            return True

        done = await self._mutate(
            "id = ? AND status = 'processing' AND worker_id = ?", (job_id, worker_id), change
        )
        return done[0] if done else None

    async def cancel(self, job_id: str, *, now: float) -> JobRecord | None:
        def run(db: sqlite3.Connection) -> JobRecord | None:
            with self._tx(db):
                rows = self._select(db, "id = ?", (job_id,))
                if not rows:
                    return None
                job = rows[0]
                if not job.is_terminal:
                    apply_cancel(job, now=now)
                    self._put(db, job)
                return job

        return await self._write(run)

    async def expire_leases(
        self, *, now: float, max_attempts: int, message: str, worker_id: str | None = None
    ) -> list[JobRecord]:
        def change(job: JobRecord) -> bool:
            apply_expiry(job, now=now, max_attempts=max_attempts, message=message)
            return True

        if worker_id is not None:
            return await self._mutate("status = 'processing' AND worker_id = ?", (worker_id,), change)
        return await self._mutate(
            "(status = 'processing' AND COALESCE(lease_until, 0) < ?) "
            "OR (status = 'resolving' AND lease_until < ?)",
            (now, now),
            change,
        )

    async def release_worker(self, worker_id: str) -> int:
        def run(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "UPDATE jobs SET lease_until = 0 WHERE status = 'processing' AND worker_id = ?", (worker_id,)
            )
            return cur.rowcount

        return await self._write(run)

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
        where = ["owner = ?"]
        params: list[Any] = [owner]
        if status is not None:
            statuses = stored_statuses(status)
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        if created_after is not None:
            where.append("created_at >= ?")
            params.append(created_after)
        if created_before is not None:
            where.append("created_at < ?")
            params.append(created_before)
        clause = " AND ".join(where)

        def run(db: sqlite3.Connection) -> tuple[list[JobRecord], int]:
            (total,) = db.execute(f"SELECT COUNT(*) FROM jobs WHERE {clause}", params).fetchone()
            items = self._select(
                db,
                f"{clause} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                [*params, page_size, min((page - 1) * page_size, _MAX_OFFSET)],
            )
            return items, int(total)

        return self._read(run)

    async def delete(self, owner: str, ids: Sequence[str]) -> list[JobRecord]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        marks = ", ".join("?" for _ in unique)

        def run(db: sqlite3.Connection) -> list[JobRecord]:
            with self._tx(db):
                jobs = self._select(db, f"owner = ? AND id IN ({marks})", [owner, *unique])
                removed = [j for j in jobs if j.status != "processing"]
                running = [j.id for j in jobs if j.status == "processing"]
                if removed:
                    db.executemany("DELETE FROM jobs WHERE id = ?", [(j.id,) for j in removed])
                if running:
                    db.executemany(
                        "UPDATE jobs SET cancel_requested = 1 WHERE id = ?", [(i,) for i in running]
                    )
            return removed

        return await self._write(run)

    async def purge(self, *, before: float) -> list[JobRecord]:
        def run(db: sqlite3.Connection) -> list[JobRecord]:
            with self._tx(db):
                old = self._select(db, "status IN ('completed', 'failed') AND created_at < ?", (before,))
                db.executemany("DELETE FROM jobs WHERE id = ?", [(j.id,) for j in old])
            return old

        return await self._write(run)

    async def close(self) -> None:
        await self._write(lambda db: db.close())
        self._pool.shutdown(wait=True)
        with self._read_lock:
            self._reader.close()
