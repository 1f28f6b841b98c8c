"""JobStore semantics, identical for the in-memory reference and the SQLite store; SQLite durability."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from contracts import RunOptions
from lipsync.server.interfaces import ActiveLimitExceeded, JobRecord, JobStore
from lipsync.server.memory import MemoryJobStore
from lipsync.server.sqlite_store import SQLiteJobStore
from lipsync.server.transitions import CANCELLED_MESSAGE
from tests.contracts.option_values import non_default_options

pytestmark = pytest.mark.anyio

DIED = "worker died"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def job(job_id: str, *, owner: str = "k_a", created_at: float = 100.0) -> JobRecord:
    return JobRecord(
        id=job_id,
        owner=owner,
        base_url="http://h",
        options=RunOptions(seed=1),
        inputs={"video": f"inputs/{job_id}/video.mp4", "audio": f"inputs/{job_id}/audio.wav"},
        created_at=created_at,
    )


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    s: JobStore = MemoryJobStore() if request.param == "memory" else SQLiteJobStore(tmp_path / "jobs.db")
    yield s
    await s.close()


async def test_create_get_roundtrip(store: JobStore) -> None:
    original = job("a")
    original.webhook = "https://hook.example/x"
    await store.create(original)
    got = await store.get("a")
    assert got == original
    assert await store.get("missing") is None


async def test_active_limit_is_enforced_on_create(store: JobStore) -> None:
    await store.create(job("a"), active_limit=2)
    await store.create(job("b"), active_limit=2)
    with pytest.raises(ActiveLimitExceeded) as info:
        await store.create(job("c"), active_limit=2)
    assert (info.value.active, info.value.limit) == (2, 2)
    await store.create(job("d", owner="k_other"), active_limit=2)  # per owner
    assert await store.get("c") is None
    assert await store.count_active("k_a") == 2


async def test_claim_takes_oldest_and_leases_it(store: JobStore) -> None:
    await store.create(job("new", created_at=200.0))
    await store.create(job("old", created_at=100.0))
    claimed = await store.claim("w1", now=300.0, lease_s=10.0)
    assert claimed is not None and claimed.id == "old"
    assert (claimed.status, claimed.worker_id, claimed.lease_until, claimed.attempts) == (
        "processing",
        "w1",
        310.0,
        1,
    )
    assert claimed.timings["queue"] == 200_000
    second = await store.claim("w2", now=300.0, lease_s=10.0)
    assert second is not None and second.id == "new"
    assert await store.claim("w3", now=300.0, lease_s=10.0) is None


async def test_finish_is_a_compare_and_set_on_the_lease(store: JobStore) -> None:
    await store.create(job("a"))
    await store.claim("w1", now=101.0, lease_s=10.0)
    assert await store.finish("a", "intruder", status="completed", now=102.0) is None
    done = await store.finish("a", "w1", status="completed", now=103.0, outputs=["outputs/a/output.mp4"])
    assert done is not None and done.status == "completed" and done.outputs == ["outputs/a/output.mp4"]
    assert done.timings["total"] == 3000
    # A second finish (a stale worker) cannot overwrite the outcome.
    assert await store.finish("a", "w1", status="failed", now=104.0, error="late") is None
    got = await store.get("a")
    assert got is not None and got.status == "completed"


async def test_heartbeat_renews_reports_progress_and_cancel(store: JobStore) -> None:
    await store.create(job("a"))
    await store.claim("w1", now=101.0, lease_s=10.0)
    reply = await store.heartbeat("a", "w1", lease_until=150.0, progress=0.25)
    assert reply.owned and not reply.cancel_requested
    got = await store.get("a")
    assert got is not None and (got.lease_until, got.progress) == (150.0, 0.25)
    cancelled = await store.cancel("a", now=120.0)
    assert cancelled is not None and cancelled.status == "processing" and cancelled.cancel_requested
    reply = await store.heartbeat("a", "w1", lease_until=160.0, progress=None)
    assert reply.owned and reply.cancel_requested
    assert not (await store.heartbeat("a", "other", lease_until=170.0, progress=None)).owned


async def test_cancel_of_a_queued_job_fails_it_at_once(store: JobStore) -> None:
    await store.create(job("a"))
    cancelled = await store.cancel("a", now=105.0)
    assert cancelled is not None
    assert (cancelled.status, cancelled.code, cancelled.error) == ("failed", 1405, CANCELLED_MESSAGE)
    assert await store.claim("w1", now=106.0, lease_s=10.0) is None
    assert await store.cancel("missing", now=1.0) is None


async def test_expired_lease_is_retried_once_then_failed(store: JobStore) -> None:
    await store.create(job("a"))
    await store.claim("w1", now=101.0, lease_s=10.0)
    assert await store.expire_leases(now=105.0, max_attempts=2, message=DIED) == []  # still leased
    (requeued,) = await store.expire_leases(now=112.0, max_attempts=2, message=DIED)
    assert (requeued.status, requeued.worker_id, requeued.attempts) == ("created", None, 1)
    again = await store.claim("w2", now=113.0, lease_s=10.0)
    assert again is not None and again.attempts == 2
    assert await store.release_worker("w2") == 1  # the supervisor saw w2 die
    (failed,) = await store.expire_leases(now=114.0, max_attempts=2, message=DIED)
    assert (failed.status, failed.error, failed.code) == ("failed", DIED, 5000)


async def test_expired_lease_of_a_cancelled_job_ends_it_cancelled(store: JobStore) -> None:
    await store.create(job("a"))
    await store.claim("w1", now=101.0, lease_s=1.0)
    await store.cancel("a", now=101.5)
    (ended,) = await store.expire_leases(now=200.0, max_attempts=5, message=DIED)
    assert (ended.status, ended.code) == ("failed", 1405)


async def test_list_filters_pages_and_isolates_owners(store: JobStore) -> None:
    for i in range(5):
        await store.create(job(f"j{i}", created_at=100.0 + i))
    await store.create(job("theirs", owner="k_b", created_at=150.0))
    await store.cancel("j1", now=200.0)
    items, total = await store.list_jobs("k_a", page=1, page_size=2)
    assert total == 5 and [j.id for j in items] == ["j4", "j3"]
    items, _ = await store.list_jobs("k_a", page=3, page_size=2)
    assert [j.id for j in items] == ["j0"]
    items, total = await store.list_jobs("k_a", page=1, page_size=10, status="failed")
    assert total == 1 and items[0].id == "j1"
    items, total = await store.list_jobs(
        "k_a", page=1, page_size=10, created_after=102.0, created_before=104.0
    )
    assert [j.id for j in items] == ["j3", "j2"] and total == 2


async def test_delete_removes_idle_jobs_and_cancels_running_ones(store: JobStore) -> None:
    await store.create(job("queued"))
    await store.create(job("running", created_at=50.0))
    await store.create(job("theirs", owner="k_b"))
    await store.claim("w1", now=101.0, lease_s=10.0)  # claims "running" (oldest)
    removed = await store.delete("k_a", ["queued", "running", "theirs", "nope", "queued"])
    assert [j.id for j in removed] == ["queued"]
    running = await store.get("running")
    assert running is not None and running.cancel_requested
    assert await store.get("theirs") is not None


async def test_purge_removes_old_terminal_jobs_only(store: JobStore) -> None:
    await store.create(job("old", created_at=10.0))
    await store.create(job("old-queued", created_at=11.0))
    await store.create(job("recent", created_at=500.0))
    await store.cancel("old", now=20.0)
    await store.cancel("recent", now=501.0)
    purged = await store.purge(before=100.0)
    assert [j.id for j in purged] == ["old"]
    assert await store.get("old-queued") is not None and await store.get("recent") is not None


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


# ---- input resolution (jobs accepted before their inputs are stored) ------------------------------------


def resolving(job_id: str, *, resolver: str | None = "r1", lease_until: float | None = 200.0) -> JobRecord:
    record = job(job_id)
    record.inputs = {}
    record.sources = {"video": "https://cdn.example/v.mp4", "audio": "stored:inputs/x/source/audio"}
    record.status = "resolving"
    record.worker_id = resolver
    record.lease_until = lease_until
    record.attempts = 1
    return record


@pytest.fixture(params=["memory", "sqlite", "dict"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    """Every JobStore, Modal's Dict store included (the resolution methods are new to all three)."""
    from lipsync.server.modal_backends import DictJobStore
    from tests.modal.fakes import FakeDict

    stores: dict[str, Callable[[], JobStore]] = {
        "memory": MemoryJobStore,
        "sqlite": lambda: SQLiteJobStore(tmp_path / "jobs.db"),
        "dict": lambda: DictJobStore(FakeDict(), lock_ttl_s=2.0),
    }
    s = stores[request.param]()
    yield s
    await s.close()


