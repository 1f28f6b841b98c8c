"""The store suite: what every ``JobStore`` backend must do (memory, SQLite, Modal's Dict, PostgreSQL).

``StoreSuite`` is not collected by itself (its name does not start with ``Test``). A test module subclasses
it as ``Test<Backend>Store`` and provides an ``open_store`` fixture: a callable that opens a new store over
the same data each time it is called (a second process, container or machine). Every test below then runs
against that backend; a test added here runs against all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from contracts import RunOptions
from lipsync.server.interfaces import ActiveLimitExceeded, JobRecord, JobStore
from lipsync.server.transitions import CANCELLED_MESSAGE
from tests.contracts.option_values import non_default_options

__all__ = ["DIED", "OpenStore", "StoreSuite", "job", "resolving"]

DIED = "worker died"

OpenStore = Callable[[], JobStore]


def job(job_id: str, *, owner: str = "k_a", created_at: float = 100.0) -> JobRecord:
    return JobRecord(
        id=job_id,
        owner=owner,
        base_url="http://h",
        options=RunOptions(seed=1),
        inputs={"video": f"inputs/{job_id}/video.mp4", "audio": f"inputs/{job_id}/audio.wav"},
        created_at=created_at,
    )


def resolving(job_id: str, *, resolver: str | None = "r1", lease_until: float | None = 200.0) -> JobRecord:
    record = job(job_id)
    record.inputs = {}
    record.sources = {"video": "https://cdn.example/v.mp4", "audio": "stored:inputs/x/source/audio"}
    record.status = "resolving"
    record.worker_id = resolver
    record.lease_until = lease_until
    record.attempts = 1
    return record


@pytest.mark.anyio
class StoreSuite:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    async def connect(self, open_store: OpenStore) -> AsyncIterator[OpenStore]:
        """Opens stores over the backend's data (closed after the test)."""
        opened: list[JobStore] = []

        def connect() -> JobStore:
            opened.append(open_store())
            return opened[-1]

        yield connect
        for s in opened:
            await s.close()

    @pytest.fixture
    def store(self, connect: OpenStore) -> JobStore:
        return connect()

    async def test_it_is_a_job_store(self, store: JobStore) -> None:
        assert isinstance(store, JobStore)

    async def test_create_get_roundtrip(self, store: JobStore) -> None:
        original = job("a")
        original.webhook = "https://hook.example/x"
        await store.create(original)
        got = await store.get("a")
        assert got == original
        assert await store.get("missing") is None

    async def test_every_run_option_survives_the_store(self, store: JobStore) -> None:
        options = RunOptions(**non_default_options())
        original = job("a")
        original.options = options
        await store.create(original)
        got = await store.get("a")
        assert got is not None and got.options == options
        assert got.options.model_fields_set == set(RunOptions.model_fields)

    async def test_active_limit_is_enforced_on_create(self, store: JobStore) -> None:
        await store.create(job("a"), active_limit=2)
        await store.create(job("b"), active_limit=2)
        with pytest.raises(ActiveLimitExceeded) as info:
            await store.create(job("c"), active_limit=2)
        assert (info.value.active, info.value.limit) == (2, 2)
        await store.create(job("d", owner="k_other"), active_limit=2)  # per owner
        assert await store.get("c") is None
        assert await store.count_active("k_a") == 2

    async def test_claim_takes_oldest_and_leases_it(self, store: JobStore) -> None:
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

    async def test_finish_is_a_compare_and_set_on_the_lease(self, store: JobStore) -> None:
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

    async def test_a_finished_jobs_face_report_survives_the_store(self, connect: OpenStore) -> None:
        worker, reader = connect(), connect()  # another process (container, machine) reads it back
        report = {"mode": "auto", "track": 1, "score": 0.62, "runner_up": -0.05, "frames_with_face": 60}
        fallback = {"mode": "auto", "fallback": "largest", "reason": "the video has no sound track"}
        for name in ("a", "b", "c"):
            await worker.create(job(name))
            await worker.claim("w1", now=101.0, lease_s=10.0)
        done = await worker.finish(
            "a", "w1", status="completed", now=103.0, outputs=["o/a.mp4"], face=dict(report)
        )
        assert done is not None and done.face == report
        await worker.finish(
            "b", "w1", status="completed", now=103.0, outputs=["o/b.mp4"], face=dict(fallback)
        )
        # A failed job reports no face, whatever the worker passes.
        await worker.finish("c", "w1", status="failed", now=103.0, error="no_face: x", face=dict(report))
        a, b, c = [await reader.get(name) for name in ("a", "b", "c")]
        assert a is not None and a.face == report
        assert b is not None and b.face == fallback
        assert c is not None and c.status == "failed" and c.face is None
        items, _total = await reader.list_jobs("k_a", page=1, page_size=10)
        assert {j.id: j.face for j in items} == {"a": report, "b": fallback, "c": None}
        # A job created without one has none.
        await worker.create(job("d"))
        d = await reader.get("d")
        assert d is not None and d.face is None

    async def test_heartbeat_renews_reports_progress_and_cancel(self, store: JobStore) -> None:
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

    async def test_cancel_of_a_queued_job_fails_it_at_once(self, store: JobStore) -> None:
        await store.create(job("a"))
        cancelled = await store.cancel("a", now=105.0)
        assert cancelled is not None
        assert (cancelled.status, cancelled.code, cancelled.error) == ("failed", 1405, CANCELLED_MESSAGE)
        assert await store.claim("w1", now=106.0, lease_s=10.0) is None
        assert await store.cancel("missing", now=1.0) is None

    async def test_expired_lease_is_retried_once_then_failed(self, store: JobStore) -> None:
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

    async def test_expired_lease_of_a_cancelled_job_ends_it_cancelled(self, store: JobStore) -> None:
        await store.create(job("a"))
        await store.claim("w1", now=101.0, lease_s=1.0)
        await store.cancel("a", now=101.5)
        (ended,) = await store.expire_leases(now=200.0, max_attempts=5, message=DIED)
        assert (ended.status, ended.code) == ("failed", 1405)

    async def test_list_filters_pages_and_isolates_owners(self, store: JobStore) -> None:
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

    async def test_delete_removes_idle_jobs_and_cancels_running_ones(self, store: JobStore) -> None:
        await store.create(job("queued"))
        await store.create(job("running", created_at=50.0))
        await store.create(job("theirs", owner="k_b"))
        await store.claim("w1", now=101.0, lease_s=10.0)  # claims "running" (oldest)
        removed = await store.delete("k_a", ["queued", "running", "theirs", "nope", "queued"])
        assert [j.id for j in removed] == ["queued"]
        running = await store.get("running")
        assert running is not None and running.cancel_requested
        assert await store.get("theirs") is not None

    async def test_purge_removes_old_terminal_jobs_only(self, store: JobStore) -> None:
        await store.create(job("old", created_at=10.0))
        await store.create(job("old-queued", created_at=11.0))
        await store.create(job("recent", created_at=500.0))
        await store.cancel("old", now=20.0)
        await store.cancel("recent", now=501.0)
        purged = await store.purge(before=100.0)
        assert [j.id for j in purged] == ["old"]
        assert await store.get("old-queued") is not None and await store.get("recent") is not None

    async def test_a_resolving_job_is_active_but_never_claimed_by_a_worker(self, store: JobStore) -> None:
        await store.create(resolving("a"), active_limit=2)
        assert await store.count_active("k_a") == 1
        assert await store.claim("w1", now=101.0, lease_s=10.0) is None
        got = await store.get("a")
        assert got is not None and got.status == "resolving" and got.public_status == "created"
        assert got.sources == resolving("a").sources
        items, total = await store.list_jobs("k_a", page=1, page_size=10, status="created")
        assert total == 1 and items[0].id == "a"  # clients see it as created

    async def test_finish_resolution_queues_or_fails_only_for_the_holder(self, store: JobStore) -> None:
        await store.create(resolving("a"))
        await store.create(resolving("b"))
        inputs = {"video": "inputs/a/video.mp4", "audio": "inputs/a/audio.wav"}
        assert await store.finish_resolution("a", "intruder", now=101.0, inputs=inputs) is None
        queued = await store.finish_resolution("a", "r1", now=101.0, inputs=inputs, timings={"download": 7})
        assert queued is not None and (queued.status, queued.inputs, queued.attempts) == (
            "created",
            inputs,
            0,
        )
        assert queued.worker_id is None and queued.timings["download"] == 7
        assert await store.finish_resolution("a", "r1", now=102.0, inputs=None, error="late") is None
        claimed = await store.claim("w1", now=103.0, lease_s=10.0)
        assert claimed is not None and claimed.id == "a" and claimed.attempts == 1

        failed = await store.finish_resolution("b", "r1", now=104.0, inputs=None, error="e: bad", code=1401)
        assert failed is not None and (failed.status, failed.error, failed.code) == ("failed", "e: bad", 1401)
        assert await store.count_active("k_a") == 1  # only "a", running

    async def test_an_expired_resolution_is_released_and_taken_over(self, store: JobStore) -> None:
        await store.create(resolving("a", lease_until=150.0))
        await store.create(resolving("b", lease_until=300.0))
        assert await store.claim_resolution("r2", now=120.0, lease_s=50.0) is None  # both still held
        (released,) = await store.expire_leases(now=160.0, max_attempts=2, message=DIED)
        assert (released.id, released.status, released.worker_id) == ("a", "resolving", None)
        taken = await store.claim_resolution("r2", now=161.0, lease_s=500.0)
        assert taken is not None and (taken.id, taken.worker_id, taken.attempts) == ("a", "r2", 2)
        assert taken.lease_until == 661.0
        assert await store.claim_resolution("r3", now=170.0, lease_s=50.0) is None  # b: still held
        # A resolver's lease that ran out can be taken over without a sweep in between.
        late = await store.claim_resolution("r3", now=301.0, lease_s=50.0)
        assert late is not None and late.id == "b"
        assert await store.finish_resolution("a", "r1", now=302.0, inputs={"video": "v"}) is None

    async def test_cancelling_a_resolving_job_fails_it_at_once(self, store: JobStore) -> None:
        await store.create(resolving("a"))
        cancelled = await store.cancel("a", now=105.0)
        assert cancelled is not None and (cancelled.status, cancelled.code) == ("failed", 1405)
        assert await store.finish_resolution("a", "r1", now=106.0, inputs={"video": "v"}) is None
        assert await store.claim_resolution("r2", now=1e9, lease_s=1.0) is None

    async def test_expiring_a_dead_workers_jobs_whatever_their_lease(self, store: JobStore) -> None:
        await store.create(job("a"))
        await store.create(job("b", created_at=101.0))
        await store.claim("w1", now=101.0, lease_s=1000.0)
        await store.claim("w2", now=101.0, lease_s=1000.0)
        (requeued,) = await store.expire_leases(now=102.0, max_attempts=2, message=DIED, worker_id="w1")
        assert (requeued.id, requeued.status) == ("a", "created")
        other = await store.get("b")
        assert other is not None and other.status == "processing"  # w2's lease is untouched

    # ---- several processes over one backend --------------------------------------------------------

    async def test_two_workers_never_claim_the_same_job(self, connect: OpenStore) -> None:
        api = connect()
        for i in range(40):
            await api.create(job(f"j{i:02d}", created_at=float(i)))
        workers = {"wa": connect(), "wb": connect()}

        async def drain(name: str) -> list[str]:
            got: list[str] = []
            while (claimed := await workers[name].claim(name, now=1000.0, lease_s=5.0)) is not None:
                assert claimed.worker_id == name
                got.append(claimed.id)
                await asyncio.sleep(0)  # let the other worker in between claims
            return got

        a, b = await asyncio.gather(drain("wa"), drain("wb"))
        assert sorted(a + b) == [f"j{i:02d}" for i in range(40)]
        assert not set(a) & set(b)
        assert await api.has_queued() is False

    async def test_a_dead_workers_job_is_rerun_then_failed_never_stuck(self, connect: OpenStore) -> None:
        api, first, second = connect(), connect(), connect()
        await api.create(job("a"))
        assert await api.has_queued()
        taken = await first.claim("w1", now=101.0, lease_s=10.0)
        assert taken is not None and taken.id == "a"
        # w1 dies: no heartbeat renews its lease; the API's sweep re-queues the job once it runs out.
        assert await api.expire_leases(now=110.0, max_attempts=2, message=DIED) == []
        (requeued,) = await api.expire_leases(now=112.0, max_attempts=2, message=DIED)
        assert (requeued.status, requeued.attempts) == ("created", 1)
        rerun = await second.claim("w2", now=113.0, lease_s=10.0)
        assert rerun is not None and (rerun.id, rerun.attempts) == ("a", 2)
        # w1 comes back from the dead: its writes are lost, w2's run stands.
        assert not (await first.heartbeat("a", "w1", lease_until=500.0, progress=0.5)).owned
        assert await first.finish("a", "w1", status="completed", now=114.0) is None
        # w2 dies too: the job has had its attempts and fails with the message; nothing is left running.
        (failed,) = await api.expire_leases(now=124.0, max_attempts=2, message=DIED)
        assert (failed.status, failed.error) == ("failed", DIED)
        items, total = await api.list_jobs("k_a", page=1, page_size=10)
        assert total == 1 and items[0].is_terminal
        assert await api.count_active("k_a") == 0

    async def test_the_active_limit_holds_across_stores(self, connect: OpenStore) -> None:
        stores = [connect() for _ in range(4)]

        async def submit(n: int, s: JobStore) -> bool:
            try:
                await s.create(job(f"c{n}", created_at=float(n)), active_limit=5)
            except ActiveLimitExceeded:
                return False
            return True

        accepted = await asyncio.gather(*(submit(n, stores[n % 4]) for n in range(12)))
        assert sum(accepted) == 5
        assert await stores[0].count_active("k_a") == 5

    async def test_a_duplicate_id_is_refused(self, store: JobStore) -> None:
        await store.create(job("a"))
        with pytest.raises(ValueError, match="duplicate"):
            await store.create(job("a", created_at=5.0))
        got = await store.get("a")
        assert got is not None and got.created_at == 100.0

    async def test_paging_past_the_end_is_empty(self, store: JobStore) -> None:
        await store.create(job("a"))
        items, total = await store.list_jobs("k_a", page=10**12, page_size=50)
        assert items == [] and total == 1
