"""Runners: the embedded process worker (``ProcessRunner``) and an in-process one (``InProcessRunner``).

``ProcessRunner`` starts one worker process per device (``LIPSYNC_DEVICES``). Each process opens the same
SQLite store, claims the oldest queued job, runs it with its engine (loaded once, on the first job; torch
is imported only there) and claims the next: one job at a time per device, the store being the queue. The
API process nudges idle workers through a shared event and supervises them: a worker that dies has its
lease released at once, so its job is retried (once, by default) or failed with a message, and a new
worker takes its place. A worker that hangs stops renewing its lease, and the lease sweeper does the same.

On SQLite, only one server may use a data directory at a time (a lock file enforces it), so at start-up
every job still marked ``processing`` belonged to a server that stopped; those are recovered the same way.
On a shared store (PostgreSQL) other machines' jobs run meanwhile: there, only expired leases are taken
back (by every API process's lease sweep). ``run_workers`` runs the workers without an API
(``lipsync worker``, for GPU machines).

``InProcessRunner`` runs jobs as tasks of the API's own event loop (engine calls in a thread). It serves
tests (fake engines, in-memory store) and single-process deployments where the engine lives in the API
process anyway (e.g. a Modal GPU container).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import IO, Any

from lipsync.server.engine_adapter import engine_factory_from_settings
from lipsync.server.execution import JobExecutor, Notifier
from lipsync.server.interfaces import Clock, Engine, JobRecord, JobStore, RunnerContext, SystemClock
from lipsync.server.settings import ServerSettings

__all__ = [
    "EngineFactory",
    "InProcessRunner",
    "ProcessRunner",
    "recover_interrupted",
    "run_workers",
    "sweep_expired",
    "work_loop",
]

log = logging.getLogger(__name__)

#: How often an idle process worker looks for queued jobs (the start latency of a job on an idle server).
IDLE_POLL_S = 0.1

DIED_MESSAGE = "internal_error: the worker running this job stopped unexpectedly ({detail}); it was retried and failed again"


EngineFactory = Callable[[str], Engine]


async def work_loop(
    executor: JobExecutor,
    store: JobStore,
    worker_id: str,
    *,
    clock: Clock,
    lease_s: float,
    wait: Callable[[], Awaitable[None]],
    should_stop: Callable[[], bool],
) -> None:
    """Claim and execute jobs until *should_stop*; *wait* blocks (bounded) until there may be work."""
    while not should_stop():
        job = await store.claim(worker_id, now=clock.now(), lease_s=lease_s)
        if job is None:
            await wait()
            continue
        await executor.execute(job, worker_id)


async def sweep_expired(
    context: RunnerContext,
    *,
    now: float | None = None,
    detail: str = "lease expired",
    worker_id: str | None = None,
) -> list[JobRecord]:
    """Re-queue or fail jobs whose lease ran out (with *worker_id*: that dead worker's jobs); send webhooks
    for those that failed. Returns the re-queued. (Resolving jobs whose resolver's lease ran out are
    released too; the API's resolver takes them over, see ``resolver.py``.)"""
    changed = await context.store.expire_leases(
        now=context.clock.now() if now is None else now,
        max_attempts=context.settings.max_attempts,
        message=DIED_MESSAGE.format(detail=detail),
        worker_id=worker_id,
    )
    requeued: list[JobRecord] = []
    for job in changed:
        if job.is_terminal:
            log.warning("job %s failed: %s", job.id, job.error)
            await context.notifier.job_finished(job)
        elif job.status == "resolving":
            log.warning("job %s: the resolution of its inputs was interrupted; it will be taken over", job.id)
        else:
            log.warning("job %s re-queued after its worker stopped (%s)", job.id, detail)
            requeued.append(job)
    return requeued


async def recover_interrupted(context: RunnerContext) -> int:
    """At start-up (data dir locked, no workers yet) every ``processing`` job was interrupted: recover all.
    Resolving jobs were interrupted too: they are released for the API's resolver."""
    return len(await sweep_expired(context, now=float("inf"), detail="the server stopped while it ran"))


class InProcessRunner:
    """Runs jobs on this event loop, *concurrency* at a time, with engines from *engine_factory*."""

    def __init__(self, engine_factory: EngineFactory, *, device: str = "cpu", concurrency: int = 1) -> None:
        self._engine_factory = engine_factory
        self.device = device
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._executors: list[JobExecutor] = []

    async def start(self, context: RunnerContext) -> None:
        settings = context.settings
        notifier = context.notifier
        for n in range(self.concurrency):
            executor = JobExecutor(
                store=context.store,
                storage=context.storage,
                notifier=notifier,
                engine_factory=lambda: self._engine_factory(self.device),
                clock=context.clock,
                lease_s=settings.lease_s,
                heartbeat_s=settings.heartbeat_s,
                job_timeout_s=settings.job_timeout_s,
            )
            self._executors.append(executor)
            worker_id = f"inproc-{uuid.uuid4().hex[:8]}-{n}"
            loop = work_loop(
                executor,
                context.store,
                worker_id,
                clock=context.clock,
                lease_s=settings.lease_s,
                wait=self._wait,
                should_stop=lambda: self._stopping,
            )
            self._tasks.append(asyncio.create_task(loop, name=worker_id))

    async def _wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await self._wake.wait()
        self._wake.clear()

    async def submit(self, job: Any) -> None:
        self._wake.set()

    async def cancel(self, job_id: str) -> None:
        for executor in self._executors:
            executor.request_cancel(job_id)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def describe(self) -> dict[str, Any]:
        alive = sum(1 for t in self._tasks if not t.done())
        return {"runner": "in-process", "workers": self.concurrency, "alive": alive}


# ---- the process runner ---------------------------------------------------------------------------------


def _child_main(
    settings: ServerSettings,
    device: str,
    worker_id: str,
    engine_factory: EngineFactory,
    log_level: int = logging.INFO,
) -> None:
    """Entry point of a worker process; *log_level*: the server's ``lipsync`` log level (``--log-level``)."""
    # Own process group: a Ctrl-C or a signal sent to the server's group reaches only the server, which
    # then stops its workers itself (otherwise its supervisor would see them die and start new ones).
    os.setpgrp()
    _exit_with_parent(os.getppid())
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s worker[{worker_id}] %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("lipsync").setLevel(log_level)
    asyncio.run(_child(settings, device, worker_id, engine_factory))


def _exit_with_parent(parent_pid: int) -> None:
    """Exit at once if the server process dies (even by SIGKILL): an orphan must not keep claiming jobs.
    A job it was running stays ``processing`` and is recovered by the next server."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


async def _child(
    settings: ServerSettings, device: str, worker_id: str, engine_factory: EngineFactory
) -> None:
    from lipsync.server.backends import build_links, build_storage, build_store, build_webhooks

    clock = SystemClock()
    store = build_store(settings)
    storage = build_storage(settings)
    notifier = Notifier(build_webhooks(settings), build_links(settings, storage, clock))
    stopping = asyncio.Event()  # SIGTERM from the server: finish the current job, then exit
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    exit_after_job = False

    def stuck() -> None:
        nonlocal exit_after_job
        exit_after_job = True

    scratch = settings.data_dir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    executor = JobExecutor(
        store=store,
        storage=storage,
        notifier=notifier,
        engine_factory=lambda: engine_factory(device),
        clock=clock,
        lease_s=settings.lease_s,
        heartbeat_s=settings.heartbeat_s,
        job_timeout_s=settings.job_timeout_s,
        scratch_dir=scratch,
        on_stuck=stuck,
    )
    await executor.preload()

    async def wait() -> None:
        # The queue is the database: look for work with a cheap indexed read (no write lock) every
        # IDLE_POLL_S; claiming is the only write an idle worker makes.
        while not stopping.is_set() and not await store.has_queued():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_POLL_S):
                    await stopping.wait()

    try:
        await work_loop(
            executor,
            store,
            worker_id,
            clock=clock,
            lease_s=settings.lease_s,
            wait=wait,
            should_stop=lambda: stopping.is_set() or exit_after_job,
        )
        await notifier.drain(timeout=settings.webhook_timeout_s)
    finally:
        await store.close()


class ProcessRunner:
    """One worker process per device in ``settings.devices``, supervised from the API process.

    Workers find queued jobs themselves by polling the database (``IDLE_POLL_S``), so ``submit`` needs no
    inter-process signal, and nothing is lost if the server restarts between the insert and a nudge.
    """

    def __init__(self, settings: ServerSettings, engine_factory: EngineFactory | None = None) -> None:
        self.settings = settings
        self.engine_factory = engine_factory or engine_factory_from_settings(settings)
        self._mp = multiprocessing.get_context("spawn")  # fork + threads/CUDA is unsafe
        self._procs: dict[str, tuple[str, Any]] = {}  # worker_id -> (device, process)
        self._supervisor: asyncio.Task[None] | None = None
        self._context: RunnerContext | None = None
        self._lock_file: IO[str] | None = None
        self._stopping = False
        self.restarts = 0

    def _lock_data_dir(self) -> None:
        path = self.settings.data_dir / "server.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+")  # noqa: SIM115 - held open for the runner's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise RuntimeError(f"another lipsync server is using {self.settings.data_dir}") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_file = fh

    def _spawn(self, device: str) -> None:
        worker_id = f"{device}-{uuid.uuid4().hex[:8]}"
        proc = self._mp.Process(
            target=_child_main,
            # A spawned child starts with fresh logging: it follows the level the server set (``--log-level``),
            # INFO when none was set.
            args=(
                self.settings,
                device,
                worker_id,
                self.engine_factory,
                logging.getLogger("lipsync").level or logging.INFO,
            ),
            name=f"lipsync-worker-{worker_id}",
            daemon=True,
        )
        proc.start()
        self._procs[worker_id] = (device, proc)
        log.info("started worker %s (pid %s)", worker_id, proc.pid)

    async def start(self, context: RunnerContext) -> None:
        self._context = context
        if not self.settings.shared_store:
            # Alone on this store: whatever is still running was interrupted by the last shutdown. A shared
            # store (PostgreSQL) has other machines' jobs running: only their expired leases are taken back.
            self._lock_data_dir()
            recovered = await recover_interrupted(context)
            if recovered:
                log.warning("re-queued %d job(s) interrupted by the last shutdown", recovered)
        for device in self.settings.devices:
            self._spawn(device)
        self._supervisor = asyncio.create_task(self._supervise(), name="worker-supervisor")

    async def _supervise(self) -> None:
        assert self._context is not None
        backoff = 0.0
        while not self._stopping:
            await asyncio.sleep(0.2)
            for worker_id, (device, proc) in list(self._procs.items()):
                if proc.is_alive() or self._stopping:
                    continue
                proc.join()
                del self._procs[worker_id]
                code = proc.exitcode
                # Its jobs are retried or failed in one step that names the exit code (a separate
                # release would let the lease sweep fail them first, as "lease expired").
                requeued = await sweep_expired(
                    self._context, detail=f"worker process exited with code {code}", worker_id=worker_id
                )
                if code != 0 or requeued:
                    log.error("worker %s exited with code %s", worker_id, code)
                # A worker that keeps dying (e.g. its engine cannot load) is restarted ever more slowly.
                backoff = min(30.0, backoff * 2 or 0.5) if code != 0 else 0.0
                if backoff:
                    await asyncio.sleep(backoff)
                if self._stopping:
                    return
                self.restarts += 1
                self._spawn(device)

    async def submit(self, job: Any) -> None:
        """Nothing to do: idle workers poll the database for queued jobs."""

    async def cancel(self, job_id: str) -> None:
        """Nothing to do: a running job's worker sees the store's cancel flag on its next heartbeat."""

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for _device, proc in self._procs.values():
            if proc.is_alive():
                proc.terminate()  # SIGTERM: an idle worker exits now, a busy one after its job
        for _device, proc in self._procs.values():
            await asyncio.to_thread(proc.join, self.settings.shutdown_grace_s)
            if proc.is_alive():
                proc.kill()
                await asyncio.to_thread(proc.join)
        self._procs.clear()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def pids(self) -> dict[str, int | None]:
        return {worker_id: proc.pid for worker_id, (_d, proc) in self._procs.items()}

    def describe(self) -> dict[str, Any]:
        return {
            "runner": "process",
            "devices": list(self.settings.devices),
            "alive": sum(1 for _d, p in self._procs.values() if p.is_alive()),
            "restarts_total": self.restarts,
        }


async def run_workers(settings: ServerSettings, *, stop: asyncio.Event) -> None:
    """The worker processes of ``settings.devices`` without an API (``lipsync worker``), until *stop*.

    They claim jobs from the store of ``LIPSYNC_STORE_URL`` that the API processes fill, read inputs from
    and write outputs to the storage they share (S3, or one directory), and send the webhooks.
    """
    from lipsync.server.backends import build_links, build_storage, build_store, build_webhooks

    clock = SystemClock()
    store = build_store(settings)
    storage = build_storage(settings)
    notifier = Notifier(build_webhooks(settings), build_links(settings, storage, clock))
    runner = ProcessRunner(settings)
    await runner.start(RunnerContext(store, storage, notifier, clock, settings))
    try:
        await stop.wait()
    finally:
        await runner.stop()
        await notifier.drain(timeout=settings.webhook_timeout_s)
        await store.close()
