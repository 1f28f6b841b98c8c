"""``LipSync``: load the models once, then stream jobs through media + engine chunk by chunk.

    from lipsync import LipSync
    ls = LipSync(version="1.6")                      # weights from $LIPSYNC_WEIGHTS_DIR (see docs/pipeline.md)
    result = ls.run("talk.mp4", "speech.wav", "out.mp4", seed=1247, guidance_scale=1.5)

Memory is bounded by one chunk: 16 output frames are decoded, aligned, diffused, pasted back and encoded
before the next chunk is decoded; a ping-pong pass re-decodes source frames instead of keeping them. Only
per-frame scalars (the alignment matrices) and the audio features grow with the input's length.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lipsync.engine.releases import DEFAULT_VERSION, VERSIONS, normalise_version
from lipsync.errors import InputError
from lipsync.media.faces.base import FaceFilter
from lipsync.media.faces.registry import DEFAULT_DETECTOR, DETECTOR_NAMES, get_detector_spec
from lipsync.pipeline.driver import Job
from lipsync.pipeline.estimate import describe_plan
from lipsync.pipeline.inputs import CheckedInputs, check_inputs
from lipsync.pipeline.options import RunOptions, resolve_options
from lipsync.pipeline.progress import ProgressCallback, ProgressEvent, StageTimer
from lipsync.pipeline.timeline import FPS
from lipsync.pipeline.tuning import DEFAULT_PRESET, EngineTuning, PipelineKind, ThroughputOptions

if TYPE_CHECKING:
    from lipsync.engine.weights import EngineModels
    from lipsync.media.faces import FaceDetector
    from lipsync.media.faces.selection import FaceSelection
    from lipsync.media.io import MediaLimits

__all__ = ["VERSIONS", "LipSync", "RunResult"]

#: One INFO line per run before it starts: what will be generated and, on a CPU, about how long it takes.
log = logging.getLogger("lipsync.run")


@dataclass(frozen=True)
class RunResult:
    """What a run produced. ``timings_ms``: wall time per stage (see ``progress.STAGES``); the counts come
    from the run's :class:`~lipsync.pipeline.driver.RunCounters`."""

    out: Path
    frames: int
    duration_s: float
    timings_ms: dict[str, float]
    frames_without_face: int
    wall_s: float
    chunks: int = 0
    source_frames: int = 0
    decoded_frames: int = 0
    #: Which face was synced and how (the ``face`` option: mode, track, score for auto, or the fallback):
    #: a ``contracts.FaceReport`` as a JSON dict, what the API reports as a prediction's ``face``.
    face: dict[str, Any] = field(default_factory=lambda: {"mode": "largest"})

    def ms_per_frame(self) -> dict[str, float]:
        n = max(self.frames, 1)
        return {stage: ms / n for stage, ms in self.timings_ms.items()}