async def test_a_resolving_job_is_active_but_never_claimed_by_a_worker(any_store: JobStore) -> None:
    await any_store.create(resolving("a"), active_limit=2)
    assert await any_store.count_active("k_a") == 1
    assert await any_store.claim("w1", now=101.0, lease_s=10.0) is None
    got = await any_store.get("a")
    assert got is not None and got.status == "resolving" and got.public_status == "created"
    assert got.sources == resolving("a").sources
    items, total = await any_store.list_jobs("k_a", page=1, page_size=10, status="created")
    assert total == 1 and items[0].id == "a"  # clients see it as created


async def test_finish_resolution_queues_or_fails_only_for_the_holder(any_store: JobStore) -> None:
    await any_store.create(resolving("a"))
    await any_store.create(resolving("b"))
    inputs = {"video": "inputs/a/video.mp4", "audio": "inputs/a/audio.wav"}
    assert await any_store.finish_resolution("a", "intruder", now=101.0, inputs=inputs) is None
    queued = await any_store.finish_resolution("a", "r1", now=101.0, inputs=inputs, timings={"download": 7})
    assert queued is not None and (queued.status, queued.inputs, queued.attempts) == ("created", inputs, 0)
    assert queued.worker_id is None and queued.timings["download"] == 7
    assert await any_store.finish_resolution("a", "r1", now=102.0, inputs=None, error="late") is None
    claimed = await any_store.claim("w1", now=103.0, lease_s=10.0)
    assert claimed is not None and claimed.id == "a" and claimed.attempts == 1

    failed = await any_store.finish_resolution("b", "r1", now=104.0, inputs=None, error="e: bad", code=1401)
    assert failed is not None and (failed.status, failed.error, failed.code) == ("failed", "e: bad", 1401)
    assert await any_store.count_active("k_a") == 1  # only "a", running


