"""Resolving accepted jobs' inputs in the background of the API process, then handing them to the runner.

Submit answers at once; the job is stored ``resolving`` (clients see ``created``), held by this process's
resolver under a lease, as a worker holds a running job. A task here downloads/decodes and checks its
inputs (``inputs.resolve_inputs``), then, in one compare-and-set, either queues the job (``created``: the
runner may claim it) or fails it with the input's code (1401/1402) and a message naming the field. This
runs in the API process on purpose: on Modal, GPU seconds are money, and a GPU call should only start for
a job whose inputs are ready.

Durability: a resolution interrupted by a stopped server leaves the job ``resolving`` with its sources
(URLs, or ``data:`` URIs kept in storage), never lost. At start-up ``ProcessRunner`` (which holds the data
directory's lock, so no other process can be resolving) releases every such job; otherwise a job is
released once its resolver's lease ran out (the maintenance sweep, ``expire_leases``). ``recover`` takes
released jobs over (``JobStore.claim_resolution``, attempts + 1); one interrupted more than
``max_attempts`` times (say, input that crashes the server) is failed instead of being tried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from contracts import TaskErrorCode
from lipsync.server.execution import safe_error_text
from lipsync.server.inputs import InputDeps, InputProblem, resolve_inputs, source_prefix
from lipsync.server.interfaces import Clock, JobNotifier, JobRecord, JobStore, Runner

__all__ = ["InputResolver"]

log = logging.getLogger(__name__)

#: Lease margin beyond the worst case of one resolution (two inputs in turn, each capped).
_LEASE_MARGIN_S = 30.0
#: Jobs taken over per recovery pass (the rest wait for the next pass).
_RECOVER_BATCH = 64


class InputResolver:
    """Background resolution of jobs' inputs (see the module docstring). One per API process."""

    def __init__(
        self,
        deps: InputDeps,
        *,
        store: JobStore,
        runner: Runner,
        notifier: JobNotifier,
        clock: Clock,
        resolver_id: str | None = None,
    ) -> None:
        self.deps = deps
        self.store = store
        self.runner = runner
        self.notifier = notifier
        self.clock = clock
        self.id = resolver_id or f"resolver-{uuid.uuid4().hex[:12]}"
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self.queued = 0  # jobs this resolver queued / failed (health, the Modal sweep's report)
        self.failed = 0

    @property
    def lease_s(self) -> float:
        return 2 * self.deps.settings.resolve_timeout_s + _LEASE_MARGIN_S

    def hold(self, job: JobRecord) -> JobRecord:
        """Mark a new job as ``resolving`` and held by this resolver (before ``JobStore.create``)."""
        job.status = "resolving"
        job.worker_id = self.id
        job.lease_until = self.clock.now() + self.lease_s
        job.attempts = 1
        return job

    def start(self, job: JobRecord) -> None:
        """Resolve *job* (held by this resolver) in the background."""
        if job.id in self._tasks or self._stopping:
            return
        task = asyncio.create_task(self._resolve(job), name=f"resolve-{job.id}")
        self._tasks[job.id] = task

    async def recover(self) -> int:
        """Take over resolving jobs nobody holds (interrupted elsewhere, or here before a restart)."""
        taken = 0
        while taken < _RECOVER_BATCH and not self._stopping:
            job = await self.store.claim_resolution(self.id, now=self.clock.now(), lease_s=self.lease_s)
            if job is None:
                break
            log.warning("job %s: resolving its inputs again (attempt %d)", job.id, job.attempts)
            self.start(job)
            taken += 1
        return taken

    def cancel(self, job_id: str) -> None:
        """Stop resolving *job_id* (it was cancelled or deleted)."""
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for the resolutions in flight."""
        if self._tasks:
            await asyncio.wait(set(self._tasks.values()), timeout=timeout)

    async def stop(self) -> None:
        """Abandon resolutions in flight: their jobs stay ``resolving`` and are taken over later."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def describe(self) -> dict[str, int]:
        return {"resolving": len(self._tasks), "queued_total": self.queued, "failed_total": self.failed}

    # ---- one job -------------------------------------------------------------------------------------

    async def _resolve(self, job: JobRecord) -> None:
        try:
            await self._outcome(job)
        except asyncio.CancelledError:
            if not self._stopping:  # cancelled or deleted by a client: drop what was stored
                await self._cleanup_if_ended(job.id)
            raise
        except Exception:  # the store or storage failed: the lease runs out and another pass retries
            log.exception("job %s: resolving its inputs failed unexpectedly", job.id)
        finally:
            self._tasks.pop(job.id, None)

    async def _outcome(self, job: JobRecord) -> None:
        settings = self.deps.settings
        if job.attempts > settings.max_attempts:
            error = (
                f"internal_error: resolving the inputs was interrupted {job.attempts - 1} times "
                "(the server stopped while it ran)"
            )
            await self._fail(job, error, int(TaskErrorCode.INTERNAL_ERROR))
            return
        try:
            inputs, took_ms = await resolve_inputs(self.deps, job)
        except InputProblem as problem:
            log.info("job %s failed: %s", job.id, problem.error)
            await self._fail(job, safe_error_text(problem.error), problem.code)
            return
        except Exception as exc:
            log.exception("job %s: unexpected failure while resolving its inputs", job.id)
            error = safe_error_text(f"internal_error: {type(exc).__name__}: {exc}")
            await self._fail(job, error, int(TaskErrorCode.INTERNAL_ERROR))
            return
        queued = await self.store.finish_resolution(
            job.id, self.id, now=self.clock.now(), inputs=inputs, timings={"download": took_ms}
        )
        if queued is None:  # cancelled, deleted or taken over meanwhile
            await self._cleanup_if_ended(job.id)
            return
        self.queued += 1
        await self.deps.storage.delete_prefix(source_prefix(job.id))
        await self.runner.submit(queued)

    async def _fail(self, job: JobRecord, error: str, code: int) -> None:
        failed = await self.store.finish_resolution(
            job.id, self.id, now=self.clock.now(), inputs=None, error=error, code=code
        )
        if failed is None:
            await self._cleanup_if_ended(job.id)
            return
        self.failed += 1
        await self.deps.storage.delete_prefix(f"inputs/{job.id}")
        await self.notifier.job_finished(failed)

    async def _cleanup_if_ended(self, job_id: str) -> None:
        """Remove a job's inputs unless someone else now holds it (they may be writing the same keys)."""
        current = await self.store.get(job_id)
        if current is None or current.is_terminal:
            await self.deps.storage.delete_prefix(f"inputs/{job_id}")