class LipSync:
    """The lip-sync pipeline. Not re-entrant: one :meth:`run` at a time per object (the face detector and
    aligner hold per-video state); share the loaded :class:`EngineModels` between objects instead.

    ``models``: already loaded engine models (a server worker or a Modal container loads them once);
    ``detector``: an already built face detector. Without them both are loaded on the first :meth:`run`, after
    the inputs have been checked, so a bad file fails before seconds of weight loading.

    Throughput (docs/throughput.md): ``pipeline`` "staged" (default: the driver's threaded mode, stages overlap
    on threads, same frames) or "sequential" (its inline mode); ``chunk_batch`` chunks per U-Net call ("auto" or a number); ``compile`` torch.compile the
    U-Net, warmed up in :meth:`load`; ``channels_last`` VAE in NHWC on CUDA; ``preset`` the x264 preset.
    """

    def __init__(
        self,
        weights_dir: str | os.PathLike[str] | None = None,
        *,
        version: str = DEFAULT_VERSION,
        device: str = "auto",
        dtype: str = "auto",
        face_detector: str = DEFAULT_DETECTOR,
        models: EngineModels | None = None,
        detector: FaceDetector | None = None,
        limits: MediaLimits | None = None,
        pipeline: PipelineKind = "staged",
        chunk_batch: int | Literal["auto"] = "auto",
        compile: bool = False,
        channels_last: bool = False,
        preset: str = DEFAULT_PRESET,
    ) -> None:
        #: Throughput settings (validated here, before anything loads) and the model tuning they imply.
        self.tuning = EngineTuning(
            ThroughputOptions(
                pipeline=pipeline,
                chunk_batch=chunk_batch,
                compile=compile,
                channels_last=channels_last,
                preset=preset,
            )
        )
        release = normalise_version(version)
        if release is None:
            raise InputError(
                f"version must be one of {', '.join(VERSIONS)}; got {version!r}", field="model_version"
            )
        version = release
        try:
            detector_spec = get_detector_spec(face_detector)
        except ValueError as exc:
            raise InputError(
                f"face_detector must be one of {', '.join(DETECTOR_NAMES)}; got {face_detector!r}",
                field="face_detector",
            ) from exc
        if models is not None and models.version != version:
            raise InputError(
                f"the given models are LatentSync {models.version} but version {version} was asked for",
                field="model_version",
            )
        self.weights_dir = Path(os.fspath(weights_dir)) if weights_dir is not None else None
        self.version = version
        self.device = device
        self.dtype = dtype
        self.face_detector = detector_spec.name
        self.detector_spec = detector_spec
        self.limits = limits
        self.models = models
        self.detector = detector
        self._owns_detector = False

    # -- loading ---------------------------------------------------------------------------------------------

    def load(self) -> LipSync:
        """Load the weights and the face detector now (otherwise the first run does it)."""
        from lipsync.engine.weights import WeightsLayout, default_weights_dir, load_engine_models

        layout = WeightsLayout(self.weights_dir or default_weights_dir(), self.version)
        if self.models is None:
            self.models = load_engine_models(layout, self.device, self.dtype)
        if self.detector is None:
            spec = self.detector_spec
            layout.check(assets=spec.weights, hint=spec.missing_weights_hint())
            self.detector = spec.factory(
                models_dir=layout.face_models_dir, device=self.models.device.type, face_filter=FaceFilter()
            )
            self._owns_detector = True
        self.tuning.warm_up(self.models)  # compile=True: compile the job shapes now, not inside a job
        return self

    def close(self) -> None:
        """Release the face detector if this object built it (an injected one belongs to the caller)."""
        if self.detector is not None and self._owns_detector:
            self.detector.close()
            self.detector = None
            self._owns_detector = False

    def __enter__(self) -> LipSync:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ---------------------------------------------------------------------------------------------

    def check_inputs(
        self,
        video: str | os.PathLike[str],
        audio: str | os.PathLike[str],
        out: str | os.PathLike[str] | None = None,
    ) -> CheckedInputs:
        """Probe both inputs (typed errors naming "video"/"audio"); see :func:`lipsync.pipeline.check_inputs`."""
        return check_inputs(video, audio, out, limits=self.limits)

    def run_options(self, options: RunOptions | None = None, /, **overrides: Any) -> RunOptions:
        """*options* with *overrides*, validated (InputError naming the field). ``model_version`` is chosen
        when the ``LipSync`` is built; a run that names a different one fails instead of running the wrong
        checkpoint."""
        resolved = resolve_options(options, **overrides)
        if "model_version" in resolved.model_fields_set and resolved.model_version != self.version:
            raise InputError(
                f"this LipSync holds LatentSync {self.version}; model_version {resolved.model_version} needs "
                f"LipSync(version={resolved.model_version!r})",
                field="model_version",
            )
        return resolved

    def prepare(
        self,
        video: str | os.PathLike[str],
        audio: str | os.PathLike[str],
        out: str | os.PathLike[str] | None = None,
        options: RunOptions | None = None,
        *,
        progress: ProgressCallback | None = None,
        **overrides: Any,
    ) -> Job:
        """Validate the options and the inputs, load the models if needed, and return the :class:`Job`: its
        :meth:`Job.drive` runs it (``run`` writes the frames; tests and previews can take them).

        *options* and *overrides* as in :meth:`run`."""
        timer = StageTimer()
        options = self.run_options(options, **overrides)
        inputs = self.check_inputs(video, audio, out)
        if self.models is None or self.detector is None:
            if progress is not None:
                progress(ProgressEvent("load", 0, 0))
            with timer("load"):
                self.load()
        assert self.models is not None and self.detector is not None
        models = self.tuning.job_models(self.models)
        selection = None
        if options.face != "largest":  # point / boxes / auto: one pass over the video decides (docs/faces.md)
            with timer("detect"):
                selection = _face_selection(options, inputs, self.detector)
        job = Job(models, self.detector, inputs, options, timer=timer, progress=progress, selection=selection)
        log.info(
            "%s",
            describe_plan(
                job.plan.num_frames,
                options,
                device=str(self.models.device),
                tiny=bool(self.models.tiny),
                resolution=job.resolution,
            ),
        )
        return job

    def run(
        self,
        video: str | os.PathLike[str],
        audio: str | os.PathLike[str],
        out: str | os.PathLike[str],
        options: RunOptions | None = None,
        *,
        progress: ProgressCallback | None = None,
        **overrides: Any,
    ) -> RunResult:
        """Lip-sync *video* to *audio* into *out* (MP4: H.264 CRF 18 + AAC, 25 fps, the video's size).

        *options* is a ``contracts.RunOptions`` (default: the reference's values); *overrides* are its
        fields as keywords (``seed=7, inference_steps=10``), applied on top. Both are validated with the
        local ranges (e.g. 1 step for a smoke test). Options and inputs are validated before any work (typed
        :mod:`lipsync.errors`); the output file appears atomically, nothing is left behind on failure.
        *progress* receives :class:`ProgressEvent` s and may raise (e.g.
        :class:`~lipsync.errors.JobCancelled`) to abort the run.
        """
        from lipsync.media.io import VideoWriter

        started = time.perf_counter()
        job = self.prepare(video, audio, out, options, progress=progress, **overrides)
        out_path = Path(os.fspath(out))
        inputs = job.inputs
        run = job.drive(self.tuning.driver_config(job.models, job.options))
        with (
            VideoWriter(
                out_path,
                inputs.width,
                inputs.height,
                fps=FPS,
                audio=job.audio_track,
                preset=self.tuning.options.preset,
            ) as writer,
            contextlib.closing(run.frames()) as frames,  # stops the stage threads on any error
        ):
            for frame in frames:
                with job.timer("encode"):
                    writer.write(frame)
            with job.timer("encode"):
                writer.close()
        run.progress.done()
        counters = run.counters
        return RunResult(
            out=out_path,
            frames=writer.frames_written,
            duration_s=writer.frames_written / FPS,
            timings_ms=job.timer.snapshot(),
            frames_without_face=counters.frames_without_face,
            wall_s=time.perf_counter() - started,
            chunks=job.plan.chunks_total,
            source_frames=inputs.num_video_frames,
            decoded_frames=counters.decoded_frames,
            face=job.face_summary,
        )


def _face_selection(options: RunOptions, inputs: CheckedInputs, detector: FaceDetector) -> FaceSelection:
    """Resolve the ``face`` option for these inputs (a pass over the video for a point or auto)."""
    from lipsync.media.faces.selection import prepare_selection
    from lipsync.media.io import iter_frames_25fps, load_audio_16k

    def original_audio() -> Any:  # the video's own sound track: whose voice it is decides "auto"
        return load_audio_16k(inputs.video, field="video") if inputs.video_info.has_audio else None

    return prepare_selection(
        options.face,
        num_frames=inputs.num_video_frames,
        frames=lambda: iter_frames_25fps(inputs.video, plan=inputs.frame_plan),
        detector=detector,
        original_audio=original_audio,
    )