async def test_an_expired_resolution_is_released_and_taken_over(any_store: JobStore) -> None:
    await any_store.create(resolving("a", lease_until=150.0))
    await any_store.create(resolving("b", lease_until=300.0))
    assert await any_store.claim_resolution("r2", now=120.0, lease_s=50.0) is None  # both still held
    (released,) = await any_store.expire_leases(now=160.0, max_attempts=2, message=DIED)
    assert (released.id, released.status, released.worker_id) == ("a", "resolving", None)
    taken = await any_store.claim_resolution("r2", now=161.0, lease_s=500.0)
    assert taken is not None and (taken.id, taken.worker_id, taken.attempts) == ("a", "r2", 2)
    assert taken.lease_until == 661.0
    assert await any_store.claim_resolution("r3", now=170.0, lease_s=50.0) is None  # b: still held
    # A resolver's lease that ran out can be taken over without a sweep in between.
    late = await any_store.claim_resolution("r3", now=301.0, lease_s=50.0)
    assert late is not None and late.id == "b"
    assert await any_store.finish_resolution("a", "r1", now=302.0, inputs={"video": "v"}) is None


async def test_cancelling_a_resolving_job_fails_it_at_once(any_store: JobStore) -> None:
    await any_store.create(resolving("a"))
    cancelled = await any_store.cancel("a", now=105.0)
    assert cancelled is not None and (cancelled.status, cancelled.code) == ("failed", 1405)
    assert await any_store.finish_resolution("a", "r1", now=106.0, inputs={"video": "v"}) is None
    assert await any_store.claim_resolution("r2", now=1e9, lease_s=1.0) is None


async def test_expiring_a_dead_workers_jobs_whatever_their_lease(any_store: JobStore) -> None:
    await any_store.create(job("a"))
    await any_store.create(job("b", created_at=101.0))
    await any_store.claim("w1", now=101.0, lease_s=1000.0)
    await any_store.claim("w2", now=101.0, lease_s=1000.0)
    (requeued,) = await any_store.expire_leases(now=102.0, max_attempts=2, message=DIED, worker_id="w1")
    assert (requeued.id, requeued.status) == ("a", "created")
    other = await any_store.get("b")
    assert other is not None and other.status == "processing"  # w2's lease is untouched


async def test_sqlite_files_of_the_previous_schema_are_migrated(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE jobs (id TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL,
            created_at REAL NOT NULL, base_url TEXT NOT NULL, options TEXT NOT NULL, inputs TEXT NOT NULL,
            webhook TEXT, base64_output INTEGER NOT NULL DEFAULT 0, started_at REAL, finished_at REAL,
            outputs TEXT NOT NULL DEFAULT '[]', error TEXT NOT NULL DEFAULT '', code INTEGER, progress REAL,
            attempts INTEGER NOT NULL DEFAULT 0, worker_id TEXT, lease_until REAL,
            cancel_requested INTEGER NOT NULL DEFAULT 0, timings TEXT NOT NULL DEFAULT '{}');
        INSERT INTO jobs (id, owner, status, created_at, base_url, options, inputs)
            VALUES ('old', 'k_a', 'created', 1.0, 'http://h', '{}', '{"video": "inputs/old/v.mp4"}');
        PRAGMA user_version = 1;
        """
    )
    old.close()
    store = SQLiteJobStore(path)
    got = await store.get("old")
    assert got is not None and got.sources == {} and got.inputs == {"video": "inputs/old/v.mp4"}
    await store.create(resolving("new"))
    assert (await store.get("new")) == resolving("new")
    await store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2


async def test_every_run_option_survives_the_store(store: JobStore) -> None:
    options = RunOptions(**non_default_options())
    original = job("a")
    original.options = options
    await store.create(original)
    got = await store.get("a")
    assert got is not None and got.options == options
    assert got.options.model_fields_set == set(RunOptions.model_fields)


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
