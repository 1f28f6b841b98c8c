"""The embedded job store backend: one SQLite file in WAL mode, shared by the API process and its workers.

WAL lets readers (result polls) proceed while a writer commits, and ``synchronous=NORMAL`` makes a commit
cost a write, not an fsync (a power cut may lose the last commits, a process crash loses nothing).

Nothing here waits on the event loop: a job's point read (``get``, what a poll does) runs inline, never
waiting for a lock; scans run on a reader thread and writes on a writer thread, each with its own
connection (WAL readers never wait for writers). Both threads work in batches: each time one wakes
it takes every call waiting at that moment and hands all their results back to the event loop in one
callback, so under load one thread switch serves many requests instead of costing ~4x a query each.
Writes are group-committed: a batch is one ``BEGIN IMMEDIATE`` transaction, each write in its own
savepoint (a write that fails is rolled back alone). A submit therefore waits for one lock acquisition
and one commit shared with its neighbours, not for a queue of them; the worker processes' claims and
finishes take the database lock between two batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
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
    sources TEXT NOT NULL DEFAULT '{}',
    face TEXT
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, created_at);
CREATE INDEX IF NOT EXISTS jobs_owner_active ON jobs (owner, status);
"""

#: Version 2 added ``sources`` (inputs resolved after submit), version 3 ``face`` (the face report of a
#: completed job); older files get the missing columns on open.
_USER_VERSION = 3

_COLUMNS = ", ".join(FIELDS)
_PLACEHOLDERS = ", ".join("?" for _ in FIELDS)
#: SQLite integers are 64-bit; a page beyond every row is simply empty.
_MAX_OFFSET = 2**63 - 1
#: Writes committed together at most (bounds how long one batch holds the lock).
_MAX_BATCH = 64


_Call = Callable[[sqlite3.Connection], Any]
_Outcome = tuple[bool, Any]  # (succeeded, result or exception)


class _Batches:
    """A thread that runs calls in batches: all the calls waiting when it wakes, handed to *run_batch*
    together, their outcomes delivered to each caller's event loop in one callback. Under load one
    thread switch and one loop wake-up serve many requests (a hop per call would cost ~4x its query)."""

    def __init__(
        self, name: str, run_batch: Callable[[list[Any]], list[_Outcome]], *, on_exit: Callable[[], None]
    ) -> None:
        self._run_batch = run_batch
        self._on_exit = on_exit
        self._queue: queue.SimpleQueue[tuple[Any, asyncio.Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    async def run(self, fn: Callable[..., T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((fn, future))
        return await future

    async def close(self) -> None:
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def _loop(self) -> None:
        try:
            while (first := self._queue.get()) is not None:
                batch = [first]
                stop = False
                while len(batch) < _MAX_BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    batch.append(item)
                outcomes = self._run_batch([fn for fn, _ in batch])
                by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], _Outcome]]] = {}
                for (_fn, future), outcome in zip(batch, outcomes, strict=True):
                    by_loop.setdefault(future.get_loop(), []).append((future, outcome))
                for loop, results in by_loop.items():
                    with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                        loop.call_soon_threadsafe(_deliver, results)
                if stop:
                    break
        finally:
            self._on_exit()


def _deliver(results: list[tuple[asyncio.Future[Any], _Outcome]]) -> None:
    for future, (ok, value) in results:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


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
        self._reader = self._connect(busy_timeout_ms)
        # Point reads (a poll's get) run inline on the caller's event loop; no busy wait: see ``get``.
        self._inline = self._connect(0)
        self._writes = _Batches("sqlite-writer", self._commit, on_exit=self._writer.close)
        self._reads = _Batches("sqlite-reader", self._read_batch, on_exit=self._reader.close)

    def _connect(self, busy_timeout_ms: int) -> sqlite3.Connection:
        # Autocommit mode (isolation_level=None): transactions are explicit BEGIN IMMEDIATE blocks.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Setting the journal mode may wait for another process's lock, even on a file already in WAL mode:
        # it waits with SQLite's handler up to the store's timeout whatever this connection's own is (the
        # writer's is 0), or a store opened while another commits failed with "database is locked".
        db.execute(f"PRAGMA busy_timeout = {round(self._busy_timeout_s * 1000)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        return db

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        db.executescript(_SCHEMA)
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version >= _USER_VERSION:
            return
        # One transaction: processes opening the file together cannot both add a column.
        db.execute("BEGIN IMMEDIATE")
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            if "sources" not in columns:
                db.execute("ALTER TABLE jobs ADD COLUMN sources TEXT NOT NULL DEFAULT '{}'")
            if "face" not in columns:
                db.execute("ALTER TABLE jobs ADD COLUMN face TEXT")
            db.execute(f"PRAGMA user_version = {_USER_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

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
        return await self._writes.run(fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run *fn* on the reader thread (with the reads waiting at that moment)."""
        return await self._reads.run(fn)

    def _read_batch(self, batch: list[_Call]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        for fn in batch:
            try:
                outcomes.append((True, fn(self._reader)))
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes

    def _commit(self, batch: list[_Call]) -> list[_Outcome]:
        db = self._writer
        try:
            self._retry_busy(lambda: db.execute("BEGIN IMMEDIATE"))
        except Exception as exc:  # the lock stayed busy past busy_timeout: every write fails
            return [(False, exc) for _ in batch]
        outcomes: list[_Outcome] = []
        for fn in batch:
            db.execute("SAVEPOINT w")
            try:
                outcomes.append((True, fn(db)))
            except Exception as exc:
                db.execute("ROLLBACK TO w")
                outcomes.append((False, exc))
            db.execute("RELEASE w")
        try:
            db.execute("COMMIT")
        except Exception as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            return [(False, exc) for _ in batch]
        return outcomes

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
        # One primary-key read, inline: ~30 us of CPU, where a hop to the reader thread costs ~4x that and,
        # in a busy process, two waits for the GIL (up to the 5 ms switch interval each) - the largest part
        # of a poll's latency under load (bench/RESULTS.md, issue 12). WAL readers do not wait for writers;
        # in the rare moment the file is busy (another connection recovering the WAL) the reader thread,
        # which may wait, serves it instead of the event loop.
        try:
            rows = self._select(self._inline, "id = ?", (job_id,))
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
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
        await self._writes.close()
        await self._reads.close()
        self._inline.close()


class SQLiteJobStore(BackendJobStore):
    """The job store on one SQLite database file."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        super().__init__(SQLiteBackend(path, busy_timeout_ms=busy_timeout_ms))
