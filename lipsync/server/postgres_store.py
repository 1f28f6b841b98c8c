"""The job store backend for several machines: PostgreSQL, through psycopg 3's async driver and a pool.

N API processes and M workers on any machines share one database. Every write is one transaction:

- claims select the oldest queued row with ``FOR UPDATE SKIP LOCKED``, so concurrent workers never wait
  for each other and never take the same job;
- other compare-and-sets lock their rows (``FOR UPDATE``), re-check the precondition, write back;
- an insert under the per-key active limit first takes a transaction-scoped advisory lock on the owner,
  so two API processes cannot both accept the 8th job of one key.

Statements go through psycopg's pipeline mode: BEGIN travels with the first statement and COMMIT with the
last write, so a compare-and-set costs two round trips, not four.

The schema is versioned (``lipsync_schema``); pending migrations run at first use, serialised between
processes by an advisory lock.
"""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool

from lipsync.server.interfaces import ActiveLimitExceeded, JobRecord
from lipsync.server.job_store import BackendJobStore
from lipsync.server.records import FIELDS, from_row, to_row
from lipsync.server.store_backend import Change, Match

__all__ = ["MIGRATIONS", "PostgresBackend", "PostgresJobStore"]

#: (version, statements): applied in order, once each. Append; never edit a released one.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            base_url TEXT NOT NULL,
            options JSONB NOT NULL,
            inputs JSONB NOT NULL,
            webhook TEXT,
            base64_output BOOLEAN NOT NULL DEFAULT FALSE,
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            outputs JSONB NOT NULL DEFAULT '[]',
            error TEXT NOT NULL DEFAULT '',
            code INTEGER,
            progress DOUBLE PRECISION,
            attempts INTEGER NOT NULL DEFAULT 0,
            worker_id TEXT,
            lease_until DOUBLE PRECISION,
            cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
            timings JSONB NOT NULL DEFAULT '{}',
            sources JSONB NOT NULL DEFAULT '{}'
        );
        CREATE INDEX jobs_queue ON jobs (status, created_at, id);
        CREATE INDEX jobs_owner ON jobs (owner, created_at, id);
        CREATE INDEX jobs_owner_active ON jobs (owner, status);
        """,
    ),
    # The face report of a completed job (``JobRecord.face``; NULL when the request chose no face).
    (2, "ALTER TABLE jobs ADD COLUMN face JSONB"),
)

_COLUMNS = ", ".join(FIELDS)
_PLACEHOLDERS = ", ".join("%s" for _ in FIELDS)
_ASSIGN = ", ".join(f"{f} = %s" for f in FIELDS if f != "id")
#: Keys of the advisory locks this module takes (migrations; owners hash into the second key space).
_MIGRATION_LOCK = 7_105_118
_OWNER_LOCK_SPACE = 7_105_119
#: PostgreSQL's OFFSET is a bigint; a page beyond every row is simply empty.
_MAX_OFFSET = 2**63 - 1


def _row(job: JobRecord) -> tuple[Any, ...]:
    return to_row(job, flag=bool)


class PostgresBackend:
    """Records in PostgreSQL at *url* (``postgresql://user:pass@host:port/db``); pool opened at first use."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self._pool = AsyncConnectionPool(
            url, min_size=min_size, max_size=max_size, kwargs={"autocommit": True}, open=False
        )
        self._ready: asyncio.Lock | None = None
        self._opened = False

    async def _conn_pool(self) -> AsyncConnectionPool:
        if not self._opened:
            self._ready = self._ready or asyncio.Lock()
            async with self._ready:
                if not self._opened:
                    await self._pool.open(wait=True)
                    async with self._pool.connection() as conn:
                        await migrate(conn)
                    self._opened = True
        return self._pool

    async def insert(self, job: JobRecord, *, active_limit: int | None, active: Match) -> None:
        where, params = active.sql("%s")
        pool = await self._conn_pool()
        try:
            async with pool.connection() as conn, conn.pipeline(), conn.transaction():
                if active_limit is not None:
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_OWNER_LOCK_SPACE, job.owner)
                    )
                    cur = await conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", params)
                    (n,) = await cur.fetchone() or (0,)
                    if n >= active_limit:
                        raise ActiveLimitExceeded(n, active_limit)
                await conn.execute(f"INSERT INTO jobs ({_COLUMNS}) VALUES ({_PLACEHOLDERS})", _row(job))
        except errors.UniqueViolation:  # raised where the pipeline syncs: at the commit at the latest
            raise ValueError(f"duplicate job id {job.id}") from None

    async def get(self, job_id: str) -> JobRecord | None:
        pool = await self._conn_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
            row = await cur.fetchone()
        return from_row(row) if row else None

    async def update(self, match: Match, change: Change, *, first: int | None = None) -> list[JobRecord]:
        where, params = match.sql("%s")
        # A claim skips rows another transaction holds (another worker is claiming them right now);
        # a targeted compare-and-set waits for them, then sees their new state.
        tail = " FOR UPDATE" if first is None else f" LIMIT {int(first)} FOR UPDATE SKIP LOCKED"
        pool = await self._conn_pool()
        async with pool.connection() as conn, conn.pipeline(), conn.transaction():
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE {where} ORDER BY created_at, id{tail}", params
            )
            changed = [job for job in map(from_row, await cur.fetchall()) if change(job)]
            if changed:
                async with conn.cursor() as writes:
                    await writes.executemany(
                        f"UPDATE jobs SET {_ASSIGN} WHERE id = %s",
                        [(*_row(job)[1:], job.id) for job in changed],
                    )
        return changed

    async def scan(
        self, match: Match, *, offset: int = 0, limit: int | None = None, newest_first: bool = True
    ) -> tuple[list[JobRecord], int]:
        where, params = match.sql("%s")
        direction = "DESC" if newest_first else "ASC"
        pool = await self._conn_pool()
        async with pool.connection() as conn, conn.pipeline():
            counted = await conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", params)
            if limit == 0:
                (total,) = await counted.fetchone() or (0,)
                return [], int(total)
            async with conn.cursor() as page:  # sent with the count: one round trip for both
                await page.execute(
                    f"SELECT {_COLUMNS} FROM jobs WHERE {where} "
                    f"ORDER BY created_at {direction}, id {direction} LIMIT %s OFFSET %s",
                    [*params, limit, min(offset, _MAX_OFFSET)],
                )
                (total,) = await counted.fetchone() or (0,)
                return [from_row(r) for r in await page.fetchall()], int(total)

    async def remove(self, match: Match) -> list[JobRecord]:
        where, params = match.sql("%s")
        pool = await self._conn_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(f"DELETE FROM jobs WHERE {where} RETURNING {_COLUMNS}", params)
            gone = [from_row(r) for r in await cur.fetchall()]
        return sorted(gone, key=lambda j: (j.created_at, j.id))

    async def close(self) -> None:
        if self._opened:
            await self._pool.close()
            self._opened = False


async def migrate(conn: AsyncConnection[Any]) -> int:
    """Apply the pending ``MIGRATIONS`` (one transaction, serialised between processes); the version now."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS lipsync_schema (version INTEGER NOT NULL)")
        cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM lipsync_schema")
        (version,) = await cur.fetchone() or (0,)
        for number, statements in MIGRATIONS:
            if number > version:
                await conn.execute(statements)
                await conn.execute("INSERT INTO lipsync_schema (version) VALUES (%s)", (number,))
                version = number
    return int(version)


class PostgresJobStore(BackendJobStore):
    """The job store on PostgreSQL (several API processes and workers, any machines)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        super().__init__(PostgresBackend(url, min_size=min_size, max_size=max_size))
