"""``WavespeedMock``: the mock's state and behaviour, independent of HTTP.

The FastAPI app (``mock_server.app``) is a thin layer over one instance; tests drive the same instance
through the Python API (``advance()``, ``journal``, ``set_scenario()``, ``webhooks``...). All methods are
thread-safe: the app runs on its own event loop thread while a test calls in from the main thread.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any

from contracts import (
    FaceChoice,
    HistoryPage,
    HistoryRequest,
    Prediction,
    TaskErrorCode,
    utc_now_iso,
)
from mock_server.clock import Clock, SystemClock, VirtualClock
from mock_server.config import MockConfig
from mock_server.jobs import Job, JobStore, face_report
from mock_server.journal import Journal
from mock_server.scenarios import DEFAULT_ERROR_TEXT, Scenario, parse_scenario
from mock_server.uploads import Upload, UploadStore
from mock_server.webhooks import HttpxWebhookSender, WebhookDelivery, WebhookDispatcher, WebhookSender

__all__ = ["MockError", "SubmitOutcome", "WavespeedMock"]


class MockError(Exception):
    """An HTTP-level answer other than 200 (404 unknown id, 429/5xx from a scenario, ...)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclasses.dataclass(frozen=True)
class SubmitOutcome:
    prediction: Prediction
    scenario: Scenario


_HTTP_ERROR_TEXT = {
    429: "Too many requests: rate limit exceeded, retry later",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service temporarily unavailable",
    504: "Gateway timeout",
}


