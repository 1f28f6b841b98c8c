"""Failure, retry and cancellation on Modal map onto the same job states as locally.

Each test drives the real backends (``DictJobStore``, ``VolumeStorage``, ``ModalRunner``, ``run_job``) over
the fake Dict/Volume/FunctionCall of ``conftest.FakeDeployment``; only Modal itself is simulated.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from modal.exception import FunctionTimeoutError

from contracts import RunOptions, TaskErrorCode
from lipsync.errors import WeightsError
from lipsync.server.backends import build_links
from lipsync.server.execution import Notifier
from lipsync.server.interfaces import JobRecord, RunnerContext
from lipsync.server.modal_backends import (
    DictJobStore,
    ModalRunner,
    make_runner,
    make_storage,
    make_store,
    run_job,
    sweep,
)
from lipsync.server.transitions import CANCELLED_MESSAGE
from lipsync.server.worker import sweep_expired
from tests.modal.conftest import FakeDeployment
from tests.modal.fakes import Preempted
from tests.server.fakes import FakeEngine

pytestmark = pytest.mark.anyio

HOOK = "https://hooks.example/done"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Api:
    """The API container's side: its store, runner and runner context (as ``create_app`` wires them)."""

    store: DictJobStore
    runner: ModalRunner
    context: RunnerContext


@pytest.fixture
async def api(deployment: FakeDeployment) -> AsyncIterator[Api]:
    backends = deployment.api
    store = make_store(backends)
    storage = make_storage(backends)
    runner = make_runner(backends, store, gpu_timeout_s=3900, background=False)
    notifier = Notifier(deployment.webhooks, build_links(backends.settings, storage, backends.clock))
    context = RunnerContext(store, storage, notifier, backends.clock, backends.settings)
    await runner.start(context)
    yield Api(store, runner, context)
    await runner.stop()
    await notifier.drain(timeout=5)


async def submit(
    deployment: FakeDeployment, api: Api, job_id: str = "j1", *, webhook: str | None = None
) -> JobRecord:
    """What the submit route does: inputs into storage (committed), the job into the store, a nudge."""
    storage = api.context.storage
    await storage.put_bytes(f"inputs/{job_id}/video.mp4", b"video")
    await storage.put_bytes(f"inputs/{job_id}/audio.wav", b"audio")
    job = JobRecord(
        id=job_id,
        owner="k_a",
        base_url="http://api.test",
        options=RunOptions(seed=1),
        inputs={"video": f"inputs/{job_id}/video.mp4", "audio": f"inputs/{job_id}/audio.wav"},
        created_at=api.context.clock.now(),
        webhook=webhook,
    )
    await api.store.create(job)
    await api.runner.submit(job)
    return job


async def settled(api: Api, job_id: str) -> JobRecord:
    """The job once it is terminal (bounded wait: the fake GPU call runs in a thread)."""
    async with asyncio.timeout(20):
        while True:
            job = await api.store.get(job_id)
            assert job is not None
            if job.is_terminal:
                return job
            await asyncio.sleep(0.01)


async def test_a_job_runs_in_a_spawned_call_and_its_output_is_committed_first(
    deployment: FakeDeployment, api: Api
) -> None:
    await submit(deployment, api, webhook=HOOK)
    job = await settled(api, "j1")
    assert (job.status, job.outputs, job.attempts) == ("completed", ["outputs/j1/output.mp4"], 1)
    (call_id,) = deployment.function.calls
    assert job.worker_id == call_id  # the worker id is its FunctionCall id
    # The API container never wrote the output: it sees the GPU container's commit after a reload.
    assert (await api.context.storage.size("outputs/j1/output.mp4") or 0) > 0
    assert deployment.function.lookup(call_id).get(timeout=5)["status"] == "completed"
    await api.context.notifier.drain(timeout=5)  # type: ignore[attr-defined]
    assert [c["url"] for c in deployment.webhooks.sent] == [HOOK]  # sent by the GPU container


async def test_a_preempted_container_is_restarted_on_the_same_call_and_takes_its_job_back(
    deployment: FakeDeployment, api: Api
) -> None:
    class DiesOnce(FakeEngine):
        died = False

        def run(self, *args: Any, **kwargs: Any) -> None:
            if not DiesOnce.died:
                DiesOnce.died = True
                raise Preempted  # the container goes away mid-job (no outcome recorded)
            super().run(*args, **kwargs)

    deployment.engine = DiesOnce()
    await submit(deployment, api)
    job = await settled(api, "j1")
    (call,) = deployment.function.calls.values()
    assert (job.status, job.attempts, call.attempts) == ("completed", 2, 2)
    assert len(deployment.function.spawned) == 1 and job.worker_id == call.object_id


