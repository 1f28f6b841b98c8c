"""What ``modal_app.py``'s functions call: the API app, one GPU job, the scheduled sweep, the engine.

Each takes a :class:`~lipsync.server.modal_backends.handles.ModalBackends`, so the same code runs on Modal
(real Dict/Volume/FunctionCall) and in tests (fakes). Everything that needs an event loop creates its
objects inside that loop: a GPU method runs each job under its own ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from lipsync.server.app import create_app
from lipsync.server.backends import build_fetcher, build_links, build_signer, build_webhooks
from lipsync.server.engine_adapter import engine_factory_from_settings
from lipsync.server.execution import JobExecutor, Notifier
from lipsync.server.inputs import InputDeps
from lipsync.server.interfaces import Engine, Fetcher, RunnerContext, WebhookSender
from lipsync.server.modal_backends.dict_store import DictJobStore
from lipsync.server.modal_backends.handles import ModalBackends
from lipsync.server.modal_backends.runner import ModalRunner
from lipsync.server.modal_backends.volume_storage import VolumeStorage
from lipsync.server.resolver import InputResolver
from lipsync.server.worker import sweep_expired

__all__ = [
    "JobReport",
    "create_modal_api",
    "load_engine",
    "make_runner",
    "make_storage",
    "make_store",
    "run_job",
    "sweep",
]

log = logging.getLogger(__name__)


def _require_secret(backends: ModalBackends) -> None:
    if backends.settings.signing_secret is None:
        raise ValueError(
            "LIPSYNC_SIGNING_SECRET is not set: on Modal every container must sign and check URLs with the "
            "same secret, so put it in the Modal Secret (see docs/deploy-modal.md)"
        )


def make_store(backends: ModalBackends) -> DictJobStore:
    def drop_call(call_id: str) -> None:
        backends.lookup(call_id).cancel()

    return DictJobStore(backends.jobs, lock_ttl_s=backends.tuning.lock_ttl_s, on_cancel_queued=drop_call)


def make_storage(backends: ModalBackends) -> VolumeStorage:
    return VolumeStorage(backends.settings.media_dir, backends.volume)


def make_runner(
    backends: ModalBackends,
    store: DictJobStore,
    *,
    gpu_timeout_s: float | None = None,
    background: bool = True,
) -> ModalRunner:
    return ModalRunner(
        store,
        spawn=backends.spawn,
        lookup=backends.lookup,
        tuning=backends.tuning,
        gpu_timeout_s=gpu_timeout_s,
        reconcile_in_background=background,
    )


def _webhooks(backends: ModalBackends) -> WebhookSender:
    return backends.webhooks if backends.webhooks is not None else build_webhooks(backends.settings)


def _fetcher(backends: ModalBackends) -> Fetcher:
    return backends.fetcher if backends.fetcher is not None else build_fetcher(backends.settings)


def create_modal_api(backends: ModalBackends, *, gpu_timeout_s: float | None = None) -> FastAPI:
    """The server's app over the Modal backends (what the ``@modal.asgi_app`` function returns).

    Input resolution runs in this CPU container, before a GPU call is spawned (``resolver.py``)."""
    _require_secret(backends)
    settings = backends.settings
    store = make_store(backends)
    return create_app(
        settings,
        store=store,
        storage=make_storage(backends),
        runner=make_runner(backends, store, gpu_timeout_s=gpu_timeout_s),
        fetcher=_fetcher(backends),
        webhooks=_webhooks(backends),
        clock=backends.clock,
    )


def load_engine(backends: ModalBackends, device: str = "auto") -> Engine:
    """The engine, loaded now (the GPU class's ``@modal.enter`` hook: once per container)."""
    factory = backends.engine_factory or engine_factory_from_settings(backends.settings)
    return factory(device)


@dataclass(frozen=True)
class JobReport:
    """What one GPU call did (its return value; the job's state itself is in the store)."""

    job_id: str
    worker_id: str
    ran: bool
    status: str
    attempt: int = 0
    error: str = ""
    stuck: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "worker_id": self.worker_id,
            "ran": self.ran,
            "status": self.status,
            "attempt": self.attempt,
            "error": self.error,
            "stuck": self.stuck,
        }


