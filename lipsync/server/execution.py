"""Running one claimed job: inputs from storage, the engine in a thread, the output back, the outcome stored.

Shared by every runner (the local worker process, the in-process runner, Modal's spawned function). While
the engine runs, a heartbeat renews the job's lease, publishes progress and picks up a cancel request; the
engine's progress callback then raises ``JobCancelled`` at its next step. Only the worker that still holds
the lease can store an outcome (``JobStore.finish`` is a compare-and-set), and the output key depends only
on the job id, so a retried job overwrites rather than duplicates its output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contracts import FaceReport, RunOptions, TaskErrorCode
from lipsync.errors import EngineError, JobCancelled, LipsyncError
from lipsync.server.interfaces import (
    Clock,
    Engine,
    JobNotifier,
    JobOutcome,
    JobRecord,
    JobStore,
    Storage,
    WebhookSender,
)
from lipsync.server.keys import output_key
from lipsync.server.transitions import CANCELLED_MESSAGE
from lipsync.server.views import Links, to_prediction

__all__ = ["JobExecutor", "Notifier", "safe_error_text"]

log = logging.getLogger(__name__)

#: Grace after the job timeout for an engine that never calls progress, before the worker gives up on it.
STUCK_GRACE_S = 30.0


def safe_error_text(text: str) -> str:
    """The SDK re-runs a task whose error mentions "HTTP 5"/"HTTP 429"; keep that for transient failures only."""
    return text.replace("HTTP 5", "HTTP status 5").replace("HTTP 429", "HTTP status 429")


class Notifier:
    """Sends the webhook of a job that reached a terminal state, in the background."""

    def __init__(self, webhooks: WebhookSender, links: Links) -> None:
        self.webhooks = webhooks
        self.links = links
        self._tasks: set[asyncio.Task[bool]] = set()

    async def job_finished(self, job: JobRecord) -> None:
        if not job.webhook or not job.is_terminal:
            return
        prediction = await to_prediction(job, self.links, inline_base64=False)
        body = prediction.model_dump_json().encode()
        secret = self.links.signer.webhook_secret(job.owner)
        task = asyncio.create_task(self.webhooks.send(job.webhook, body, webhook_id=job.id, secret=secret))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for deliveries in flight, e.g. before a worker exits."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


@dataclass
class _RunState:
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: float = 0.0
    lost: bool = False
    timed_out: bool = False

    def report(self, event: Any, total: float | None = None, *_: Any, **__: Any) -> None:
        """The engine's progress callback. Raises JobCancelled to stop the engine.

        Accepts the pipeline's ``ProgressEvent`` (its ``fraction``), a fraction, or ``(done, total)``.
        """
        fraction = getattr(event, "fraction", None)
        if fraction is None:
            fraction = event / total if total else event
        self.progress = min(1.0, max(0.0, float(fraction)))
        if self.cancel.is_set():
            raise JobCancelled("cancelled")


@dataclass
class _Outcome:
    status: JobOutcome
    outputs: list[str] = field(default_factory=list)
    error: str = ""
    code: int | None = None
    timings: dict[str, int] = field(default_factory=dict)
    face: dict[str, Any] | None = None


#: Pipeline stages (``RunResult.timings_ms``) reported together as ``timings.preprocess``.
_PREPROCESS_STAGES = ("audio", "decode", "detect", "align")


def _stage_timings(result: Any) -> dict[str, int]:
    """``preprocess`` (ms) from the pipeline's per-stage timings, when the engine reports them."""
    stages = getattr(result, "timings_ms", None)
    if not isinstance(stages, dict):
        return {}
    return {"preprocess": round(sum(float(stages.get(name, 0.0)) for name in _PREPROCESS_STAGES))}


def _face_report(job_id: str, result: Any) -> dict[str, Any] | None:
    """The engine's face report (``RunResult.face``: a ``FaceReport`` or its dict) for the prediction, when
    the request chose a face; None for the reference's largest face, or a report that does not validate
    (logged: a custom engine's, which must not fail a finished job)."""
    face = getattr(result, "face", None)
    if face is None:
        return None
    try:
        report = FaceReport.model_validate(face)
    except ValidationError as exc:
        log.warning("job %s: the engine's face report is not a FaceReport, not reported: %s", job_id, exc)
        return None
    if report.mode == "largest":
        return None
    log.info("job %s: face %s", job_id, report.model_dump_json())
    summary: dict[str, Any] = report.model_dump(mode="json")
    return summary


