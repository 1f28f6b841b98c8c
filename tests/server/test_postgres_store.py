"""The store suite on PostgreSQL (a real server: see ``tests/server/postgres.py``); its migrations."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from lipsync.server.postgres_store import MIGRATIONS, PostgresJobStore, migrate
from tests.server.postgres import postgres_url
from tests.server.store_suite import OpenStore, StoreSuite, job

__all__ = ["postgres_url"]  # the fixture, re-exported for pytest

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class TestPostgresStore(StoreSuite):
    @pytest.fixture
    def open_store(self, postgres_url: str) -> OpenStore:
        return lambda: PostgresJobStore(postgres_url, max_size=4)


async def test_migrations_run_once_even_when_processes_start_together(postgres_url: str) -> None:
    stores = [PostgresJobStore(postgres_url) for _ in range(3)]
    try:
        # Three "processes" open the empty database at once: the advisory lock lets one migrate.
        await asyncio.gather(*(s.get("x") for s in stores))
        await stores[0].create(job("a"))
        assert (await stores[2].get("a")) == job("a")
    finally:
        for s in stores:
            await s.close()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT version FROM lipsync_schema ORDER BY version")
        assert [v for (v,) in await cur.fetchall()] == [n for n, _ in MIGRATIONS]
        assert await migrate(conn) == MIGRATIONS[-1][0]  # nothing left to apply


async def test_a_database_of_version_1_gets_the_face_column(postgres_url: str) -> None:
    """Version 1 (before the face report): a finished job keeps its outcome and reports no face; a job
    finished after the upgrade stores its report."""
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(MIGRATIONS[0][1])
        await conn.execute("CREATE TABLE lipsync_schema (version INTEGER NOT NULL)")
        await conn.execute("INSERT INTO lipsync_schema (version) VALUES (1)")
        await conn.execute(
            "INSERT INTO jobs (id, owner, status, created_at, base_url, options, inputs, outputs, finished_at) "
            "VALUES ('done', 'k_a', 'completed', 1.0, 'http://h', '{}', '{}', '[\"outputs/done/output.mp4\"]', 5.0)"
        )
    store = PostgresJobStore(postgres_url)
    try:
        done = await store.get("done")
        assert done is not None and (done.status, done.outputs, done.face) == (
            "completed",
            ["outputs/done/output.mp4"],
            None,
        )
        await store.create(job("new"))
        await store.claim("w1", now=101.0, lease_s=10.0)
        await store.finish("new", "w1", status="completed", now=102.0, face={"mode": "point", "track": 0})
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT id, face FROM jobs ORDER BY id")
        assert await cur.fetchall() == [("done", None), ("new", {"mode": "point", "track": 0})]
        cur = await conn.execute("SELECT version FROM lipsync_schema ORDER BY version")
        assert [v for (v,) in await cur.fetchall()] == [1, 2]
