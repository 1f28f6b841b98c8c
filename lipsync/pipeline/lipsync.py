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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from lipsync.engine.releases import DEFAULT_VERSION, VERSIONS, normalise_version
from lipsync.errors import InputError, NoFaceDetected
from lipsync.media.faces.base import FaceFilter
from lipsync.media.faces.registry import DEFAULT_DETECTOR, DETECTOR_NAMES, get_detector_spec
from lipsync.pipeline.frames import FrameSource
from lipsync.pipeline.inputs import CheckedInputs, check_inputs
from lipsync.pipeline.options import RunOptions, resolve_options
from lipsync.pipeline.progress import ProgressCallback, ProgressEvent, StageTimer
from lipsync.pipeline.stages import (
    AudioWindows,
    FaceTrack,
    decode_faces,
    denoise,
    encode_latents,
    engine_errors,
    faces_to_pixels,
    mask_tensor,
    paste_faces,
)
from lipsync.pipeline.throughput import DEFAULT_PRESET, EngineTuning, PipelineKind, ThroughputOptions
from lipsync.pipeline.timeline import FPS, Timeline, plan_timeline

if TYPE_CHECKING:
    from lipsync.engine.weights import EngineModels
    from lipsync.media.align import AlignedFace
    from lipsync.media.faces import FaceDetector
    from lipsync.media.io import MediaLimits

__all__ = ["CHUNK_FRAMES", "VERSIONS", "Chunk", "Job", "LipSync", "RunResult", "iter_chunks"]

#: Frames per U-Net call (the reference's ``num_frames``); the last chunk may be shorter.
CHUNK_FRAMES = 16


@dataclass(frozen=True)
class RunResult:
    """What a run produced. ``timings_ms``: wall time per stage (see ``progress.STAGES``)."""

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


@dataclass(frozen=True)
class Chunk:
    """Output frames ``start .. stop-1`` (the reference's 16-frame grid)."""

    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def iter_chunks(num_frames: int, size: int = CHUNK_FRAMES) -> Iterator[Chunk]:
    for index, start in enumerate(range(0, num_frames, size)):
        yield Chunk(index, start, min(start + size, num_frames))