class JobExecutor:
    """Executes claimed jobs one at a time with one engine (created on first use, then kept)."""

    def __init__(
        self,
        *,
        store: JobStore,
        storage: Storage,
        notifier: JobNotifier,
        engine_factory: Callable[[], Engine],
        clock: Clock,
        lease_s: float,
        heartbeat_s: float,
        job_timeout_s: float,
        scratch_dir: Path | None = None,
        on_stuck: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.notifier = notifier
        self._engine_factory = engine_factory
        self._engine: Engine | None = None
        self.clock = clock
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s
        self.job_timeout_s = job_timeout_s
        self.scratch_dir = scratch_dir
        self.on_stuck = on_stuck
        self._running: dict[str, _RunState] = {}

    def request_cancel(self, job_id: str) -> None:
        """Stop a job running here at its next progress call (the store's flag does the same, slower)."""
        state = self._running.get(job_id)
        if state is not None:
            state.cancel.set()

    async def execute(self, job: JobRecord, worker_id: str) -> JobRecord | None:
        """Run *job* (already claimed by *worker_id*); returns the stored outcome, None if the lease was lost."""
        state = _RunState()
        self._running[job.id] = state
        heartbeat = asyncio.create_task(self._heartbeat(job, worker_id, state))
        try:
            outcome = await self._run(job, state)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            self._running.pop(job.id, None)
        if state.lost:
            log.warning("job %s: lease lost while running; its outcome is discarded", job.id)
            return None
        finished = await self.store.finish(
            job.id,
            worker_id,
            status=outcome.status,
            now=self.clock.now(),
            outputs=outcome.outputs,
            error=outcome.error,
            code=outcome.code,
            timings=outcome.timings,
            face=outcome.face,
        )
        if finished is not None:
            await self.notifier.job_finished(finished)
        return finished

    async def _heartbeat(self, job: JobRecord, worker_id: str, state: _RunState) -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(self.heartbeat_s)
            if time.monotonic() - started > self.job_timeout_s and not state.timed_out:
                state.timed_out = True
                state.cancel.set()
            reply = await self.store.heartbeat(
                job.id, worker_id, lease_until=self.clock.now() + self.lease_s, progress=state.progress
            )
            if not reply.owned:
                state.lost = True
                state.cancel.set()
                return
            if reply.cancel_requested:
                state.cancel.set()

    async def preload(self) -> None:
        """Build the engine now (weights load at worker start); a failure is logged, and retried per job."""
        try:
            await asyncio.to_thread(self._get_engine)
        except Exception:
            log.exception("could not load the engine; jobs will fail until it loads")

    def _get_engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._engine_factory()
        return self._engine

    async def _run(self, job: JobRecord, state: _RunState) -> _Outcome:
        with tempfile.TemporaryDirectory(prefix=f"lipsync-{job.id}-", dir=self.scratch_dir) as tmp:
            scratch = Path(tmp)
            try:
                video = await self.storage.local_path(job.inputs["video"], scratch)
                audio = await self.storage.local_path(job.inputs["audio"], scratch)
                out = scratch / "output.mp4"
                engine = await asyncio.to_thread(self._get_engine)
                started = time.monotonic()
                result = await self._run_engine(engine, video, audio, out, job.options, state)
                timings = {"inference": round((time.monotonic() - started) * 1000), **_stage_timings(result)}
                face = _face_report(job.id, result)
                if state.cancel.is_set():
                    raise JobCancelled("cancelled")
                if not out.is_file() or out.stat().st_size == 0:
                    raise EngineError("the engine finished without writing an output video")
                key = output_key(job.id)
                await self.storage.put_file(key, out)
                return _Outcome("completed", outputs=[key], timings=timings, face=face)
            except JobCancelled:
                if state.timed_out:
                    return _Outcome(
                        "failed",
                        error=f"timeout: the job ran longer than {self.job_timeout_s:g} s",
                        code=int(TaskErrorCode.TIMEOUT),
                    )
                return _Outcome("failed", error=CANCELLED_MESSAGE, code=int(TaskErrorCode.TASK_FAILED))
            except LipsyncError as exc:
                return _Outcome(
                    "failed", error=safe_error_text(f"{exc.error_type}: {exc}"), code=exc.wavespeed_code
                )
            except Exception as exc:
                log.exception("job %s: unexpected failure", job.id)
                return _Outcome(
                    "failed",
                    error=safe_error_text(f"internal_error: {type(exc).__name__}: {exc}"),
                    code=int(TaskErrorCode.INTERNAL_ERROR),
                )

    async def _run_engine(
        self, engine: Engine, video: Path, audio: Path, out: Path, options: RunOptions, state: _RunState
    ) -> Any:
        call = asyncio.ensure_future(asyncio.to_thread(engine.run, video, audio, out, options, state.report))
        done, _ = await asyncio.wait({call}, timeout=self.job_timeout_s + STUCK_GRACE_S)
        if call in done:
            return call.result()
        # The engine ignored the cancel signal: its thread cannot be killed from here. Report the job as
        # timed out and let the runner replace this worker (a process runner exits and is restarted).
        state.timed_out = True
        if self.on_stuck is not None:
            self.on_stuck()
        raise JobCancelled("stuck")
