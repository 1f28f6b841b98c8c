"""The real engine behind the server's ``Engine`` protocol: ``lipsync.LipSync``, loaded once per worker.

``model_version`` is a per-request option in the API but a load-time choice of ``LipSync`` (it selects the
checkpoint), so the adapter keeps the pipeline for the version last asked for and reloads only when a job
asks for the other one. torch is imported on the first job, inside the worker, never by the API process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from contracts import RunOptions
from lipsync.engine.releases import DEFAULT_VERSION
from lipsync.server.interfaces import Engine, ProgressCallback

__all__ = [
    "ImportedEngineFactory",
    "LipSyncEngine",
    "LipSyncEngineFactory",
    "PipelineFactory",
    "engine_factory_from_settings",
]

#: Builds a loaded ``lipsync.LipSync``-like pipeline: ``factory(weights_dir, version=, device=[, face_detector=])``.
PipelineFactory = Callable[..., Any]


def _load_lipsync(weights_dir: Path | None, **kwargs: Any) -> Any:
    from lipsync import LipSync

    return LipSync(weights_dir, **kwargs).load()


class LipSyncEngine:
    """``pipeline_factory`` is the seam tests use to record what reaches ``LipSync.run`` without weights."""

    def __init__(
        self,
        *,
        device: str,
        weights_dir: Path | None = None,
        default_version: str = DEFAULT_VERSION,
        face_detector: str | None = None,
        pipeline_factory: PipelineFactory = _load_lipsync,
    ) -> None:
        self.device = device
        self.weights_dir = weights_dir
        self.default_version = default_version
        self.face_detector = face_detector
        self.pipeline_factory = pipeline_factory
        self._version: str | None = None
        self._pipeline: Any = None

    def pipeline(self, version: str) -> Any:
        """The loaded ``LipSync`` for *version* (loading it, and dropping another version's, if needed)."""
        if self._pipeline is None or self._version != version:
            if self._pipeline is not None:
                self._pipeline.close()
                self._pipeline = None
            kwargs: dict[str, Any] = {"version": version, "device": self.device}
            if self.face_detector is not None:
                kwargs["face_detector"] = self.face_detector
            self._pipeline = self.pipeline_factory(self.weights_dir, **kwargs)
            self._version = version
        return self._pipeline

    def run(
        self,
        video_path: str | Path,
        audio_path: str | Path,
        out_path: str | Path,
        options: RunOptions,
        progress: ProgressCallback | None = None,
    ) -> Any:
        # Records written before the version was fixed at submit may leave it unset: the default decides.
        version = (
            options.model_version if "model_version" in options.model_fields_set else self.default_version
        )
        return self.pipeline(version).run(video_path, audio_path, out_path, options, progress=progress)


class LipSyncEngineFactory:
    """Builds a :class:`LipSyncEngine` for a device (picklable, so it can be sent to a worker process)."""

    def __init__(
        self,
        weights_dir: Path | None = None,
        version: str = DEFAULT_VERSION,
        face_detector: str | None = None,
    ) -> None:
        self.weights_dir = weights_dir
        self.version = version
        self.face_detector = face_detector

    @classmethod
    def from_settings(cls, settings: Any) -> LipSyncEngineFactory:
        return cls(settings.weights_dir, settings.model_version, settings.face_detector)

    def __call__(self, device: str) -> Engine:
        engine = LipSyncEngine(
            device=device,
            weights_dir=self.weights_dir,
            default_version=self.version,
            face_detector=self.face_detector,
        )
        # Load the weights now (workers build their engine at start-up), so a missing checkpoint shows in
        # the log at once and the first job's timings do not include loading.
        engine.pipeline(self.version)
        return engine


class ImportedEngineFactory:
    """An engine factory named by an import string ``package.module:callable`` (``LIPSYNC_ENGINE_FACTORY``).

    Only the string travels to worker processes; the callable is imported there.
    """

    def __init__(self, target: str) -> None:
        module, sep, attr = target.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"engine factory must look like 'package.module:callable', got {target!r}")
        self.target = target

    def __call__(self, device: str) -> Engine:
        import importlib

        module, _, attr = self.target.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        engine: Engine = factory(device)
        return engine


def engine_factory_from_settings(settings: Any) -> ImportedEngineFactory | LipSyncEngineFactory:
    if settings.engine_factory:
        return ImportedEngineFactory(settings.engine_factory)
    return LipSyncEngineFactory.from_settings(settings)