async def test_a_lease_that_lapses_while_modal_restarts_the_call_does_not_spawn_a_second_one(
    deployment: FakeDeployment, api: Api
) -> None:
    restarted = threading.Event()
    proceed = threading.Event()
    attempts: list[int] = []

    def target(job_id: str) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            deployment.engine = DiesEngine()
        else:
            restarted.set()
            assert proceed.wait(10)  # a slow cold start: the API's lease sweep runs meanwhile
            deployment.engine = FakeEngine()
        return deployment.run_gpu_job(job_id)

    class DiesEngine(FakeEngine):
        def run(self, *args: Any, **kwargs: Any) -> None:
            raise Preempted

    deployment.use_target(target)
    await submit(deployment, api)
    assert await asyncio.to_thread(restarted.wait, 10)
    running = await api.store.get("j1")
    assert running is not None and running.status == "processing"
    # The lease lapses: the sweep re-queues the job and nudges the runner, which sees the call still going.
    requeued = await sweep_expired(api.context, now=float(running.lease_until or 0) + 1)
    assert [j.id for j in requeued] == ["j1"] and requeued[0].status == "created"
    for job in requeued:
        await api.runner.submit(job)
    assert len(deployment.function.spawned) == 1
    proceed.set()
    job = await settled(api, "j1")
    assert (job.status, job.attempts) == ("completed", 2)


async def test_an_expired_result_is_reported_not_hidden(deployment: FakeDeployment, api: Api) -> None:
    def claims_then_vanishes(job_id: str) -> None:
        # A worker that took the job and ended without recording anything (e.g. the Dict write was lost).
        store = make_store(deployment.gpu_backends())
        asyncio.run(store.claim_job(job_id, deployment.function.current_call() or "", now=1e12, lease_s=3600))

    deployment.use_target(claims_then_vanishes)
    await submit(deployment, api, webhook=HOOK)
    (call,) = deployment.function.calls.values()
    assert await asyncio.to_thread(call.done.wait, 10)
    call.expire()
    (failed,) = await api.runner.reconcile_once()
    assert (
        failed.id == "j1" and failed.status == "failed" and failed.code == int(TaskErrorCode.INTERNAL_ERROR)
    )
    assert "expired" in failed.error and call.object_id in failed.error
    assert "HTTP 5" not in failed.error
    stored = await api.store.get("j1")
    assert stored is not None and stored.status == "failed"
    await api.context.notifier.drain(timeout=5)  # type: ignore[attr-defined]
    assert [c["url"] for c in deployment.webhooks.sent] == [HOOK]


async def test_modals_timeout_fails_the_job_with_the_timeout_code(
    deployment: FakeDeployment, api: Api
) -> None:
    def times_out(job_id: str) -> None:
        store = make_store(deployment.gpu_backends())
        asyncio.run(store.claim_job(job_id, deployment.function.current_call() or "", now=1e12, lease_s=3600))
        raise FunctionTimeoutError("Function exceeded its timeout of 3900 seconds")

    deployment.use_target(times_out)
    await submit(deployment, api)
    (call,) = deployment.function.calls.values()
    assert await asyncio.to_thread(call.done.wait, 10)
    (failed,) = await api.runner.reconcile_once()
    assert (failed.status, failed.code) == ("failed", int(TaskErrorCode.TIMEOUT))
    assert failed.error.startswith("timeout:") and "3900" in failed.error


async def test_a_call_that_is_still_running_is_left_alone(deployment: FakeDeployment, api: Api) -> None:
    deployment.use_target(deployment.run_gpu_job, autostart=False)  # queued: no container yet
    await submit(deployment, api)
    assert await api.runner.reconcile_once() == []
    job = await api.store.get("j1")
    assert job is not None and job.status == "created"
    deployment.function.hold.set()
    assert (await settled(api, "j1")).status == "completed"


async def test_a_worker_that_cannot_start_fails_the_job_after_modals_retries(
    deployment: FakeDeployment, api: Api
) -> None:
    def no_weights(job_id: str) -> None:
        raise WeightsError("missing /weights/latentsync-1.6/latentsync_unet.pt: run download_weights")

    deployment.use_target(no_weights, retries=2)
    await submit(deployment, api)
    (call,) = deployment.function.calls.values()
    assert await asyncio.to_thread(call.done.wait, 10)
    (failed,) = await api.runner.reconcile_once()
    assert call.attempts == 3  # Modal's retries
    assert len(deployment.function.spawned) == 1  # no more GPUs started for a broken deployment
    assert failed.status == "failed" and "WeightsError" in failed.error and "download_weights" in failed.error


