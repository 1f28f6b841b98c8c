"""The store suite on the in-memory reference and on SQLite; SQLite's own durability and migrations."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from lipsync.server.job_store import BackendJobStore
from lipsync.server.memory import MemoryBackend
from lipsync.server.sqlite_store import SQLiteJobStore
from tests.server.store_suite import OpenStore, StoreSuite, job, resolving

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class TestMemoryStore(StoreSuite):
    @pytest.fixture
    def open_store(self) -> OpenStore:
        backend = MemoryBackend()  # one "database" shared by every store opened on it
        return lambda: BackendJobStore(backend)


class TestSQLiteStore(StoreSuite):
    @pytest.fixture
    def open_store(self, tmp_path: Path) -> OpenStore:
        return lambda: SQLiteJobStore(tmp_path / "jobs.db")


async def test_sqlite_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    first = SQLiteJobStore(path)
    await first.create(job("a"))
    await first.claim("w1", now=101.0, lease_s=10.0)
    await first.create(job("b", created_at=120.0))
    await first.close()
    second = SQLiteJobStore(path)
    a, b = await second.get("a"), await second.get("b")
    assert a is not None and (a.status, a.worker_id) == ("processing", "w1")
    assert b is not None and b.status == "created"
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    await second.close()


def test_sqlite_concurrent_claims_from_two_processes_never_share_a_job(tmp_path: Path) -> None:
    """Two connections in two threads (as two worker processes would) drain one queue without overlap."""
    path = tmp_path / "jobs.db"

    async def fill() -> None:
        writer = SQLiteJobStore(path)
        for i in range(60):
            await writer.create(job(f"j{i:02d}", created_at=float(i)))
        await writer.close()

    asyncio.run(fill())
    results: dict[str, list[str]] = {}

    def drain(name: str) -> None:
        async def run() -> list[str]:
            s = SQLiteJobStore(path)
            got: list[str] = []
            while (j := await s.claim(name, now=1000.0, lease_s=5.0)) is not None:
                got.append(j.id)
            await s.close()
            return got

        results[name] = asyncio.run(run())

    threads = [threading.Thread(target=drain, args=(name,)) for name in ("wa", "wb")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    claimed = results["wa"] + results["wb"]
    assert sorted(claimed) == [f"j{i:02d}" for i in range(60)]
    assert len(set(claimed)) == len(claimed)


#: The jobs table as schema version 1 wrote it (*extra*: the columns later versions added).
_V1_TABLE = """
    CREATE TABLE jobs (id TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL,
        created_at REAL NOT NULL, base_url TEXT NOT NULL, options TEXT NOT NULL, inputs TEXT NOT NULL,
        webhook TEXT, base64_output INTEGER NOT NULL DEFAULT 0, started_at REAL, finished_at REAL,
        outputs TEXT NOT NULL DEFAULT '[]', error TEXT NOT NULL DEFAULT '', code INTEGER, progress REAL,
        attempts INTEGER NOT NULL DEFAULT 0, worker_id TEXT, lease_until REAL,
        cancel_requested INTEGER NOT NULL DEFAULT 0, timings TEXT NOT NULL DEFAULT '{{}}'{extra});
"""


async def test_sqlite_files_of_the_previous_schema_are_migrated(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    old = sqlite3.connect(path)
    old.executescript(
        _V1_TABLE.format(extra="")
        + """
        INSERT INTO jobs (id, owner, status, created_at, base_url, options, inputs)
            VALUES ('old', 'k_a', 'created', 1.0, 'http://h', '{}', '{"video": "inputs/old/v.mp4"}');
        PRAGMA user_version = 1;
        """
    )
    old.close()
    store = SQLiteJobStore(path)
    got = await store.get("old")
    assert got is not None and got.sources == {} and got.inputs == {"video": "inputs/old/v.mp4"}
    assert got.face is None
    await store.create(resolving("new"))
    assert (await store.get("new")) == resolving("new")
    await store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 3


async def test_sqlite_files_of_version_2_get_the_face_column(tmp_path: Path) -> None:
    """Version 2 (with ``sources``, before the face report): a finished job keeps its outcome and reports no
    face; a job finished after the upgrade stores its report."""
    path = tmp_path / "jobs.db"
    old = sqlite3.connect(path)
    old.executescript(
        _V1_TABLE.format(extra=", sources TEXT NOT NULL DEFAULT '{}'")
        + """
        INSERT INTO jobs (id, owner, status, created_at, base_url, options, inputs, outputs, finished_at)
            VALUES ('done', 'k_a', 'completed', 1.0, 'http://h', '{}', '{"video": "inputs/done/v.mp4"}',
                    '["outputs/done/output.mp4"]', 5.0);
        PRAGMA user_version = 2;
        """
    )
    old.close()
    store = SQLiteJobStore(path)
    done = await store.get("done")
    assert done is not None and (done.status, done.outputs, done.face) == (
        "completed",
        ["outputs/done/output.mp4"],
        None,
    )
    await store.create(job("new"))
    await store.claim("w1", now=101.0, lease_s=10.0)
    await store.finish("new", "w1", status="completed", now=102.0, face={"mode": "point", "track": 0})
    await store.close()
    reopened = SQLiteJobStore(path)
    new = await reopened.get("new")
    assert new is not None and new.face == {"mode": "point", "track": 0}
    await reopened.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    assert db.execute("SELECT face FROM jobs WHERE id = 'done'").fetchone() == (None,)


async def test_sqlite_rows_with_the_options_of_older_versions_still_load(tmp_path: Path) -> None:
    store = SQLiteJobStore(tmp_path / "jobs.db")
    await store.create(job("old"))
    await store.close()
    # As written before RunOptions: only the fields the request set, no deep_cache, no model_version.
    db = sqlite3.connect(tmp_path / "jobs.db")
    with db:
        db.execute("""UPDATE jobs SET options = '{"seed": 5, "inference_steps": 2}' WHERE id = 'old'""")
    db.close()
    store = SQLiteJobStore(tmp_path / "jobs.db")
    got = await store.get("old")
    await store.close()
    assert got is not None
    assert (got.options.seed, got.options.inference_steps, got.options.deep_cache) == (5, 2, False)
    assert "model_version" not in got.options.model_fields_set  # the engine's default checkpoint decides
