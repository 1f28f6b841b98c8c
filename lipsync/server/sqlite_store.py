"""The embedded job store backend: one SQLite file in WAL mode, shared by the API process and its workers.

WAL lets readers (result polls) proceed while a writer commits, and ``synchronous=NORMAL`` makes a commit
cost a write, not an fsync (a power cut may lose the last commits, a process crash loses nothing).

Nothing here blocks the event loop: reads run on a small thread pool (one connection per thread; WAL
readers never wait for writers), writes on one writer thread. Writes are group-committed: the writer takes
every write waiting at that moment and runs them in one ``BEGIN IMMEDIATE`` transaction, each in its own
savepoint (a write that fails is rolled back alone). Under load a submit therefore waits for one lock
acquisition and one commit shared with its neighbours, not for a queue of them; the worker processes'
claims and finishes take the same database lock between two batches.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from lipsync.server.interfaces import ActiveLimitExceeded, JobRecord
from lipsync.server.job_store import BackendJobStore
from lipsync.server.records import FIELDS, from_row, to_row
from lipsync.server.store_backend import Change, Match

__all__ = ["SQLiteBackend", "SQLiteJobStore"]

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

_COLUMNS = ", ".join(FIELDS)
_PLACEHOLDERS = ", ".join("?" for _ in FIELDS)
#: SQLite integers are 64-bit; a page beyond every row is simply empty.
_MAX_OFFSET = 2**63 - 1
#: Writes committed together at most (bounds how long one batch holds the lock).
_MAX_BATCH = 64
_READ_THREADS = 2

_Write = tuple[Callable[[sqlite3.Connection], Any], "Future[Any]"]


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class SQLiteBackend:
    """Records in one SQLite database file (created with its schema on first open)."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_ms / 1000
        # The writer waits for other processes' write locks itself (see _retry_busy), in finer steps than
        # SQLite's own busy handler, whose sleeps grow to 100 ms and dominate a loaded server's latency.
        self._writer = self._connect(0)
        self._retry_busy(lambda: self._migrate(self._writer))
        self._writes: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._writer_thread = threading.Thread(target=self._write_loop, name="sqlite-writer", daemon=True)
        self._writer_thread.start()
        self._readers: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._read_pool = ThreadPoolExecutor(max_workers=_READ_THREADS, thread_name_prefix="sqlite-reader")
        self._busy_timeout_ms = busy_timeout_ms

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

    def _retry_busy(self, fn: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._busy_timeout_s
        pause = 0.0002
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK")
                if time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.005)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run *fn* in the writer's next batch (one transaction; *fn* in its own savepoint)."""
        done: Future[T] = Future()
        self._writes.put((fn, done))
        return await asyncio.wrap_future(done)

    def _write_loop(self) -> None:
        while (first := self._writes.get()) is not None:
            batch = [first]
            stop = False
            while len(batch) < _MAX_BATCH:
                try:
                    item = self._writes.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                break
        self._writer.close()

    def _commit(self, batch: list[_Write]) -> None:
        db = self._writer
        try:
            self._retry_busy(lambda: db.execute("BEGIN IMMEDIATE"))
        except BaseException as exc:  # the lock stayed busy past busy_timeout: every write fails
            for _fn, done in batch:
                done.set_exception(exc)
            return
        results: list[tuple[Future[Any], bool, Any]] = []
        for fn, done in batch:
            db.execute("SAVEPOINT w")
            try:
                value = fn(db)
            except BaseException as exc:
                db.execute("ROLLBACK TO w")
                results.append((done, False, exc))
            else:
                results.append((done, True, value))
            db.execute("RELEASE w")
        try:
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            results = [(done, False, exc) for done, _ok, _v in results]
        for done, ok, value in results:
            if ok:
                done.set_result(value)
            else:
                done.set_exception(value)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._read_pool, self._in_reader, fn)

    def _in_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect(self._busy_timeout_ms)
            self._readers.append(db)
        return fn(db)

    @staticmethod
    def _select(db: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[JobRecord]:
        return [from_row(r) for r in db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE {where}", params)]

    @staticmethod
    def _put(db: sqlite3.Connection, job: JobRecord) -> None:
        db.execute(f"REPLACE INTO jobs ({_COLUMNS}) VALUES ({_PLACEHOLDERS})", to_row(job))

    # -- StoreBackend --------------------------------------------------------------------------------

    async def insert(self, job: JobRecord, *, active_limit: int | None, active: Match) -> None:
        where, params = active.sql()

        def run(db: sqlite3.Connection) -> None:
            if active_limit is not None:
                (n,) = db.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", params).fetchone()
                if n >= active_limit:
                    raise ActiveLimitExceeded(n, active_limit)
            try:
                db.execute(f"INSERT INTO jobs ({_COLUMNS}) VALUES ({_PLACEHOLDERS})", to_row(job))
            except sqlite3.IntegrityError:
                raise ValueError(f"duplicate job id {job.id}") from None

        await self._write(run)

    async def get(self, job_id: str) -> JobRecord | None:
        rows = await self._read(lambda db: self._select(db, "id = ?", (job_id,)))
        return rows[0] if rows else None

    async def update(self, match: Match, change: Change, *, first: int | None = None) -> list[JobRecord]:
        where, params = match.sql()
        order = " ORDER BY created_at, id" + ("" if first is None else f" LIMIT {int(first)}")

        def run(db: sqlite3.Connection) -> list[JobRecord]:
            changed = []
            for job in self._select(db, where + order, params):
                if change(job):
                    self._put(db, job)
                    changed.append(job)
            return changed

        return await self._write(run)

    async def scan(
        self, match: Match, *, offset: int = 0, limit: int | None = None, newest_first: bool = True
    ) -> tuple[list[JobRecord], int]:
        where, params = match.sql()
        direction = "DESC" if newest_first else "ASC"

        def run(db: sqlite3.Connection) -> tuple[list[JobRecord], int]:
            (total,) = db.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", params).fetchone()
            if limit == 0:
                return [], int(total)
            items = self._select(
                db,
                f"{where} ORDER BY created_at {direction}, id {direction} LIMIT ? OFFSET ?",
                [*params, -1 if limit is None else limit, min(offset, _MAX_OFFSET)],
            )
            return items, int(total)

        return await self._read(run)

    async def remove(self, match: Match) -> list[JobRecord]:
        where, params = match.sql()

        def run(db: sqlite3.Connection) -> list[JobRecord]:
            gone = self._select(db, where + " ORDER BY created_at, id", params)
            db.executemany("DELETE FROM jobs WHERE id = ?", [(j.id,) for j in gone])
            return gone

        return await self._write(run)

    async def close(self) -> None:
        self._writes.put(None)
        await asyncio.to_thread(self._writer_thread.join)
        self._read_pool.shutdown(wait=True)
        for db in self._readers:
            db.close()


class SQLiteJobStore(BackendJobStore):
    """The job store on one SQLite database file."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        super().__init__(SQLiteBackend(path, busy_timeout_ms=busy_timeout_ms))
