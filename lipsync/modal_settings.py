"""Settings of the Modal deployment (``modal_app.py``): ``LIPSYNC_MODAL_*`` environment variables.

They are read when ``modal deploy modal_app.py`` imports the app (on the deploying machine) and baked into
the images' environment (:meth:`ModalSettings.as_env`), so every container sees the same values the
deployment was made with. List-valued settings (``LIPSYNC_MODAL_GPUS``) are comma-separated. The server
itself keeps reading its own ``LIPSYNC_*`` settings (``lipsync.server.settings``); see docs/deploy-modal.md.

Nothing here imports ``modal``: the settings are plain values that ``modal_app.py`` turns into Modal objects.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["DEFAULT_GPUS", "ModalSettings"]

#: Fallback order: Modal gives the first type it has capacity for. L40S (48 GB, Ada) is the best price per
#: LatentSync frame among the common types by our estimate (docs/deploy-modal.md); A100-80GB as a backstop.
DEFAULT_GPUS = ("L40S", "A100-80GB")

#: Modal's limits (checked here so a bad value fails at import, before anything is sent to Modal).
_MAX_TIMEOUT_S = 24 * 3600
_MAX_RETRY_DELAY_S = 60.0


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ModalSettings(BaseSettings):
    """Everything ``modal_app.py`` configures: names, GPUs, scaling, timeouts, retries, snapshots."""

    model_config = SettingsConfigDict(env_prefix="LIPSYNC_MODAL_", extra="ignore", validate_default=True)

    # --- names of the Modal objects -------------------------------------------------------------------
    app_name: str = Field(default="lipsync", description="Modal app name (the URL's label prefix)")
    secret_name: str = Field(
        default="lipsync-api", description="Secret holding LIPSYNC_API_KEYS and LIPSYNC_SIGNING_SECRET"
    )
    hf_secret_name: str = Field(
        default="", description="Optional Secret with HF_TOKEN for download_weights (empty: none)"
    )
    weights_volume: str = Field(default="lipsync-weights", description="Volume with the model weights")
    data_volume: str = Field(default="lipsync-data", description="Volume with job inputs and outputs")
    jobs_dict: str = Field(default="lipsync-jobs", description="modal.Dict holding the job records")
    weights_mount: str = Field(default="/weights", description="Where the weights Volume is mounted")
    data_mount: str = Field(default="/data", description="Where the data Volume is mounted")

    # --- the GPU worker class -------------------------------------------------------------------------
    gpus: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_GPUS),
        description="GPU types in order of preference (Modal falls back along the list)",
    )
    gpu_cpu: float = Field(
        default=4.0, gt=0, description="CPU cores per GPU container (decode/encode, faces)"
    )
    gpu_memory_mib: int = Field(default=16384, gt=0, description="Memory per GPU container (MiB)")
    gpu_timeout_s: int = Field(
        default=3900,
        gt=0,
        le=_MAX_TIMEOUT_S,
        description="Modal timeout of one job call; keep it above LIPSYNC_JOB_TIMEOUT_S + 30 s so the job "
        "records its own timeout first",
    )
    gpu_startup_timeout_s: int = Field(
        default=900, gt=0, le=_MAX_TIMEOUT_S, description="Container start-up (image pull + model load) limit"
    )
    gpu_retries: int = Field(default=2, ge=0, le=10, description="Modal retries of a crashed job call")
    retry_initial_delay_s: float = Field(default=1.0, ge=0, le=_MAX_RETRY_DELAY_S)
    retry_backoff: float = Field(default=2.0, ge=1.0, le=10.0)
    retry_max_delay_s: float = Field(default=30.0, ge=1.0, le=_MAX_RETRY_DELAY_S)
    gpu_max_containers: int = Field(default=10, ge=1, description="At most this many GPUs at once")
    gpu_min_containers: int = Field(default=0, ge=0, description="GPUs kept warm (billed while idle)")
    gpu_buffer_containers: int = Field(default=0, ge=0, description="Extra idle GPUs kept while busy")
    gpu_scaledown_window_s: int = Field(
        default=120, ge=2, le=3600, description="Idle seconds before a GPU container stops"
    )

    # --- the API container ----------------------------------------------------------------------------
    api_max_inputs: int = Field(default=100, ge=1, description="Concurrent requests per API container")
    api_max_containers: int = Field(default=4, ge=1, description="API containers at most")
    api_min_containers: int = Field(default=0, ge=0, description="API containers kept warm")
    api_scaledown_window_s: int = Field(default=300, ge=2, le=3600)
    api_timeout_s: int = Field(default=600, gt=0, le=_MAX_TIMEOUT_S, description="Longest request")
    api_cpu: float = Field(default=1.0, gt=0)
    api_memory_mib: int = Field(default=2048, gt=0)
    sweep_minutes: int = Field(
        default=10,
        ge=0,
        description="Run the lease/FunctionCall sweep on a schedule even while no API container is up "
        "(0 = only from API containers)",
    )

    # --- behaviour ------------------------------------------------------------------------------------
    memory_snapshot: bool = Field(
        default=False,
        description="CPU memory snapshots (API container; GPU class: imports only, models load after "
        "restore). GPU memory snapshots stay off: they are experimental on Modal",
    )
    reconcile_s: float = Field(
        default=30.0, gt=0, description="How often an API container checks the FunctionCalls of active jobs"
    )
    cancel_grace_s: float = Field(
        default=30.0,
        gt=0,
        description="A running job that ignores its cancel flag this long has its call cancelled",
    )
    lock_ttl_s: float = Field(
        default=10.0, gt=0, description="A Dict lock older than this belonged to a dead holder and is broken"
    )
    python_version: str = Field(default="3.11", description="Python of the images")
    download_timeout_s: int = Field(default=3600, gt=0, le=_MAX_TIMEOUT_S)

    @field_validator("gpus", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("gpus")
    @classmethod
    def _some_gpu(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one GPU type is needed (e.g. LIPSYNC_MODAL_GPUS=L40S,A100-80GB)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModalSettings:
        if self.gpu_min_containers > self.gpu_max_containers:
            raise ValueError("gpu_min_containers cannot exceed gpu_max_containers")
        if self.api_min_containers > self.api_max_containers:
            raise ValueError("api_min_containers cannot exceed api_max_containers")
        if self.retry_initial_delay_s > self.retry_max_delay_s:
            raise ValueError("retry_initial_delay_s cannot exceed retry_max_delay_s")
        return self

    def as_env(self) -> dict[str, str]:
        """These settings as ``LIPSYNC_MODAL_*`` variables (baked into the images so containers agree)."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            text = (
                ",".join(value)
                if isinstance(value, list)
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
            env[f"LIPSYNC_MODAL_{name.upper()}"] = text
        return env

    def server_env(self) -> dict[str, str]:
        """Server settings (``LIPSYNC_*``) that follow from the deployment: where data and weights live.

        The polling settings are relaxed for a remote store (each poll is a Dict round trip).
        """
        return {
            "LIPSYNC_DATA_DIR": self.data_mount,
            "LIPSYNC_WEIGHTS_DIR": self.weights_mount,
            "LIPSYNC_POLL_INTERVAL_S": "0.5",
            "LIPSYNC_HEARTBEAT_S": "2",
        }