class WavespeedMock:
    """One mock WaveSpeed service. ``reset()`` returns it to a fresh state with the same configuration."""

    config: MockConfig
    clock: Clock
    journal: Journal
    jobs: JobStore
    uploads: UploadStore
    webhooks: WebhookDispatcher

    def __init__(
        self, config: MockConfig | None = None, *, webhook_sender: WebhookSender | None = None
    ) -> None:
        self._lock = threading.RLock()
        self._webhook_sender = webhook_sender
        #: Where this mock can be reached, once a fixture or server has put it somewhere (else None).
        self.base_url: str | None = None
        self.configure(config or MockConfig())

    # -- configuration ------------------------------------------------------------------------------------
    def configure(self, config: MockConfig | None = None, **changes: Any) -> None:
        """Replace the configuration (and reset everything): ``mock.configure(api_keys=("k",))``."""
        base = config if config is not None else getattr(self, "config", None) or MockConfig()
        if "api_keys" in changes and changes["api_keys"] is not None:
            changes["api_keys"] = tuple(changes["api_keys"])
        with self._lock:
            self.config = dataclasses.replace(base, **changes)
            self.reset()

    def reset(self) -> None:
        """Forget all jobs, uploads, journal entries, deliveries and queued scenarios; restart the clock."""
        with self._lock:
            cfg = self.config
            self.clock = VirtualClock() if cfg.clock == "virtual" else SystemClock()
            self.journal = Journal(cfg.journal_size)
            self.jobs = JobStore(cfg.max_jobs)
            self.uploads = UploadStore(cfg.max_upload_bytes)
            old = getattr(self, "webhooks", None)
            self.webhooks = WebhookDispatcher(
                cfg.webhook_secret,
                self._webhook_sender or HttpxWebhookSender(allow=cfg.webhook_allow),
                retry_backoff_s=cfg.webhook_retry_backoff_s,
            )
            if old is not None:
                self.webhooks.bind(old._loop)
            self._rng = random.Random(cfg.seed)
            self._default = parse_scenario(cfg.scenario)
            self._queued: deque[Scenario] = deque()
            self._pending_webhooks: set[str] = set()

    @property
    def api_keys(self) -> tuple[str, ...] | None:
        return self.config.api_keys

    # -- scenarios ----------------------------------------------------------------------------------------
    def set_scenario(self, text: str) -> Scenario:
        """The scenario of every later submit that names none (until changed or reset)."""
        scenario = parse_scenario(text)
        with self._lock:
            self._default = scenario
        return scenario

    def queue_scenario(self, text: str, times: int = 1) -> Scenario:
        """The scenario of the next *times* submits that name none (before the default applies again)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        scenario = parse_scenario(text)
        with self._lock:
            self._queued.extend([scenario] * times)
        return scenario

    def clear_scenarios(self) -> None:
        """Back to the start-up default scenario, with nothing queued."""
        with self._lock:
            self._default = parse_scenario(self.config.scenario)
            self._queued.clear()

    @property
    def default_scenario(self) -> Scenario:
        return self._default

    @property
    def queued_scenarios(self) -> list[Scenario]:
        with self._lock:
            return list(self._queued)

    def _pick_scenario(self, header: str | None) -> Scenario:
        if header:
            return parse_scenario(header)
        with self._lock:
            return self._queued.popleft() if self._queued else self._default

    # -- time -----------------------------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.now()

    def now_iso(self) -> str:
        return utc_now_iso(datetime.fromtimestamp(self.clock.now(), UTC))

    def advance(self, seconds: float) -> float:
        """Move the mock clock forward; jobs whose time is up end now (and their webhooks fire)."""
        now = self.clock.advance(seconds)
        self.tick()
        return now

    def tick(self) -> None:
        """End the jobs with a webhook whose time is up (nobody polls them). Cheap when none is pending."""
        if not self._pending_webhooks:
            return
        now = self.clock.now()
        for prediction_id in list(self._pending_webhooks):
            job = self.jobs.get(prediction_id)
            if job is None:
                self._pending_webhooks.discard(prediction_id)
                continue
            self._observe(job, now)

    def new_id(self) -> str:
        with self._lock:
            return f"{self._rng.getrandbits(128):032x}"

    # -- predictions ------------------------------------------------------------------------------------
    def submit(
        self,
        base_url: str,
        *,
        scenario_header: str | None = None,
        webhook: str | None = None,
        sync: bool = False,
        base64_output: bool = False,
        face: FaceChoice = "largest",
    ) -> SubmitOutcome:
        """Create a job (the request body was validated by the caller). Raises MockError for a 429 scenario."""
        scenario = self._pick_scenario(scenario_header)
        if scenario.rejects_submit:
            raise MockError(
                429,
                _HTTP_ERROR_TEXT[429],
                {"Retry-After": str(scenario.retry_after), "X-Mock-Scenario": scenario.text},
            )
        now = self.clock.now()
        job = Job(
            id=self.new_id(),
            scenario=scenario,
            base_url=(self.config.public_url or base_url).rstrip("/"),
            started=now,
            created_at=self.now_iso(),
            webhook=webhook,
            base64_output=base64_output,
            face=face_report(face),
        )
        self.jobs.add(job)
        if webhook:
            self._pending_webhooks.add(job.id)
        if not sync:
            pred, _ = job.view(now)
            return SubmitOutcome(pred, scenario)
        return SubmitOutcome(self._run_sync(job), scenario)

    def _run_sync(self, job: Job) -> Prediction:
        """enable_sync_mode: the job gets ``sync_timeout_s`` clock seconds; past that, 5004 (it keeps running)."""
        limit = self.config.sync_timeout_s
        s = job.scenario
        if s.name in ("sync_timeout", "stuck") or s.seconds > limit:
            after = s.after if s.name == "sync_timeout" else limit
            job.sync_waited = True  # later polls show "processing", never "created" again
            pred = job.prediction("processing")
            pred.code = int(TaskErrorCode.TIMEOUT)
            pred.error = f"Sync mode timed out after {after} seconds. The prediction is still processing asynchronously."
            return pred
        # Finishes within the wait: fast-forward this job's own timeline to its end (no real waiting).
        job.started -= s.seconds
        pred, ended = job.view(job.started + s.seconds)
        if ended:
            self._ended(job)
        return pred

    def get(self, prediction_id: str) -> Job:
        job = self.jobs.get(prediction_id)
        if job is None:
            raise MockError(404, "prediction not found")
        return job

    def poll(self, prediction_id: str) -> tuple[Prediction | bytes, Scenario]:
        """One GET of the result (either route): counts the poll, may answer a scenario's 429/5xx.

        Returns the prediction, or the cached JSON bytes of an ended one (the common case of a client polling
        a finished job is then one dict lookup and no serialisation).
        """
        job = self.get(prediction_id)
        with self._lock:
            job.poll_requests += 1
            status = job.scenario.http_error_for_poll(job.poll_requests)
            if status is not None:
                headers = {"X-Mock-Scenario": job.scenario.text}
                if status == 429:
                    headers["Retry-After"] = str(job.scenario.retry_after)
                raise MockError(status, _HTTP_ERROR_TEXT.get(status, "Server error"), headers)
            job.polls += 1
            if job.final_json is None:
                pred = self._observe(job, self.clock.now())
            # An ended job (including one that ended just now) answers its JSON, serialised once.
            if job.final_json is not None:
                return job.final_json, job.scenario
        return pred, job.scenario

    def cancel(self, prediction_id: str) -> Prediction:
        """Extension: end a running job as failed with code 1405 (409 once it has ended)."""
        job = self.get(prediction_id)
        with self._lock:
            pred = self._observe(job, self.clock.now())
            if pred.is_terminal:
                raise MockError(409, f"prediction already {pred.status}")
            ended = pred.model_copy(
                update={
                    "status": "failed",
                    "progress": None,
                    "code": int(TaskErrorCode.TASK_FAILED),
                    "error": DEFAULT_ERROR_TEXT[int(TaskErrorCode.TASK_FAILED)],
                }
            )
            job.end(ended)
            self._ended(job)
        return ended

    def delete(self, ids: list[str]) -> int:
        with self._lock:
            count = 0
            for prediction_id in ids:
                if self.jobs.delete(prediction_id):
                    count += 1
                    self._pending_webhooks.discard(prediction_id)
            return count

    def history(self, query: HistoryRequest) -> HistoryPage:
        now = self.clock.now()
        items = [self._observe(job, now) for job in self.jobs]
        items.reverse()  # newest first
        matching = [
            p
            for p in items
            if (query.model is None or p.model == query.model)
            and (query.status is None or p.status == query.status)
            and (query.created_after is None or p.created_at >= query.created_after)
            and (query.created_before is None or p.created_at < query.created_before)
        ]
        start = (query.page - 1) * query.page_size
        return HistoryPage(
            page=query.page, items=matching[start : start + query.page_size], total=len(matching)
        )

    def _observe(self, job: Job, now: float) -> Prediction:
        # Under the lock: a job must end (and fire its webhook) exactly once, whichever thread sees it first.
        with self._lock:
            pred, ended = job.view(now)
            if ended:
                self._ended(job)
        return pred

    def _ended(self, job: Job) -> None:
        self._pending_webhooks.discard(job.id)
        final = job.final
        if job.webhook and not job.webhook_sent and final is not None:
            job.webhook_sent = True
            self.webhooks.dispatch(job.webhook, final, job.scenario)

    # -- outputs and uploads ------------------------------------------------------------------------------
    def output_for(self, prediction_id: str) -> Job:
        """The job whose output is being downloaded (404 unless completed and not expired)."""
        job = self.get(prediction_id)
        pred = self._observe(job, self.clock.now())
        if pred.status != "completed":
            raise MockError(404, "output not found")
        if job.scenario.name == "expired":
            raise MockError(404, "output expired: outputs are kept for a limited time")
        return job

    def new_upload(
        self, filename: str, size: int | None, content_type: str | None, data: bytes | None = None
    ) -> Upload:
        if (size or 0) > self.config.max_upload_bytes or len(data or b"") > self.config.max_upload_bytes:
            raise MockError(413, f"file too large (limit {self.config.max_upload_bytes} bytes)")
        upload = Upload(self.new_id(), filename, size, content_type, data)
        self.uploads.add(upload)
        return upload

    def put_upload(self, upload_id: str, data: bytes) -> Upload:
        upload = self.uploads.get(upload_id)
        if upload is None:
            raise MockError(404, "upload ticket not found")
        if upload.declared_size is not None and upload.declared_size != len(data):
            raise MockError(
                400, f"size mismatch: the ticket declared {upload.declared_size} bytes, got {len(data)}"
            )
        if len(data) > self.config.max_upload_bytes:
            raise MockError(413, f"file too large (limit {self.config.max_upload_bytes} bytes)")
        stored = self.uploads.put(upload_id, data)
        assert stored is not None
        return stored

    def uploaded(self, upload_id: str) -> Upload:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.data is None:
            raise MockError(404, "file not found")
        return upload

    # -- inspection helpers for tests -----------------------------------------------------------------------
    @property
    def deliveries(self) -> list[WebhookDelivery]:
        return self.webhooks.deliveries

    def wait_for_webhooks(self, count: int = 1, timeout: float = 5.0) -> list[WebhookDelivery]:
        self.tick()
        return self.webhooks.wait_for(count, timeout)