class LipSync:
    """The lip-sync pipeline. Not re-entrant: one :meth:`run` at a time per object (the face detector and
    aligner hold per-video state); share the loaded :class:`EngineModels` between objects instead.

    ``models``: already loaded engine models (a server worker or a Modal container loads them once);
    ``detector``: an already built face detector. Without them both are loaded on the first :meth:`run`, after
    the inputs have been checked, so a bad file fails before seconds of weight loading.

    Throughput (docs/throughput.md): ``pipeline`` "staged" (default; stages overlap on threads, same frames) or
    "sequential"; ``chunk_batch`` chunks per U-Net call ("auto" or a number); ``compile`` torch.compile the
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
        """Validate the options and the inputs, load the models if needed, and return the :class:`Job` whose
        :meth:`Job.frames` yields the output frames (``run`` writes them; tests and previews can take them).

        *options* and *overrides* as in :meth:`run`."""
        timer = StageTimer()
        options = self.run_options(options, **overrides)
        emit = progress or _ignore
        inputs = self.check_inputs(video, audio, out)
        if self.models is None or self.detector is None:
            emit(ProgressEvent("load", 0, 0))
            with timer("load"):
                self.load()
        assert self.models is not None and self.detector is not None
        models = self.tuning.job_models(self.models)
        return Job(models, self.detector, inputs, options, timer=timer, progress=emit)

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
        preset = self.tuning.options.preset
        with (
            VideoWriter(
                out_path, inputs.width, inputs.height, fps=FPS, audio=job.audio_track, preset=preset
            ) as writer,
            contextlib.closing(self.tuning.frames(job)) as frames,  # stops the stage threads on any error
        ):
            for frame in frames:
                with job.timer("encode"):
                    writer.write(frame)
            with job.timer("encode"):
                writer.close()
        job.emit(ProgressEvent("done", job.timeline.num_frames, job.timeline.num_frames))
        return RunResult(
            out=out_path,
            frames=writer.frames_written,
            duration_s=writer.frames_written / FPS,
            timings_ms=job.timer.snapshot(),
            frames_without_face=job.frames_without_face,
            wall_s=time.perf_counter() - started,
            chunks=job.chunks_total,
            source_frames=inputs.num_video_frames,
            decoded_frames=job.decoded_frames,
        )


def _ignore(event: ProgressEvent) -> None:
    return None


class Job:
    """One run: the plan (timeline, audio track) and the per-chunk stages, driven by :meth:`frames`.

    Each stage is a method over explicit inputs (decode -> detect/align -> VAE encode -> sample -> VAE decode
    -> paste); the encode stage is the caller's (:meth:`LipSync.run` feeds a :class:`VideoWriter`).
    """

    def __init__(
        self,
        models: EngineModels,
        detector: FaceDetector,
        inputs: CheckedInputs,
        options: RunOptions,
        *,
        timer: StageTimer | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        from lipsync.engine.sampler import SamplerConfig
        from lipsync.media.align import FaceAligner
        from lipsync.media.mask import fixed_mask

        self.models = models
        self.inputs = inputs
        self.options = options
        self.timer = timer or StageTimer()
        self.emit = progress or _ignore
        self.timeline: Timeline = plan_timeline(
            inputs.num_video_frames, inputs.audio_frames, int(inputs.waveform.shape[0]), options.loop_mode
        )
        self.resolution = int(models.unet_config.resolution)
        self.mask = mask_tensor(fixed_mask(self.resolution))
        self.sampler = SamplerConfig(
            num_inference_steps=options.inference_steps,
            guidance_scale=float(options.guidance_scale),
            deep_cache=options.deep_cache,
        )
        self.track = FaceTrack(
            detector,
            FaceAligner(self.resolution),
            inputs.num_video_frames,
            on_no_face=options.on_no_face,
            timer=self.timer,
        )
        self.chunks_total = -(-self.timeline.num_frames // CHUNK_FRAMES)
        self.frames_done = 0
        self.frames_without_face = 0
        self.decoded_frames = 0
        self.first_pass_frames = min(self.timeline.num_frames, inputs.num_video_frames)
        waveform = inputs.waveform
        if self.timeline.pad_audio_to > waveform.shape[0]:
            waveform = np.pad(waveform, (0, self.timeline.pad_audio_to - waveform.shape[0]))
        #: The waveform the features are computed from (padded with silence in ``silence`` mode).
        self.waveform = waveform
        #: The output's sound track (16 kHz mono float32).
        self.audio_track = waveform[: self.timeline.audio_samples]

    # -- stages ----------------------------------------------------------------------------------------------

    def audio_windows(self) -> AudioWindows:
        """Whisper windows for every output frame: ``windows[frame_indices]`` -> ``(k, 50, C)`` (cut on demand)."""
        encoder = self.models.audio_encoder
        with self.timer("audio"), engine_errors("audio encoding"):
            return AudioWindows(encoder.features(self.waveform), self.timeline.num_frames)

    def frame_source(self) -> FrameSource:
        """A decoder over the video's 25-fps frames, sized for this timeline: one chunk of frames when no
        source frame is shown twice, a window for ping-pong/loop replays otherwise (see ``FrameSource``)."""
        from lipsync.media.io import iter_frames_25fps

        plan = self.inputs.frame_plan
        window = 3 * CHUNK_FRAMES if self.timeline.repeats_video else CHUNK_FRAMES
        return FrameSource(
            str(self.inputs.video),
            self.inputs.num_video_frames,
            lambda path, start, count: iter_frames_25fps(
                path, start_frame=start, max_frames=count, plan=plan
            ),
            cache_frames=window,
            backward_block=min(2 * CHUNK_FRAMES, window),
        )

    def decode(self, source: FrameSource, chunk: Chunk) -> tuple[list[int], list[np.ndarray]]:
        """The source frames shown in *chunk*, and their indices on the 25-fps source timeline."""
        indices = self.timeline.source_indices(chunk.start, chunk.stop)
        with self.timer("decode"):
            frames = source.get(indices)
        return indices, frames

    def align(self, frames: list[np.ndarray], indices: list[int]) -> list[AlignedFace | None]:
        """Detect (first visit) or re-warp (replay) each frame's face; None where there is none."""
        aligned = self.track.align(frames, indices)
        self._check_any_face()
        return aligned

    def sync_faces(
        self,
        chunk: Chunk,
        frames: list[np.ndarray],
        aligned: list[AlignedFace | None],
        windows: AudioWindows,
        init_noise: torch.Tensor,
        generator: torch.Generator,
    ) -> list[np.ndarray]:
        """VAE encode -> sample -> VAE decode -> paste for the frames of *chunk* that have a face.

        Frames without a face are left out of the U-Net batch (the chunk shrinks, which the U-Net supports)
        and returned unchanged.
        """
        positions = [k for k, a in enumerate(aligned) if a is not None]
        if not positions:
            return list(frames)
        faces_in = [a for a in aligned if a is not None]
        models = self.models
        self._event("vae_encode", chunk)
        with self.timer("vae_encode"):
            pixels = faces_to_pixels([a.face_rgb for a in faces_in])
            latents = encode_latents(models.vae, pixels, self.mask, generator)
        audio = windows[[chunk.start + k for k in positions]]
        steps = self.options.inference_steps
        total = self.timeline.num_frames

        def on_step(step: int, _t: int, _latents: torch.Tensor) -> None:
            self.emit(
                ProgressEvent(
                    "diffuse", self.frames_done, total, chunk.index, self.chunks_total, step + 1, steps
                )
            )

        with self.timer("diffuse"):
            sampled = denoise(models.unet, latents, audio, init_noise, self.sampler, on_step)
        self._event("vae_decode", chunk)
        with self.timer("vae_decode"):
            faces = decode_faces(models.vae, sampled, latents, self.mask)
        self._event("paste", chunk)
        out = list(frames)
        with self.timer("paste"):
            pasted = paste_faces([frames[k] for k in positions], faces, faces_in)
        for k, frame in zip(positions, pasted, strict=True):
            out[k] = frame
        return out

    # -- driver ----------------------------------------------------------------------------------------------

    def frames(self) -> Iterator[np.ndarray]:
        """Run the chunk loop, yielding the output frames (RGB uint8, the video's size) in order."""
        from lipsync.engine.sampler import prepare_init_noise

        models = self.models
        self._event("audio", None)
        windows = self.audio_windows()
        # One generator for the run, consumed as the reference consumes its global RNG after set_seed: the
        # initial noise first (one (1, 4, 1, h, w) draw shared by every frame), then per chunk the
        # masked-image and the reference VAE samples.
        generator = torch.Generator(device=models.device).manual_seed(self.options.seed)
        latent_hw = (self.resolution // models.vae.downsample_factor,) * 2
        init_noise = prepare_init_noise(
            latent_hw, 1, generator=generator, device=models.device, dtype=models.dtype
        )
        source = self.frame_source()
        try:
            for chunk in iter_chunks(self.timeline.num_frames):
                self._event("decode", chunk)
                indices, frames = self.decode(source, chunk)
                self._event("detect", chunk)
                aligned = self.align(frames, indices)
                self.frames_without_face += sum(a is None for a in aligned)
                out_frames = self.sync_faces(chunk, frames, aligned, windows, init_noise, generator)
                self._event("encode", chunk)
                yield from out_frames
                self.frames_done = chunk.stop
        finally:
            self.decoded_frames = source.frames_decoded
            source.close()

    def _check_any_face(self) -> None:
        """A video without any face fails as soon as its first pass is over (passthrough included)."""
        if self.track.frames_seen >= self.first_pass_frames and self.track.faces_found == 0:
            raise NoFaceDetected(
                f"No face was found in any of the {self.first_pass_frames} frames of the video. Use a video "
                "with a clearly visible face.",
                frame_index=0,
                timestamp_s=0.0,
                field="video",
            )

    def _event(self, stage: str, chunk: Chunk | None) -> None:
        self.emit(
            ProgressEvent(
                stage,
                self.frames_done,
                self.timeline.num_frames,
                chunk.index if chunk else 0,
                self.chunks_total,
            )
        )
