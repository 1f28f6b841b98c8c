"""The real engine behind the server's ``Engine`` protocol: ``lipsync.LipSync``, loaded once per worker.

``model_version`` is a per-request option in the API but a load-time choice of ``LipSync`` (it selects the
checkpoint), so the adapter keeps the pipeline for the version last asked for and reloads only when a job
asks for the other one. torch is imported on the first job, inside the worker, never by the API process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lipsync.engine.releases import DEFAULT_VERSION
from lipsync.server.interfaces import Engine, ProgressCallback

__all__ = ["ImportedEngineFactory", "LipSyncEngine", "LipSyncEngineFactory", "engine_factory_from_settings"]

#: ``LipSync.run`` keywords that come from the request (``model_version`` is handled here).
_RUN_OPTIONS = ("seed", "guidance_scale", "inference_steps", "loop_mode", "on_no_face")


class LipSyncEngine:
    def __init__(
        self,
        *,
        device: str,
        weights_dir: Path | None = None,
        default_version: str = DEFAULT_VERSION,
        face_detector: str | None = None,
    ) -> None:
        self.device = device
        self.weights_dir = weights_dir
        self.default_version = default_version
        self.face_detector = face_detector
        self._version: str | None = None
        self._pipeline: Any = None

    def pipeline(self, version: str) -> Any:
        """The loaded ``LipSync`` for *version* (loading it, and dropping another version's, if needed)."""
        if self._pipeline is None or self._version != version:
            from lipsync import LipSync

            if self._pipeline is not None:
                self._pipeline.close()
                self._pipeline = None
            kwargs: dict[str, Any] = {"version": version, "device": self.device}
            if self.face_detector is not None:
                kwargs["face_detector"] = self.face_detector
            self._pipeline = LipSync(self.weights_dir, **kwargs).load()
            self._version = version
        return self._pipeline

    def run(
        self,
        video_path: str | Path,
        audio_path: str | Path,
        out_path: str | Path,
        *,
        progress: ProgressCallback | None = None,
        **options: Any,
    ) -> Any:
        version = str(options.get("model_version") or self.default_version)
        kwargs = {name: options[name] for name in _RUN_OPTIONS if name in options}
        return self.pipeline(version).run(video_path, audio_path, out_path, progress=progress, **kwargs)


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
