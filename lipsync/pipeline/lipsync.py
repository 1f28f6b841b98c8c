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
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lipsync.errors import InputError
from lipsync.pipeline.driver import Job
from lipsync.pipeline.inputs import CheckedInputs, check_inputs
from lipsync.pipeline.options import OnNoFace, RunOptions
from lipsync.pipeline.progress import ProgressCallback, ProgressEvent, StageTimer
from lipsync.pipeline.timeline import FPS, LoopMode
from lipsync.pipeline.tuning import DEFAULT_PRESET, EngineTuning, PipelineKind, ThroughputOptions

if TYPE_CHECKING:
    from lipsync.engine.weights import EngineModels
    from lipsync.media.faces import FaceDetector
    from lipsync.media.io import MediaLimits

__all__ = ["VERSIONS", "LipSync", "RunResult"]

VERSIONS = ("1.5", "1.6")
FaceDetectorName = Literal["insightface", "mediapipe"]


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
        version: str = "1.6",
        device: str = "auto",
        dtype: str = "auto",
        face_detector: FaceDetectorName | str = "insightface",
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
        version = str(version).strip().removeprefix("v")
        if version not in VERSIONS:
            raise InputError(
                f"version must be one of {', '.join(VERSIONS)}; got {version!r}", field="model_version"
            )
        if face_detector not in ("insightface", "mediapipe"):
            raise InputError(
                f"face_detector must be insightface or mediapipe; got {face_detector!r}",
                field="face_detector",
            )
        if models is not None and models.version != version:
            raise InputError(
                f"the given models are LatentSync {models.version} but version {version} was asked for",
                field="model_version",
            )
        self.weights_dir = Path(os.fspath(weights_dir)) if weights_dir is not None else None
        self.version = version
        self.device = device
        self.dtype = dtype
        self.face_detector = face_detector
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
            from lipsync.media.faces import create_detector

            if self.face_detector == "insightface":
                layout.check(face_models=True)
            self.detector = create_detector(
                self.face_detector, models_dir=layout.face_models_dir, device=self.models.device.type
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

    def prepare(
        self,
        video: str | os.PathLike[str],
        audio: str | os.PathLike[str],
        out: str | os.PathLike[str] | None = None,
        *,
        seed: int = 1247,
        guidance_scale: float = 1.5,
        inference_steps: int = 20,
        loop_mode: LoopMode = "pingpong",
        on_no_face: OnNoFace = "passthrough",
        deep_cache: bool = False,
        progress: ProgressCallback | None = None,
    ) -> Job:
        """Validate the options and the inputs, load the models if needed, and return the :class:`Job`: its
        :meth:`Job.drive` runs it (``run`` writes the frames; tests and previews can take them)."""
        timer = StageTimer()
        options = RunOptions(
            seed=seed,
            guidance_scale=guidance_scale,
            inference_steps=inference_steps,
            loop_mode=loop_mode,
            on_no_face=on_no_face,
            deep_cache=deep_cache,
        )
        inputs = self.check_inputs(video, audio, out)
        if self.models is None or self.detector is None:
            if progress is not None:
                progress(ProgressEvent("load", 0, 0))
            with timer("load"):
                self.load()
        assert self.models is not None and self.detector is not None
        models = self.tuning.job_models(self.models)
        return Job(models, self.detector, inputs, options, timer=timer, progress=progress)

    def run(
        self,
        video: str | os.PathLike[str],
        audio: str | os.PathLike[str],
        out: str | os.PathLike[str],
        *,
        seed: int = 1247,
        guidance_scale: float = 1.5,
        inference_steps: int = 20,
        loop_mode: LoopMode = "pingpong",
        on_no_face: OnNoFace = "passthrough",
        deep_cache: bool = False,
        progress: ProgressCallback | None = None,
    ) -> RunResult:
        """Lip-sync *video* to *audio* into *out* (MP4: H.264 CRF 18 + AAC, 25 fps, the video's size).

        Options and inputs are validated before any work (typed :mod:`lipsync.errors`); the output file
        appears atomically, nothing is left behind on failure. *progress* receives :class:`ProgressEvent` s
        and may raise (e.g. :class:`~lipsync.errors.JobCancelled`) to abort the run.
        """
        from lipsync.media.io import VideoWriter

        started = time.perf_counter()
        job = self.prepare(
            video,
            audio,
            out,
            seed=seed,
            guidance_scale=guidance_scale,
            inference_steps=inference_steps,
            loop_mode=loop_mode,
            on_no_face=on_no_face,
            deep_cache=deep_cache,
            progress=progress,
        )
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
        )
