"""``DictJobStore`` on a fake ``modal.Dict``: the server's JobStore semantics, plus what a shared Dict adds
(several containers at once, locks whose holder died, the FunctionCall bookkeeping)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from lipsync.server.interfaces import ActiveLimitExceeded, JobStore
from lipsync.server.modal_backends import DictJobStore, DictLock, StoreBusy
from lipsync.server.transitions import CANCELLED_MESSAGE
from tests.modal.fakes import FakeDict
from tests.server.store_suite import OpenStore, StoreSuite, job

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class TestDictStore(StoreSuite):
    """The store suite on the Dict backend: every store opened shares one Dict (one per container)."""

    @pytest.fixture
    def open_store(self) -> OpenStore:
        shared = FakeDict()
        return lambda: DictJobStore(shared, lock_ttl_s=2.0)


def test_the_dict_store_is_a_job_store() -> None:
    assert isinstance(DictJobStore(FakeDict()), JobStore)


async def test_containers_sharing_the_dict_respect_the_active_limit_together() -> None:
    """Eight "containers" (own store objects, own threads) submit 24 jobs against a limit of 5."""
    shared = FakeDict()
    accepted: list[str] = []
    refused: list[int] = []

    def container(n: int) -> None:
        store = DictJobStore(shared)
        for i in range(3):
            try:
                asyncio.run(store.create(job(f"c{n}-{i}", created_at=float(n * 10 + i)), active_limit=5))
                accepted.append(f"c{n}-{i}")
            except ActiveLimitExceeded as exc:
                refused.append(exc.active)

    threads = [threading.Thread(target=container, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(accepted) == 5 and len(refused) == 19 and set(refused) == {5}
    assert await DictJobStore(shared).count_active("k_a") == 5


async def test_a_cancel_racing_heartbeats_from_another_container_is_never_lost() -> None:
    """The API sets the flag while the GPU worker keeps renewing its lease: the flag must survive."""
    shared = FakeDict()
    api, worker = DictJobStore(shared), DictJobStore(shared)
    await api.create(job("a"))
    assert await worker.claim_job("a", "fc-1", now=101.0, lease_s=10.0) is not None
    stop = threading.Event()
    seen_cancel = threading.Event()

    def beat() -> None:
        store = DictJobStore(shared)
        n = 0
        while not stop.is_set():
            n += 1
            reply = asyncio.run(store.heartbeat("a", "fc-1", lease_until=200.0 + n, progress=n / 1000))
            if reply.cancel_requested:
                seen_cancel.set()

    beaters = [threading.Thread(target=beat) for _ in range(3)]
    for t in beaters:
        t.start()
    await asyncio.sleep(0.05)
    await api.cancel("a", now=150.0)
    assert await asyncio.to_thread(seen_cancel.wait, 10)
    stop.set()
    for t in beaters:
        t.join(10)
    final = await api.get("a")
    assert final is not None and final.cancel_requested and final.status == "processing"


async def test_a_lock_left_by_a_dead_holder_is_broken_after_its_ttl() -> None:
    shared = FakeDict()
    store = DictJobStore(shared, lock_ttl_s=30.0, lock_timeout_s=0.2)
    await store.create(job("a"))
    # A container died inside the critical section of job "a" a while ago: its lock entry stayed behind
    # and its expiry time has passed.
    shared.put("lock:a", ("dead-holder", time.time() - 1.0))
    cancelled = await store.cancel("a", now=105.0)
    assert cancelled is not None and cancelled.status == "failed"
    assert shared.get("lock:a") is None


async def test_a_live_lock_makes_writers_wait_then_give_up() -> None:
    shared = FakeDict()
    store = DictJobStore(shared, lock_ttl_s=30.0, lock_timeout_s=0.2)
    await store.create(job("a"))
    holder = DictLock(shared, "a", ttl_s=30.0, timeout_s=1.0)
    with holder, pytest.raises(StoreBusy):
        await store.cancel("a", now=105.0)
    assert (await store.cancel("a", now=106.0)) is not None  # released: it goes through


async def test_claim_job_takes_its_own_job_and_takes_it_back_after_a_restart() -> None:
    store = DictJobStore(FakeDict())
    await store.create(job("a"))
    first = await store.claim_job("a", "fc-1", now=101.0, lease_s=10.0)
    assert first is not None and (first.status, first.worker_id, first.attempts) == ("processing", "fc-1", 1)
    # Another call (e.g. a duplicate spawn) cannot take a job someone holds.
    assert await store.claim_job("a", "fc-2", now=102.0, lease_s=10.0) is None
    # Modal restarted fc-1 (preemption): the same worker id takes it back as its next attempt.
    again = await store.claim_job("a", "fc-1", now=130.0, lease_s=10.0)
    assert again is not None and (again.attempts, again.lease_until) == (2, 140.0)
    entry = await store.entry("a")
    assert entry is not None and entry.call_id == "fc-1"
    done = await store.finish("a", "fc-1", status="completed", now=131.0, outputs=["outputs/a/output.mp4"])
    assert done is not None and done.status == "completed"
    assert await store.claim_job("a", "fc-1", now=132.0, lease_s=10.0) is None  # ended: nothing to take


async def test_set_call_records_spawns_of_queued_jobs_only() -> None:
    store = DictJobStore(FakeDict())
    await store.create(job("a"))
    assert await store.set_call("a", "fc-1") and await store.set_call("a", "fc-2")
    entry = await store.entry("a")
    assert entry is not None and (entry.call_id, entry.spawns) == ("fc-2", 2)
    await store.claim_job("a", "fc-2", now=101.0, lease_s=10.0)
    assert not await store.set_call("a", "fc-3")
    assert [a.job.id for a in await store.active()] == ["a"]
    assert not await store.set_call("missing", "fc-4")


async def test_fail_for_call_is_a_compare_and_set_on_the_call() -> None:
    store = DictJobStore(FakeDict())
    await store.create(job("a"))
    await store.set_call("a", "fc-1")
    assert await store.fail_for_call("a", "fc-0", now=110.0, error="old call", code=5000) is None
    failed = await store.fail_for_call("a", "fc-1", now=110.0, error="it ended", code=5000)
    assert failed is not None and (failed.status, failed.error, failed.code) == ("failed", "it ended", 5000)
    assert await store.fail_for_call("a", "fc-1", now=111.0, error="again", code=5000) is None
    assert await store.active() == []


async def test_cancelling_a_queued_job_drops_its_call() -> None:
    dropped: list[str] = []
    store = DictJobStore(FakeDict(), on_cancel_queued=dropped.append)
    await store.create(job("a"))
    await store.create(job("b"))
    await store.set_call("a", "fc-a")
    cancelled = await store.cancel("a", now=105.0)
    assert cancelled is not None and (cancelled.status, cancelled.error) == ("failed", CANCELLED_MESSAGE)
    await store.claim_job("b", "fc-b", now=106.0, lease_s=10.0)
    await store.cancel("b", now=107.0)  # running: flagged, its call keeps going until the worker stops
    assert dropped == ["fc-a"]


async def test_the_active_index_forgets_finished_jobs() -> None:
    shared = FakeDict()
    store = DictJobStore(shared)
    for i in range(3):
        await store.create(job(f"j{i}", created_at=100.0 + i))
    await store.cancel("j0", now=110.0)
    await store.delete("k_a", ["j0"])
    assert [a.job.id for a in await store.active()] == ["j1", "j2"]
    assert shared.get("active:k_a") == ["j1", "j2"]
