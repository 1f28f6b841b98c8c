"""The seams of the server: what the routes need from the outside world, as small protocols.

The same routes run on one machine (SQLite store, a directory, a worker process: ``create_default_app``)
and on Modal (``modal.Dict``, a Volume, ``Function.spawn``), so everything the routes touch is one of:

- :class:`JobStore`     job records and their state machine (the source of truth; survives restarts)
- :class:`Storage`      input and output bytes under safe relative keys
- :class:`Runner`       gets queued jobs executed (``submit`` is a nudge: the store is the queue)
- :class:`Fetcher`      downloads an input URL to a local file (the SSRF guard lives in the real one)
- :class:`WebhookSender` delivers a signed callback with bounded retries
- :class:`Engine`       runs one lip-sync job on local files (``lipsync.LipSync`` satisfies it)
- :class:`Clock`        wall-clock seconds (tests inject a fake one)

Every I/O method is ``async`` (local implementations hand blocking work to threads; remote ones use
their async clients). ``JobStore`` is implemented once, ``job_store.BackendJobStore``, over a storage
backend (memory, SQLite, PostgreSQL, Modal's Dict: see ``store_backend.py``); ``lipsync.server.memory``
holds the in-memory backends, which double as test fakes.

Job state machine (``status``)::

    resolving --inputs stored and checked--> created --claim--> processing --finish--> completed | failed
       |  unusable inputs: failed(1401/1402)    |                  |  lease expired: back to created
       +--cancel--> failed(1405)                +--cancel--> failed(1405)   (attempts < max_attempts) or failed
                                                                   +--cancel flag--> the worker stops -> failed(1405)

``resolving`` is internal (clients see ``created``): the API process downloads and checks the inputs of
an accepted job before any runner can claim it. The resolver holds a lease on it like a worker does, so a
resolution interrupted by a stopped server is taken over (``claim_resolution``) instead of being lost.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from contracts import PredictionStatus, RunOptions
from lipsync.server.settings import ServerSettings

__all__ = [
    "ActiveLimitExceeded",
    "Clock",
    "Engine",
    "FetchResult",
    "Fetcher",
    "HeartbeatReply",
    "JobNotifier",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "ProgressCallback",
    "Runner",
    "RunnerContext",
    "Storage",
    "SystemClock",
    "WebhookSender",
]

JobOutcome = Literal["completed", "failed"]

#: A stored job's status: the public ``PredictionStatus`` plus ``resolving`` (shown to clients as ``created``).
JobStatus = Literal["resolving", "created", "processing", "completed", "failed"]


@dataclass(slots=True)
class JobRecord:
    """One prediction as the store keeps it. Times are epoch seconds; ``timings`` values are milliseconds."""

    id: str
    owner: str  # the API key's id (see auth.py): jobs are visible to that key only
    base_url: str  # the base URL the client used, for links in webhooks sent by a worker
    options: RunOptions  # what the engine runs with (the request's RunOptions fields, version resolved)
    inputs: dict[str, str]  # {"video": storage key, "audio": storage key}; empty while resolving
    created_at: float
    status: JobStatus = "created"
    webhook: str | None = None
    base64_output: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    outputs: list[str] = field(default_factory=list)  # storage keys
    error: str = ""
    code: int | None = None
    progress: float | None = None
    attempts: int = 0
    worker_id: str | None = None
    lease_until: float | None = None
    cancel_requested: bool = False
    timings: dict[str, int] = field(default_factory=dict)
    #: What the request named, per field, while resolving: an http(s) URL, or ``stored:<key>`` for a
    #: ``data:`` URI kept in storage at submit (see ``inputs.py``). Kept afterwards for the record.
    sources: dict[str, str] = field(default_factory=dict)
    #: A completed job's ``contracts.FaceReport`` as a JSON dict (which face was synced and how), when the
    #: request chose a face (point, boxes or auto); None otherwise.
    face: dict[str, Any] | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in ("completed", "failed")

    @property
    def public_status(self) -> PredictionStatus:
        """The status a client sees (``resolving`` is shown as ``created``)."""
        return "created" if self.status == "resolving" else self.status


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    """What a worker learns when renewing its lease."""

    owned: bool  # False: the lease was lost (expired and re-queued, or the job was deleted) - stop work
    cancel_requested: bool


class ActiveLimitExceeded(Exception):
    """``JobStore.create`` refused: the owner already has ``limit`` queued or running jobs."""

    def __init__(self, active: int, limit: int) -> None:
        super().__init__(f"{active} active predictions (limit {limit})")
        self.active = active
        self.limit = limit


@runtime_checkable
class JobStore(Protocol):
    """Durable job records. Every state change is a compare-and-set, so racing writers cannot corrupt a job."""

    async def create(self, job: JobRecord, *, active_limit: int | None = None) -> None:
        """Insert a job (``resolving``, or ``created`` when its inputs are already stored); raise
        ActiveLimitExceeded when the owner is at *active_limit* queued/running jobs (atomic)."""

    async def get(self, job_id: str) -> JobRecord | None: ...

    async def count_active(self, owner: str) -> int:
        """Jobs of *owner* that are not terminal (resolving, created or processing)."""

    async def has_queued(self) -> bool:
        """Whether any job waits to be claimed (a cheap read: idle workers poll it)."""

    async def claim(self, worker_id: str, *, now: float, lease_s: float) -> JobRecord | None:
        """Take the oldest ``created`` job: processing, attempts + 1, leased to *worker_id*; None if none."""

    async def claim_resolution(self, resolver_id: str, *, now: float, lease_s: float) -> JobRecord | None:
        """Take over the oldest ``resolving`` job nobody holds (its resolver's lease ran out or was
        released): leased to *resolver_id*, attempts + 1; None if none."""

    async def finish_resolution(
        self,
        job_id: str,
        resolver_id: str,
        *,
        now: float,
        inputs: dict[str, str] | None,
        timings: dict[str, int] | None = None,
        error: str = "",
        code: int | None = None,
    ) -> JobRecord | None:
        """resolving -> created with *inputs* (attempts back to 0), or, with ``inputs=None``, -> failed with
        *error*/*code*; only while *resolver_id* holds the job. None when it does not (cancelled, deleted,
        taken over): then the write is lost."""

    async def heartbeat(
        self, job_id: str, worker_id: str, *, lease_until: float, progress: float | None
    ) -> HeartbeatReply: ...

    async def finish(
        self,
        job_id: str,
        worker_id: str,
        *,
        status: JobOutcome,
        now: float,
        outputs: Sequence[str] = (),
        error: str = "",
        code: int | None = None,
        timings: dict[str, int] | None = None,
        face: dict[str, Any] | None = None,
    ) -> JobRecord | None:
        """processing -> completed/failed if *worker_id* still holds the lease; else None (the write is lost).
        *face*: a completed job's face report (``contracts.FaceReport`` as a JSON dict), if any."""

    async def cancel(self, job_id: str, *, now: float) -> JobRecord | None:
        """resolving/created -> failed(1405) at once; processing -> flag for the worker. Returns the job,
        None if unknown."""

    async def expire_leases(
        self, *, now: float, max_attempts: int, message: str, worker_id: str | None = None
    ) -> list[JobRecord]:
        """Processing jobs whose lease ran out: re-queue (attempts < max_attempts) or fail with *message*;
        resolving jobs whose resolver's lease ran out: released for ``claim_resolution``.

        With *worker_id*: only that worker's processing jobs, whatever their lease (its process is known
        dead), in the same atomic step, so the failure names the real cause. Returns the jobs it changed,
        in their new state.
        """

    async def release_worker(self, worker_id: str) -> int:
        """Expire every lease *worker_id* holds now (its process is known dead); returns how many."""

    async def list_jobs(
        self,
        owner: str,
        *,
        page: int,
        page_size: int,
        status: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
    ) -> tuple[list[JobRecord], int]:
        """Newest first; returns (items of that page, total matching). *status* is the public one
        (``created`` also matches ``resolving`` jobs)."""

    async def delete(self, owner: str, ids: Sequence[str]) -> list[JobRecord]:
        """Remove *owner*'s jobs among *ids* that are not running (running ones get a cancel flag instead)."""

    async def purge(self, *, before: float) -> list[JobRecord]:
        """Remove terminal jobs created before *before* (retention); returns them so files can go too."""

    async def close(self) -> None: ...


@runtime_checkable
class Storage(Protocol):
    """Bytes under relative keys such as ``outputs/<job>/output.mp4`` (validated by ``keys.check_key``).

    Writes are atomic and idempotent: writing the same key twice leaves one complete object.
    """

    async def put_file(self, key: str, src: Path) -> int:
        """Store a copy of *src* (the caller keeps it); returns the size."""

    async def put_bytes(self, key: str, data: bytes) -> int: ...

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> int:
        """Store a stream; raise ValueError (and store nothing) past *max_bytes*."""

    async def size(self, key: str) -> int | None:
        """Size in bytes, or None when absent."""

    async def read_head(self, key: str, n: int) -> bytes: ...

    def iter_bytes(self, key: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """The object's bytes in chunks (an async generator); FileNotFoundError when absent."""
        ...

    async def local_path(self, key: str, scratch: Path) -> Path:
        """A local file with the object's bytes: the file itself when local, else a copy under *scratch*."""

    async def delete_prefix(self, prefix: str) -> None: ...

    def presigned_url(self, key: str, *, expires_s: int) -> str | None:
        """A direct download URL (e.g. S3 presigned), or None to serve it through ``/files``."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object as a listing reports it (``modified``: epoch seconds)."""

    key: str
    size: int
    modified: float


@runtime_checkable
class ListableStorage(Protocol):
    """A Storage that can list what it holds: the maintenance pass then expires uploads, enforces the
    per-key upload quota and sweeps orphan input folders (``housekeeping.py``)."""

    async def list_objects(self, prefix: str) -> list[StoredObject]:
        """Every object whose key starts with ``<prefix>/`` (an empty list when none)."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    size: int
    content_type: str | None
    final_url: str


@runtime_checkable
class Fetcher(Protocol):
    async def fetch(self, url: str, dest: Path) -> FetchResult:
        """Download an http(s) *url* into *dest*; raise ``lipsync.errors.MediaFetchError`` on refusal/failure."""


@runtime_checkable
class WebhookSender(Protocol):
    async def send(self, url: str, body: bytes, *, webhook_id: str, secret: str) -> bool:
        """POST *body* signed (``contracts.signature_headers``) with bounded retries; True once a 2xx came."""


class JobNotifier(Protocol):
    async def job_finished(self, job: JobRecord) -> None:
        """*job* reached a terminal state (sends its webhook, if any)."""


@dataclass(frozen=True, slots=True)
class RunnerContext:
    """What the app hands its runner at start-up (the backends it was built with)."""

    store: JobStore
    storage: Storage
    notifier: JobNotifier
    clock: Clock
    settings: ServerSettings


@runtime_checkable
class Runner(Protocol):
    """Gets the store's ``created`` jobs executed. The store is the queue, so a lost nudge loses nothing."""

    async def start(self, context: RunnerContext) -> None:
        """Begin work, including jobs already queued before this process started."""

    async def submit(self, job: JobRecord) -> None:
        """A new job is queued (wake a worker)."""

    async def cancel(self, job_id: str) -> None:
        """The job was cancelled: it already ended (it was queued) or its cancel flag is set (it runs).
        A nudge; workers also see the flag through their heartbeat. Called for both cases, so a runner
        can also drop work it had scheduled for a queued job."""

    async def stop(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """Health details for ``/healthz`` (workers alive, devices, ...)."""


#: Called by the engine with its progress: ``lipsync.pipeline``'s ProgressEvent (``.fraction``) or a float.
ProgressCallback = Callable[..., None]


@runtime_checkable
class Engine(Protocol):
    """Runs one lip-sync on local files; ``lipsync.LipSync`` satisfies it. Called in a worker thread.

    *options* are the job's ``contracts.RunOptions`` (every field, so a new option reaches the engine
    without any list to update). ``progress`` reports how far it is and may raise ``JobCancelled``,
    which the engine must let through. Failures raise ``lipsync.errors`` types.
    """

    def run(
        self,
        video_path: str | Path,
        audio_path: str | Path,
        out_path: str | Path,
        options: RunOptions,
        progress: ProgressCallback | None = None,
    ) -> Any: ...


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock epoch seconds."""


class SystemClock:
    def now(self) -> float:
        return time.time()
