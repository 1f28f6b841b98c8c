"""Leases and time limits with the in-process runner: no job stays processing forever."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from contracts import RunOptions
from lipsync.server.interfaces import JobRecord
from tests.server.conftest import AUDIO, VIDEO, Harness
from tests.server.fakes import FakeEngine


def test_a_job_whose_worker_vanished_is_requeued_and_run(harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(lease_s=0.4)
    owner = h.app.state.server.keyring.authenticate("test-key").owner
    inputs = h.submit({"enable_sync_mode": True}).json()["data"]  # a finished job: reuse its stored inputs
    stored = asyncio.run(h.store.get(inputs["id"]))
    assert stored is not None
    ghost = JobRecord(
        id="ghost-job",
        owner=owner,
        base_url="http://testserver",
        options=RunOptions(),
        inputs=stored.inputs,
        created_at=time.time(),
    )

    async def plant() -> None:  # a job claimed by a worker that then disappeared without a trace
        await h.store.create(ghost)
        claimed = await h.store.claim("vanished-worker", now=time.time(), lease_s=0.3)
        assert claimed is not None and claimed.id == "ghost-job"

    asyncio.run(plant())
    data = h.wait_status("ghost-job", {"completed", "failed"})
    assert data["status"] == "completed"
    final = asyncio.run(h.store.get("ghost-job"))
    assert final is not None and final.attempts == 2 and final.worker_id != "vanished-worker"


def test_a_job_running_past_the_time_limit_fails_with_5004(harness_factory: Callable[..., Harness]) -> None:
    gate = threading.Event()  # never opened: the engine would run forever, reporting progress
    h = harness_factory(FakeEngine(gate=gate), job_timeout_s=0.3)
    job_id = h.submit().json()["data"]["id"]
    data = h.wait_status(job_id, {"completed", "failed"})
    assert (data["status"], data["code"]) == ("failed", 5004)
    assert data["error"] == "timeout: the job ran longer than 0.3 s"
    gate.set()


def resolving_job(job_id: str, owner: str, *, attempts: int) -> JobRecord:
    """A job whose resolver stopped mid-resolution (its lease already ran out)."""
    return JobRecord(
        id=job_id,
        owner=owner,
        base_url="http://testserver",
        options=RunOptions(),
        inputs={},
        created_at=time.time(),
        status="resolving",
        worker_id="vanished-resolver",
        lease_until=time.time() - 1,
        attempts=attempts,
        sources={"video": VIDEO, "audio": AUDIO},
    )


def test_the_sweep_takes_over_an_abandoned_resolution(harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(lease_s=0.8)  # maintenance runs every 0.2 s
    owner = h.app.state.server.keyring.authenticate("test-key").owner
    asyncio.run(h.store.create(resolving_job("orphan", owner, attempts=1)))
    data = h.wait_status("orphan", {"completed", "failed"})
    assert data["status"] == "completed", data
    assert h.fetcher.calls == [VIDEO, AUDIO]
    # One interrupted too often (say, by input that crashes the server) is failed, not tried forever.
    asyncio.run(h.store.create(resolving_job("cursed", owner, attempts=2)))
    data = h.wait_status("cursed", {"completed", "failed"})
    assert (data["status"], data["code"]) == ("failed", 5000)
    assert data["error"].startswith("internal_error: resolving the inputs was interrupted 2 times")
    assert h.fetcher.calls == [VIDEO, AUDIO]