def run_job(job_id: str, *, backends: ModalBackends, engine: Engine) -> JobReport:
    """Run the job this call was spawned for (the GPU class's ``@modal.method``). Blocking."""
    return asyncio.run(_run_job(job_id, backends, engine))


async def _run_job(job_id: str, backends: ModalBackends, engine: Engine) -> JobReport:
    _require_secret(backends)
    settings = backends.settings
    clock = backends.clock
    worker_id = backends.current_call() or f"local-{uuid.uuid4().hex[:12]}"
    store = make_store(backends)
    storage = make_storage(backends)
    job = await store.claim_job(job_id, worker_id, now=clock.now(), lease_s=settings.lease_s)
    if job is None:
        current = await store.get(job_id)
        status = current.status if current is not None else "missing"
        log.info("job %s not claimed by %s (it is %s)", job_id, worker_id, status)
        return JobReport(job_id, worker_id, ran=False, status=status)
    notifier = Notifier(_webhooks(backends), build_links(settings, storage, clock))
    stuck = False

    def on_stuck() -> None:
        nonlocal stuck
        stuck = True

    executor = JobExecutor(
        store=store,
        storage=storage,
        notifier=notifier,
        engine_factory=lambda: engine,
        clock=clock,
        lease_s=settings.lease_s,
        heartbeat_s=settings.heartbeat_s,
        job_timeout_s=settings.job_timeout_s,
        on_stuck=on_stuck,
    )
    log.info("worker %s: job %s (attempt %d)", worker_id, job_id, job.attempts)
    finished = await executor.execute(job, worker_id)
    await notifier.drain(timeout=settings.webhook_timeout_s)
    if finished is None:
        return JobReport(job_id, worker_id, ran=True, status="lease-lost", attempt=job.attempts, stuck=stuck)
    return JobReport(
        job_id,
        worker_id,
        ran=True,
        status=finished.status,
        attempt=finished.attempts,
        error=finished.error,
        stuck=stuck,
    )


def sweep(backends: ModalBackends, *, gpu_timeout_s: float | None = None) -> dict[str, int]:
    """One maintenance pass (the scheduled function): expired leases, ended calls, retention, and input
    resolutions an API container left unfinished (counted as re-queued or failed). Blocking."""
    return asyncio.run(_sweep(backends, gpu_timeout_s))


async def _sweep(backends: ModalBackends, gpu_timeout_s: float | None) -> dict[str, int]:
    _require_secret(backends)
    settings = backends.settings
    clock = backends.clock
    store = make_store(backends)
    storage = make_storage(backends)
    notifier = Notifier(_webhooks(backends), build_links(settings, storage, clock))
    runner = make_runner(backends, store, gpu_timeout_s=gpu_timeout_s, background=False)
    context = RunnerContext(store=store, storage=storage, notifier=notifier, clock=clock, settings=settings)
    await runner.start(context)
    resolver = InputResolver(
        InputDeps(
            settings=settings, storage=storage, fetcher=_fetcher(backends), signer=build_signer(settings)
        ),
        store=store,
        runner=runner,
        notifier=notifier,
        clock=clock,
    )
    try:
        requeued = await sweep_expired(context)
        for job in requeued:
            await runner.submit(job)
        if await resolver.recover():
            await resolver.drain(timeout=resolver.lease_s)
        failed = await runner.reconcile_once()
        purged = await store.purge(before=clock.now() - settings.retention_s)
        for job in purged:
            await storage.delete_prefix(f"inputs/{job.id}")
            await storage.delete_prefix(f"outputs/{job.id}")
        await notifier.drain(timeout=settings.webhook_timeout_s)
    finally:
        await resolver.stop()
        await runner.stop()
    return {
        "requeued": len(requeued) + resolver.queued,
        "failed": len(failed) + resolver.failed,
        "purged": len(purged),
    }
