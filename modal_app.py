"""The lip-sync API on Modal: ``modal deploy modal_app.py`` (see docs/deploy-modal.md).

Thin wiring only; the logic lives in ``lipsync.server`` and is tested without Modal:

- ``api``              CPU container(s) serving the server's app (``@modal.asgi_app``, ``@modal.concurrent``)
                       with Modal backends: jobs in a ``modal.Dict``, media in a Volume, GPU work spawned;
- ``LipSyncWorker``    the GPU class: loads the models once per container (``@modal.enter``), runs one job
                       per call (``run_job``), retried by Modal after a crash or a preemption;
- ``sweep_jobs``       a scheduled pass over leases, FunctionCalls and retention (also runs in ``api``);
- ``download_weights`` fills the weights Volume: ``modal run modal_app.py::download_weights``.

Settings: ``LIPSYNC_MODAL_*`` (``lipsync.modal_settings``) at deploy time; the server's ``LIPSYNC_*`` come
from the images' environment and the Secret (``LIPSYNC_API_KEYS``, ``LIPSYNC_SIGNING_SECRET``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import modal

from lipsync.engine.releases import DEFAULT_VERSION
from lipsync.modal_settings import ModalSettings

settings = ModalSettings()

#: Image pins: the versions the project is tested with (each within pyproject.toml's range; a test checks).
API_PACKAGES = [
    "fastapi==0.165.0",
    "python-multipart==0.0.34",
    "pydantic==2.14.4",
    "pydantic-settings==2.16.3",
    "httpx==0.28.1",
    "anyio==4.16.0",
    "typer==0.29.2",
    "rich==15.0.0",
    "av==18.1.1",
    "numpy==1.26.4",
]
GPU_PACKAGES = [
    *API_PACKAGES,
    "torch==2.13.0",
    "diffusers==0.42.1",
    "transformers==5.24.0",
    "safetensors==0.8.0",
    "huggingface_hub==2.4.0",
    "kornia==0.9.0",
    # mediapipe pins this OpenCV wheel; installing the same one keeps exactly one cv2 in the image.
    "opencv-contrib-python==4.11.0.86",
    "mediapipe==0.10.21",
    # The InsightFace backend runs buffalo_l's ONNX models on onnxruntime directly (no insightface package).
    "onnxruntime-gpu==1.31.1",
    "onnx==1.22.0",
]
SOURCES = ("contracts", "lipsync", "mock_server")

_env = {**settings.as_env(), **settings.server_env()}

api_image = (
    modal.Image.debian_slim(python_version=settings.python_version)
    .pip_install(*API_PACKAGES)
    .env(_env)
    .add_local_python_source(*SOURCES)
)
gpu_image = (
    modal.Image.debian_slim(python_version=settings.python_version)
    .apt_install("libgl1", "libglib2.0-0")  # OpenCV and MediaPipe load them at import
    .pip_install(*GPU_PACKAGES)
    .env(_env)
    .add_local_python_source(*SOURCES)
)

with api_image.imports():
    from lipsync.server.modal_backends import (
        ModalBackends,
        ModalTuning,
        create_modal_api,
        load_engine,
        run_job,
        sweep,
    )
    from lipsync.server.settings import ServerSettings

app = modal.App(settings.app_name)

jobs_dict = modal.Dict.from_name(settings.jobs_dict, create_if_missing=True)
data_volume = modal.Volume.from_name(settings.data_volume, create_if_missing=True)
weights_volume = modal.Volume.from_name(settings.weights_volume, create_if_missing=True)
api_secret = modal.Secret.from_name(
    settings.secret_name, required_keys=["LIPSYNC_API_KEYS", "LIPSYNC_SIGNING_SECRET"]
)
hub_secrets = [modal.Secret.from_name(settings.hf_secret_name)] if settings.hf_secret_name else []

gpu_retries = modal.Retries(
    max_retries=settings.gpu_retries,
    backoff_coefficient=settings.retry_backoff,
    initial_delay=settings.retry_initial_delay_s,
    max_delay=settings.retry_max_delay_s,
)


class Wiring:
    """This container's :class:`ModalBackends`, built from the Modal objects above on first use.

    Tests install in-memory fakes instead: ``with modal_app.wiring.use(api_backends, gpu=factory): ...``
    (*gpu* builds the backends of one GPU container: each has its own view of the Volume).
    """

    def __init__(self) -> None:
        self._backends: Any = None
        self._override: tuple[Any, Callable[[], Any] | None] | None = None

    def get(self, role: str = "api") -> ModalBackends:
        if self._override is not None:
            api_backends, gpu_factory = self._override
            return gpu_factory() if role == "gpu" and gpu_factory is not None else api_backends  # type: ignore[no-any-return]
        if self._backends is None:
            self._backends = ModalBackends(
                settings=ServerSettings(),
                jobs=jobs_dict,
                volume=data_volume,
                spawn=lambda job_id: LipSyncWorker().run_job.spawn(job_id).object_id,
                lookup=modal.FunctionCall.from_id,
                current_call=modal.current_function_call_id,
                tuning=ModalTuning(
                    lock_ttl_s=settings.lock_ttl_s,
                    reconcile_s=settings.reconcile_s,
                    cancel_grace_s=settings.cancel_grace_s,
                ),
            )
        return self._backends  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def use(self, api: ModalBackends, *, gpu: Callable[[], ModalBackends] | None = None) -> Iterator[None]:
        previous, self._override = self._override, (api, gpu)
        try:
            yield
        finally:
            self._override = previous


wiring = Wiring()


@app.function(
    image=api_image,
    volumes={settings.data_mount: data_volume},
    secrets=[api_secret],
    cpu=settings.api_cpu,
    memory=settings.api_memory_mib,
    timeout=settings.api_timeout_s,
    min_containers=settings.api_min_containers,
    max_containers=settings.api_max_containers,
    scaledown_window=settings.api_scaledown_window_s,
    enable_memory_snapshot=settings.memory_snapshot,
)
@modal.concurrent(max_inputs=settings.api_max_inputs)
@modal.asgi_app()
def api() -> Any:
    """The WaveSpeed-compatible API (FastAPI) over the Modal backends."""
    return create_modal_api(wiring.get(), gpu_timeout_s=settings.gpu_timeout_s)


@app.cls(
    image=gpu_image,
    gpu=settings.gpus,
    cpu=settings.gpu_cpu,
    memory=settings.gpu_memory_mib,
    volumes={
        settings.weights_mount: weights_volume.with_mount_options(read_only=True),
        settings.data_mount: data_volume,
    },
    secrets=[api_secret],
    timeout=settings.gpu_timeout_s,
    startup_timeout=settings.gpu_startup_timeout_s,
    retries=gpu_retries,
    min_containers=settings.gpu_min_containers,
    max_containers=settings.gpu_max_containers,
    buffer_containers=settings.gpu_buffer_containers or None,
    scaledown_window=settings.gpu_scaledown_window_s,
    # CPU memory snapshots only (imports); GPU snapshots are experimental on Modal and stay off.
    enable_memory_snapshot=settings.memory_snapshot,
)
class LipSyncWorker:
    """One GPU container: the models load once, then each call runs one job."""

    @modal.enter(snap=settings.memory_snapshot)
    def import_engine(self) -> None:
        """torch, diffusers, transformers, PyAV, OpenCV: before the snapshot when snapshots are on."""
        import lipsync.pipeline  # noqa: F401

    @modal.enter()
    def load(self) -> None:
        self.backends = wiring.get("gpu")
        self.engine = load_engine(self.backends)

    @modal.method()
    def run_job(self, job_id: str) -> dict[str, Any]:
        report = run_job(job_id, backends=self.backends, engine=self.engine)
        if report.stuck and not modal.is_local():
            # The engine thread ignored cancel and timeout and cannot be stopped from here: leave, so Modal
            # replaces this container (the job already ended as timed out).
            os._exit(1)
        return report.as_dict()


@app.function(
    image=api_image,
    volumes={settings.data_mount: data_volume},
    secrets=[api_secret],
    timeout=600,
    schedule=modal.Period(minutes=settings.sweep_minutes) if settings.sweep_minutes else None,
)
def sweep_jobs() -> dict[str, int]:
    """Expired leases, FunctionCalls that ended without an outcome, retention (even with no API up)."""
    return sweep(wiring.get(), gpu_timeout_s=settings.gpu_timeout_s)


@app.function(
    image=gpu_image,
    volumes={settings.weights_mount: weights_volume},
    secrets=hub_secrets,
    timeout=settings.download_timeout_s,
)
def download_weights(
    version: str = DEFAULT_VERSION, face_models: bool = True, tiny: bool = False
) -> list[str]:
    """Fill the weights Volume (pinned revisions, sha256-checked). ``--tiny``: random development weights
    (set ``LIPSYNC_FACE_DETECTOR=mediapipe`` in the Secret to run them)."""
    from lipsync.engine.weights import download_weights as fetch
    from lipsync.engine.weights import write_tiny_weights

    if tiny:
        layout = write_tiny_weights(settings.weights_mount, version)
        files = layout.engine_files()
    else:
        layout = fetch(version, settings.weights_mount, include_face_models=face_models, log=print)
        files = layout.engine_files() + (layout.face_model_files() if face_models else [])
    weights_volume.commit()
    return [str(path) for path in files]
