"""Server settings: ``LIPSYNC_*`` environment variables (pydantic-settings), mirrored by ``lipsync serve`` flags.

List-valued settings (``LIPSYNC_API_KEYS``, ``LIPSYNC_FETCH_ALLOW``, ``LIPSYNC_DEVICES``) are comma-separated.
Every field is documented in ``docs/server.md``; keep the two in step.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any, cast

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contracts import DEFAULT_MAX_UPLOAD_BYTES, ModelVersion
from lipsync.engine.releases import DEFAULT_VERSION, VERSIONS, normalise_version
from lipsync.media.faces.registry import DEFAULT_DETECTOR, DETECTOR_NAMES, get_detector_spec
from lipsync.web import (
    DEFAULT_ANONYMOUS_BYTES,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_JSON_BYTES,
    DEFAULT_MAX_CONNECTIONS,
)

__all__ = ["STORE_SCHEMES", "ServerSettings", "load_or_create_secret"]

_DAY = 24 * 3600


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]

#: Job store URL schemes (see ``backends.build_store``) -> whether such a store is shared between machines.
STORE_SCHEMES: dict[str, bool] = {"sqlite": False, "postgresql": True, "postgres": True}


class ServerSettings(BaseSettings):
    """Everything ``lipsync serve`` and ``create_default_app`` read."""

    model_config = SettingsConfigDict(env_prefix="LIPSYNC_", extra="ignore", validate_default=True)

    # --- network / identity -------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Interface to bind")
    port: int = Field(default=8000, ge=0, le=65535, description="Port to bind (0 = any free port)")
    public_base_url: str | None = Field(
        default=None,
        description="External base URL used in links (urls.get, outputs, uploads); default: the request's",
    )
    api_keys: CsvList = Field(
        default_factory=list,
        description="Accepted API keys, comma-separated; an entry 'sha256:<hex>' is a pre-hashed key",
    )
    signing_secret: SecretStr | None = Field(
        default=None,
        description="HMAC secret for download/upload URLs and webhook secrets; default: <data_dir>/secret",
    )

    # --- request limits (docs/server.md, "Limits and security") --------------------------------------
    max_json_bytes: int = Field(
        default=DEFAULT_JSON_BYTES,
        gt=0,
        description="Size cap of a JSON request body (data: URIs included); uploads are capped by max_input_bytes",
    )
    max_unauthenticated_bytes: int = Field(
        default=DEFAULT_ANONYMOUS_BYTES,
        ge=0,
        description="Size cap of a request body sent without a valid API key (the answer is a 401 anyway)",
    )
    header_timeout_s: float = Field(
        default=DEFAULT_HEADER_TIMEOUT_S,
        gt=0,
        description="Time a client has to send a request's headers, then disconnected",
    )
    body_timeout_s: float = Field(
        default=30.0, gt=0, description="Longest pause between two pieces of a request body, then 408"
    )
    max_connections: int = Field(
        default=DEFAULT_MAX_CONNECTIONS,
        ge=1,
        description="Concurrent connections (uvicorn limit_concurrency); then 503",
    )

    # --- storage / engine ---------------------------------------------------------------------------
    data_dir: Path = Field(default=Path("data"), description="SQLite database, inputs and outputs")
    store_url: str | None = Field(
        default=None,
        description="Job store: sqlite:///PATH (default <data_dir>/jobs.sqlite3) or postgresql://user:pass@host/db"
        " (shared by several API processes and workers)",
    )
    s3_bucket: str | None = Field(default=None, description="Store media in this S3 bucket instead")
    s3_prefix: str = Field(default="lipsync/", description="Key prefix inside the S3 bucket")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO, R2, ...)")
    weights_dir: Path | None = Field(default=None, description="Model weights; default: the engine's")
    face_detector: str | None = Field(
        default=None, description=f"{' or '.join(DETECTOR_NAMES)}; default: the engine's ({DEFAULT_DETECTOR})"
    )
    model_version: ModelVersion = Field(
        default=cast(ModelVersion, DEFAULT_VERSION),
        description=f"Default LatentSync release ({', '.join(VERSIONS)})",
    )
    engine_factory: str | None = Field(
        default=None,
        description="'module:callable' building the engine for a device (tests, custom engines); default LipSync",
    )
    devices: CsvList = Field(
        default_factory=lambda: ["auto"], description="One worker process per entry (cuda:0, cuda:1, cpu)"
    )

    # --- inputs -------------------------------------------------------------------------------------
    fetch_allow: CsvList = Field(
        default_factory=list,
        description="Hosts, IPs or CIDRs the fetcher may reach although they are private/loopback (dev only)",
    )
    fetch_timeout_s: float = Field(default=45.0, gt=0, description="Time cap for one input download")
    resolve_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Time cap for getting one input (download or decode, media check, storing it); then 1402",
    )
    max_input_bytes: int = Field(
        default=DEFAULT_MAX_UPLOAD_BYTES, gt=0, description="Size cap for one input (fetch/upload)"
    )
    upload_quota_bytes: int = Field(
        default=10 * 1024**3,
        gt=0,
        description="Stored uploads per API key (bytes); a new upload over it is refused with 413",
    )
    max_redirects: int = Field(default=5, ge=0, description="Redirects followed per input URL")
    check_media: bool = Field(default=True, description="Probe inputs with PyAV before a job is queued")

    # --- jobs ---------------------------------------------------------------------------------------
    max_active_jobs_per_key: int = Field(default=8, ge=1, description="Queued+running jobs per key, then 429")
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After sent with a 429")
    sync_timeout_s: float = Field(default=90.0, gt=0, description="enable_sync_mode wait before code 5004")
    lease_s: float = Field(default=60.0, gt=0, description="A running job's lease; renewed by heartbeats")
    heartbeat_s: float = Field(default=1.0, gt=0, description="Heartbeat interval (also cancel latency)")
    max_attempts: int = Field(default=2, ge=1, description="Runs of a job whose worker died (2 = retry once)")
    job_timeout_s: float = Field(default=3600.0, gt=0, description="A running job is failed after this")
    poll_interval_s: float = Field(default=0.1, gt=0, description="Store polling while a request waits")
    shutdown_grace_s: float = Field(
        default=10.0,
        ge=0,
        description="On shutdown, how long a running job may finish before its worker is stopped",
    )

    # --- links, webhooks, retention -----------------------------------------------------------------
    url_ttl_s: int = Field(default=7 * _DAY, gt=0, description="Lifetime of signed download URLs")
    upload_ttl_s: int = Field(default=3600, gt=0, description="Lifetime of a signed upload (PUT) URL")
    retention_s: int = Field(default=7 * _DAY, gt=0, description="Jobs and their files are purged after this")
    webhook_attempts: int = Field(default=4, ge=1, description="Delivery attempts per webhook")
    webhook_backoff_s: float = Field(default=2.0, ge=0, description="First retry delay; doubles each time")
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="Per-attempt webhook timeout")
    reported_balance: float = Field(
        default=1_000_000.0, description="What GET /api/v3/balance reports (nothing is billed)"
    )

    @field_validator("api_keys", "fetch_allow", "devices", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("store_url")
    @classmethod
    def _store_scheme(cls, value: str | None) -> str | None:
        if value is not None and value.split(":", 1)[0] not in STORE_SCHEMES:
            raise ValueError(
                f"store_url must start with one of {', '.join(s + '://' for s in STORE_SCHEMES)}"
            )
        return value

    @field_validator("face_detector")
    @classmethod
    def _known_detector(cls, value: str | None) -> str | None:
        return None if value is None else get_detector_spec(value).name

    @field_validator("model_version", mode="before")
    @classmethod
    def _known_version(cls, value: object) -> object:
        key = normalise_version(value) if isinstance(value, str) else None
        if key is None:
            raise ValueError(f"unknown LatentSync version {value!r}; expected one of {', '.join(VERSIONS)}")
        return key

    @property
    def db_path(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def job_store_url(self) -> str:
        """The store URL in effect (SQLite in the data directory unless ``store_url`` is set)."""
        return self.store_url or f"sqlite:///{self.db_path}"

    @property
    def shared_store(self) -> bool:
        """Whether other machines may use the same store (then no process may assume it is alone)."""
        return STORE_SCHEMES[self.job_store_url.split(":", 1)[0]]

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"


def load_or_create_secret(settings: ServerSettings) -> bytes:
    """The URL/webhook signing secret: the setting, else ``<data_dir>/secret`` (created 0600 on first use).

    Persisting it keeps signed URLs and webhook secrets valid across restarts.
    """
    if settings.signing_secret is not None:
        return settings.signing_secret.get_secret_value().encode()
    path = settings.data_dir / "secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    return path.read_bytes().strip()