async def test_a_failed_spawn_is_retried_by_the_reconciler(deployment: FakeDeployment, api: Api) -> None:
    deployment.function.fail_spawns = 1
    await submit(deployment, api)
    entry = await api.store.entry("j1")
    assert entry is not None and entry.call_id is None and deployment.function.spawned == []
    await asyncio.sleep(deployment.tuning.reconcile_s)
    await api.runner.reconcile_once()
    assert len(deployment.function.spawned) == 1
    assert (await settled(api, "j1")).status == "completed"


async def test_cancelling_a_queued_job_cancels_its_call(deployment: FakeDeployment, api: Api) -> None:
    deployment.use_target(deployment.run_gpu_job, autostart=False)
    await submit(deployment, api)
    cancelled = await api.store.cancel("j1", now=api.context.clock.now())
    assert cancelled is not None and (cancelled.status, cancelled.code) == ("failed", 1405)
    (call,) = deployment.function.calls.values()
    assert call.cancelled and not call.started.is_set()


async def test_a_running_job_stops_at_its_cancel_flag(deployment: FakeDeployment, api: Api) -> None:
    gate = threading.Event()
    deployment.engine = FakeEngine(gate=gate)  # calls progress while it waits, as the pipeline does
    await submit(deployment, api)
    assert await asyncio.to_thread(deployment.engine.started.wait, 10)  # type: ignore[attr-defined]
    await api.store.cancel("j1", now=api.context.clock.now())
    await api.runner.cancel("j1")
    job = await settled(api, "j1")
    gate.set()
    assert (job.status, job.code, job.error) == ("failed", 1405, CANCELLED_MESSAGE)
    (call,) = deployment.function.calls.values()
    assert not call.cancelled  # the worker stopped by itself; no need to kill the call


async def test_a_job_that_ignores_its_cancel_flag_has_its_call_cancelled(
    deployment: FakeDeployment, api: Api
) -> None:
    release = threading.Event()

    class Deaf(FakeEngine):
        def run(self, *args: Any, **kwargs: Any) -> None:
            self.started.set()
            release.wait(20)  # never calls progress: cannot see the flag

    deployment.engine = Deaf()
    await submit(deployment, api)
    assert await asyncio.to_thread(deployment.engine.started.wait, 10)  # type: ignore[attr-defined]
    await api.store.cancel("j1", now=api.context.clock.now())
    await api.runner.cancel("j1")
    (call,) = deployment.function.calls.values()
    async with asyncio.timeout(10):
        while not call.cancelled:  # after cancel_grace_s
            await asyncio.sleep(0.02)
    (failed,) = await api.runner.reconcile_once()
    release.set()
    assert (failed.status, failed.code, failed.error) == ("failed", 1405, CANCELLED_MESSAGE)


async def test_the_scheduled_sweep_reconciles_without_an_api_container(
    deployment: FakeDeployment, api: Api
) -> None:
    def claims_then_vanishes(job_id: str) -> None:
        store = make_store(deployment.gpu_backends())
        asyncio.run(store.claim_job(job_id, deployment.function.current_call() or "", now=1e12, lease_s=3600))

    deployment.use_target(claims_then_vanishes)
    await submit(deployment, api)
    (call,) = deployment.function.calls.values()
    assert await asyncio.to_thread(call.done.wait, 10)
    call.expire()
    counts = await asyncio.to_thread(sweep, deployment.gpu_backends(), gpu_timeout_s=3900)
    assert counts == {"requeued": 0, "failed": 1, "purged": 0}
    job = await api.store.get("j1")
    assert job is not None and job.status == "failed" and "expired" in job.error


def test_run_job_on_a_job_that_ended_does_nothing(deployment: FakeDeployment, tmp_path: Path) -> None:
    """A duplicate or late call finds its job terminal and returns at once (no engine work)."""
    store = make_store(deployment.api)
    engine = FakeEngine()
    asyncio.run(
        store.create(
            JobRecord(
                id="j9", owner="k", base_url="http://x", options=RunOptions(), inputs={}, created_at=1.0
            )
        )
    )
    asyncio.run(store.cancel("j9", now=2.0))
    report = run_job("j9", backends=deployment.gpu_backends(), engine=engine)
    assert (report.ran, report.status) == (False, "failed") and engine.calls == []
