"""``Runner`` on Modal: one spawned GPU FunctionCall per job, and a reconciler that watches those calls.

The store stays the queue and the source of truth, as locally. ``submit`` spawns the GPU class's job method
for the job and records the FunctionCall id; the call claims its job (``DictJobStore.claim_job``), runs it
with the server's ``JobExecutor`` (heartbeats, progress, cancel flag, the job timeout) and records the
outcome itself. Failure paths map onto the local job states:

- a preempted or crashed GPU container: Modal restarts the same FunctionCall (``modal.Retries``), which
  takes its job back (same worker id), attempts + 1;
- a worker that stops heart-beating: the lease sweep re-queues the job (or fails it after
  ``max_attempts``) and ``submit`` spawns a new call, unless the old one is still queued or retrying;
- a call that ended without recording an outcome (Modal's timeout, retries exhausted, a container that
  never started, an expired result): the reconciler fails the job with a message saying which
  (``calls.CallOutcome.job_error``) — an expired result is reported, never hidden;
- cancel: a queued job fails at once (1405) and its call is cancelled; a running job's worker sees the
  flag at its next heartbeat and stops; one that does not stop within ``cancel_grace_s`` has its call
  cancelled, and the job ends cancelled (1405) when the reconciler or the lease sweep sees that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from contracts import TaskErrorCode
from lipsync.server.interfaces import JobRecord, RunnerContext
from lipsync.server.modal_backends.calls import CallOutcome, lookup_outcome
from lipsync.server.modal_backends.dict_store import ActiveJob, DictJobStore
from lipsync.server.modal_backends.handles import CallLookup, ModalTuning, Spawner, in_thread
from lipsync.server.transitions import CANCELLED_MESSAGE

__all__ = ["ModalRunner"]

log = logging.getLogger(__name__)


class ModalRunner:
    """Spawns one GPU call per job and reconciles calls with jobs (see the module docstring)."""

    def __init__(
        self,
        store: DictJobStore,
        *,
        spawn: Spawner,
        lookup: CallLookup,
        tuning: ModalTuning | None = None,
        gpu_timeout_s: float | None = None,
        reconcile_in_background: bool = True,
    ) -> None:
        self.store = store
        self.spawn = spawn
        self.lookup = lookup
        self.tuning = tuning or ModalTuning()
        self.gpu_timeout_s = gpu_timeout_s
        self.reconcile_in_background = reconcile_in_background
        self._context: RunnerContext | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._escalations: set[asyncio.Task[None]] = set()
        self.reconciled = 0
        self.spawned = 0
        self.last_reconcile: float | None = None

    @property
    def context(self) -> RunnerContext:
        if self._context is None:
            raise RuntimeError("the runner has not been started")
        return self._context

    # ---- Runner -----------------------------------------------------------------------------------------

    async def start(self, context: RunnerContext) -> None:
        self._context = context
        if self.reconcile_in_background:
            self._loop_task = asyncio.create_task(self._reconcile_forever(), name="modal-reconcile")

    async def submit(self, job: JobRecord) -> None:
        await self.dispatch(job.id)

    async def cancel(self, job_id: str) -> None:
        task = asyncio.create_task(self._escalate_cancel(job_id), name=f"cancel-{job_id}")
        self._escalations.add(task)
        task.add_done_callback(self._escalations.discard)

    async def stop(self) -> None:
        tasks = [*self._escalations, *([self._loop_task] if self._loop_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop_task = None

    def describe(self) -> dict[str, Any]:
        return {
            "runner": "modal",
            "spawned_total": self.spawned,
            "reconciled_total": self.reconciled,
            "last_reconcile": self.last_reconcile,
        }

    # ---- spawning -----------------------------------------------------------------------------------------

    @property
    def max_spawns(self) -> int:
        return self.context.settings.max_attempts + 1

    async def dispatch(self, job_id: str) -> str | None:
        """Spawn a call for a queued job unless its current call is still queued/running; the call id."""
        entry = await self.store.entry(job_id)
        if entry is None or entry.job.status != "created":
            return None
        if entry.call_id is not None:
            outcome = await in_thread(lookup_outcome, self.lookup, entry.call_id)
            if outcome.state == "pending":  # Modal runs (or retries) it: it will claim the job itself
                return entry.call_id
        try:
            call_id = await in_thread(self.spawn, job_id)
        except Exception:  # the job stays queued; the reconciler spawns again
            log.exception("could not spawn a GPU call for job %s", job_id)
            return None
        self.spawned += 1
        await self.store.set_call(job_id, call_id)
        return call_id

    # ---- reconciling -------------------------------------------------------------------------------------

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tuning.reconcile_s)
            try:
                await self.reconcile_once()
            except Exception:  # keep watching; one failed pass must not end the loop
                log.exception("reconcile pass failed")

    async def reconcile_once(self) -> list[JobRecord]:
        """Look at the call of every active job once; fail or re-spawn those whose call ended. Returns the
        jobs it failed (their webhooks are sent)."""
        context = self.context
        failed: list[JobRecord] = []
        for item in await self.store.active():
            ended = await self._reconcile_job(item, context)
            if ended is not None:
                failed.append(ended)
                await context.notifier.job_finished(ended)
        self.reconciled += len(failed)
        self.last_reconcile = context.clock.now()
        return failed

    async def _reconcile_job(self, item: ActiveJob, context: RunnerContext) -> JobRecord | None:
        job = item.job
        if item.call_id is None:
            if job.status == "created" and context.clock.now() - job.created_at > self.tuning.reconcile_s:
                await self.dispatch(job.id)  # its spawn failed (or was lost): try again
            return None
        outcome = await in_thread(lookup_outcome, self.lookup, item.call_id)
        if not outcome.ended:
            return None
        if job.status == "created" and self._respawn(item, outcome):
            await self.dispatch(job.id)
            return None
        if job.cancel_requested:
            error, code = CANCELLED_MESSAGE, int(TaskErrorCode.TASK_FAILED)
        else:
            error, code = outcome.job_error(item.call_id, timeout_s=self.gpu_timeout_s)
        ended = await self.store.fail_for_call(
            job.id, item.call_id, now=context.clock.now(), error=error, code=code
        )
        if ended is not None:
            log.warning("job %s failed: its FunctionCall %s %s", job.id, item.call_id, outcome.state)
        return ended

    def _respawn(self, item: ActiveJob, outcome: CallOutcome) -> bool:
        """A queued job whose call ended: run it again, or give up?

        An expired result is reported (never silently retried). A call that failed or timed out before
        any worker claimed the job (``attempts == 0``) could not start at all (e.g. missing weights), after
        Modal's own retries: report that rather than start more GPUs. Otherwise (the job was re-queued
        after its worker died, or the call returned without claiming it) spawn again, a bounded number of
        times.
        """
        if outcome.state == "expired":
            return False
        if outcome.state in ("failed", "timeout", "cancelled") and item.job.attempts == 0:
            return False
        return item.spawns < self.max_spawns

    async def _escalate_cancel(self, job_id: str) -> None:
        """The worker should stop at its next heartbeat; if it has not after ``cancel_grace_s``, cancel its
        call (its lease then lapses, and the job ends cancelled)."""
        deadline = time.monotonic() + self.tuning.cancel_grace_s
        while time.monotonic() < deadline:
            job = await self.store.get(job_id)
            if job is None or job.is_terminal:
                return
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        entry = await self.store.entry(job_id)
        if entry is None or entry.job.is_terminal or entry.call_id is None:
            return
        log.warning(
            "job %s ignored its cancel flag for %g s: cancelling its call", job_id, self.tuning.cancel_grace_s
        )
        call_id = entry.call_id
        try:
            await in_thread(lambda: self.lookup(call_id).cancel(terminate_containers=True))
        except Exception:
            log.exception("could not cancel FunctionCall %s", call_id)
