"""The one pipeline driver: a prepared :class:`Job`'s chunks through the stages, threaded or inline.

    decode -> detect/align -> VAE encode -> U-Net sampling (chunk batches) -> VAE decode -> paste -> consumer

Each stage is a transform over an iterator of chunks (:class:`Chunk` work items). The two modes chain the
same transforms:

``threaded``  every stage on its own thread with bounded channels between them (:class:`StageRunner`), so
              decoding, alignment, paste-back and the caller's encoder overlap the model. On CUDA the three
              model stages are three workers (their CPU work, launches and copies overlap the device); on a
              CPU device they share one worker, since they would only compete for the same cores.
``inline``    the same transforms chained as generators on the caller's thread, one chunk at a time.

The consumer is the caller iterating :meth:`PipelineRun.frames` (``LipSync.run`` feeds the H.264 encoder).
The one stage that draws random numbers (the VAE encoder's latent samples) is a single transform, so the
RNG is consumed in the same order in both modes: with ``chunk_batch=1`` the frames are identical (at equal
torch intra-op thread counts: some CPU kernels round differently with another count); with larger batches
the U-Net sees several chunks per call, equal up to float rounding.

What the run counted (frames without a face, source frames decoded) is returned in :class:`RunCounters`,
each field written by one stage only; progress events come from one :class:`ProgressReporter`.

Memory: at most :attr:`PipelineRun.in_flight_bound` chunks exist at once (each holds its 16 decoded frames),
whatever the video's length; a slow encoder stalls decoding instead of letting frames pile up.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from lipsync.engine.sampler import ChunkInputs, SamplerConfig, StepCallback, prepare_init_noise, sample_chunks
from lipsync.errors import NoFaceDetected
from lipsync.media.align import FaceAligner
from lipsync.media.faces.selection import FaceSelection
from lipsync.media.mask import fixed_mask
from lipsync.pipeline.frames import Frame, FrameSource
from lipsync.pipeline.gpu_timer import GpuTimer
from lipsync.pipeline.inputs import CheckedInputs, Waveform
from lipsync.pipeline.options import RunOptions
from lipsync.pipeline.plan import RunPlan, plan_run
from lipsync.pipeline.progress import ProgressCallback, ProgressEvent, ProgressReporter, StageTimer
from lipsync.pipeline.staged import Stage, StageRunner, Transform
from lipsync.pipeline.stages import (
    AudioWindows,
    ChunkLatents,
    FaceTrack,
    decode_faces,
    denoise,
    encode_latents,
    engine_errors,
    faces_to_pixels,
    mask_tensor,
    paste_faces,
)
from lipsync.pipeline.timeline import Chunk, Timeline

if TYPE_CHECKING:
    from lipsync.engine.weights import EngineModels
    from lipsync.media.align import AlignedFace
    from lipsync.media.faces import FaceDetector

__all__ = [
    "DRIVER_MODES",
    "GPU_STAGES",
    "DriverConfig",
    "DriverMode",
    "Job",
    "PipelineRun",
    "RunCounters",
    "RunStats",
]

DriverMode = Literal["threaded", "inline"]
DRIVER_MODES: tuple[DriverMode, ...] = ("threaded", "inline")
#: Stages whose work runs on the model's device.
GPU_STAGES = ("vae_encode", "diffuse", "vae_decode")


def _ignore(event: ProgressEvent) -> None:
    return None


class Job:
    """One prepared run: the models, the checked inputs, the options, the pure :class:`RunPlan`, and the
    per-run state the stages need (the face track, the mask, the sampler settings). Run it once, with
    :meth:`drive` (either mode) or :meth:`frames` (inline)."""

    def __init__(
        self,
        models: EngineModels,
        detector: FaceDetector,
        inputs: CheckedInputs,
        options: RunOptions,
        *,
        timer: StageTimer | None = None,
        progress: ProgressCallback | None = None,
        selection: FaceSelection | None = None,
    ) -> None:
        self.models = models
        #: What the ``face`` option chose and how (``{"mode": "largest"}`` for the reference's choice).
        self.face_summary: dict[str, Any] = (
            selection.summary if selection is not None else {"mode": "largest"}
        )
        self.inputs = inputs
        self.options = options
        self.timer = timer or StageTimer()
        self.emit = progress or _ignore
        self.plan: RunPlan = plan_run(inputs, seed=options.seed, loop_mode=options.loop_mode)
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
            selection=selection,
        )

    @property
    def timeline(self) -> Timeline:
        return self.plan.timeline

    @property
    def audio_track(self) -> Waveform:
        return self.plan.audio_track

    def audio_windows(self) -> AudioWindows:
        """Whisper windows for every output frame: ``windows[frame_indices]`` -> ``(k, 50, C)`` (cut on demand)."""
        with self.timer("audio"), engine_errors("audio encoding"):
            return AudioWindows(self.models.audio_encoder.features(self.plan.waveform), self.plan.num_frames)

    def frame_source(self) -> FrameSource:
        """A decoder over the video's 25-fps frames with the plan's window (see ``FrameSource``)."""
        from lipsync.media.io import iter_frames_25fps

        frame_plan = self.inputs.frame_plan
        return FrameSource(
            str(self.inputs.video),
            self.inputs.num_video_frames,
            lambda path, start, count: iter_frames_25fps(
                path, start_frame=start, max_frames=count, plan=frame_plan
            ),
            cache_frames=self.plan.decode_window,
            backward_block=self.plan.backward_block,
        )

    def drive(self, config: DriverConfig | None = None) -> PipelineRun:
        """The driver for this job (threaded unless *config* says otherwise); iterate its ``frames()``."""
        return PipelineRun(self, config)

    def frames(self) -> Generator[Frame, None, None]:
        """The output frames (RGB uint8, the video's size), in order, computed inline on this thread."""
        return self.drive(DriverConfig(mode="inline")).frames()


@dataclass(frozen=True)
class DriverConfig:
    """``mode``: threaded or inline; ``chunk_batch``: chunks per U-Net call; ``queue_chunks``: chunks each
    channel holds (threaded); ``media_threads``: torch intra-op threads of the media stages (threaded);
    ``model_threads``: of the model stages (None: 1 on CUDA, where they only launch kernels, else the
    caller's count); ``parallel_chunks``: chunks of a batch diffused side by side, each on its own thread
    with ``model_threads // parallel_chunks`` torch threads and exactly the one-chunk call (a small U-Net on a
    CPU: its ops are too small to spread over cores, whole chunks are not); ``split_model``: VAE encode, U-Net
    and VAE decode on three workers (None: on CUDA only);
    ``gpu_timing``: time the model stages with CUDA events; ``no_recompile``: run the U-Net under
    :func:`lipsync.engine.compile.no_recompile` (a compiled U-Net never compiles inside a job)."""

    mode: DriverMode = "threaded"
    chunk_batch: int = 1
    queue_chunks: int = 1
    media_threads: int = 1
    model_threads: int | None = None
    parallel_chunks: int = 1
    split_model: bool | None = None
    gpu_timing: bool = False
    no_recompile: bool = False

    def __post_init__(self) -> None:
        if self.mode not in DRIVER_MODES:
            raise ValueError(f"mode must be one of {', '.join(DRIVER_MODES)}, got {self.mode!r}")
        for name in ("chunk_batch", "queue_chunks", "media_threads", "parallel_chunks"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class RunCounters:
    """What a run counted. Each field has one writer: ``decoded_frames`` the decode stage,
    ``frames_without_face`` the align stage, ``frames_done`` the consumer; read them after the run."""

    frames_done: int = 0
    frames_without_face: int = 0
    decoded_frames: int = 0


@dataclass
class RunStats:
    """How a run went, for benches and tests (complete once ``frames()`` has ended)."""

    mode: DriverMode
    chunk_batch: int
    in_flight_bound: int
    max_in_flight: int = 0
    #: Threaded: most chunks each channel held at once / how often its producer had to wait for room.
    queue_high_water: dict[str, int] = field(default_factory=dict)
    blocked_puts: dict[str, int] = field(default_factory=dict)
    #: Chunks per U-Net call, in order.
    unet_batches: list[int] = field(default_factory=list)
    #: With ``gpu_timing`` on CUDA: device milliseconds per model stage, and of their union (GPU busy).
    gpu_ms: dict[str, float] = field(default_factory=dict)
    gpu_busy_ms: float | None = None


def _on_threads(items: Iterator[_Work], threads: int) -> Iterator[_Work]:
    """Advance *items* with *threads* torch intra-op threads, the count in force restored in between.

    The inline mode's stages share the caller's thread: small media ops with several OpenMP threads each
    wait on one another (on a loaded 2-core machine, align and paste-back took 6-8x longer), while the U-Net
    wants every core. Nested stages each set their own count around their own work.
    """
    while True:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            work = next(items)
        except StopIteration:
            return
        finally:
            torch.set_num_threads(before)
        yield work


@dataclass
class _Work:
    """One chunk on its way through the stages."""

    chunk: Chunk
    indices: list[int]
    frames: list[Frame]
    aligned: list[AlignedFace | None] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    latents: ChunkLatents | None = None
    sampled: torch.Tensor | None = None
    faces: torch.Tensor | None = None


class PipelineRun:
    """Drive a prepared :class:`Job` once; iterate :meth:`frames`. ``counters`` and ``stats`` are complete when
    ``frames()`` has ended; ``runner`` is the :class:`StageRunner` in threaded mode (None inline)."""

    def __init__(self, job: Job, config: DriverConfig | None = None) -> None:
        self.job = job
        self.config = config or DriverConfig()
        self.device = job.models.device
        self.threaded = self.config.mode == "threaded"
        k = self.config.chunk_batch
        self.counters = RunCounters()
        self.runner: StageRunner | None = None
        if self.threaded:
            self.runner = StageRunner(
                self._threaded_stages(), capacity=self.config.queue_chunks, name="lipsync"
            )
            bound = self.runner.in_flight_bound
        else:
            bound = k + 1  # the U-Net stage holds a batch, the consumer one chunk
        self.stats = RunStats(mode=self.config.mode, chunk_batch=k, in_flight_bound=bound)
        self.progress = ProgressReporter(
            job.emit, job.plan.num_frames, job.plan.chunks_total, stages_run_ahead=self.threaded
        )
        self._gpu = GpuTimer(self.device, self.config.gpu_timing)
        self._mask = job.mask.to(self.device)
        self._windows: AudioWindows | None = None
        self._generator: torch.Generator | None = None
        self._init_noise: torch.Tensor | None = None
        self._inline_in_flight = 0

    @property
    def in_flight_bound(self) -> int:
        """Most chunks (of 16 frames) that can exist at once between decoding and the consumer."""
        return self.stats.in_flight_bound

    def _threaded_stages(self) -> list[Stage]:
        config = self.config
        k, q = config.chunk_batch, config.queue_chunks
        media, model_threads = self._thread_counts()
        split = config.split_model if config.split_model is not None else self.device.type == "cuda"
        if split:
            model = [
                # The U-Net stage takes k chunks at a time: its channel holds a whole next batch.
                Stage("vae_encode", self._vae_encode, torch_threads=model_threads, out_capacity=max(q, k)),
                Stage("diffuse", self._diffuse, holds=k, torch_threads=model_threads),
                Stage("vae_decode", self._vae_decode, torch_threads=model_threads),
            ]
        else:  # the same three transforms, chained on one worker
            model = [
                Stage(
                    "model",
                    lambda inputs: self._vae_decode(self._diffuse(self._vae_encode(inputs))),
                    holds=k,
                    torch_threads=model_threads,
                )
            ]
        return [
            Stage("decode", self._decode, torch_threads=media),
            Stage("align", self._align, torch_threads=media),
            *model,
            Stage("paste", self._paste, torch_threads=media),
        ]

    def _thread_counts(self) -> tuple[int, int]:
        """torch intra-op threads of the media stages and of the model stages (both modes)."""
        model = self.config.model_threads
        if model is None:
            model = 1 if self.device.type == "cuda" else torch.get_num_threads()
        return self.config.media_threads, model

    # -- the consumer ----------------------------------------------------------------------------------------

    def frames(self) -> Generator[Frame, None, None]:
        """The output frames (RGB uint8, the video's size), in order. Close it to stop early: every worker
        is stopped and joined (threaded) and the decoder closed."""
        job, models = self.job, self.job.models
        self.progress.stage("audio")
        self._windows = job.audio_windows()
        # Drawn before any stage starts: the initial noise first (one (1, 4, 1, h, w) draw shared by every
        # frame, as the reference consumes its global RNG after set_seed), then in the VAE encode stage the
        # masked-image and reference latent samples, chunk after chunk.
        self._generator = torch.Generator(device=models.device).manual_seed(job.plan.seed)
        latent_hw = (job.resolution // models.vae.downsample_factor,) * 2
        self._init_noise = prepare_init_noise(
            latent_hw, 1, generator=self._generator, device=models.device, dtype=models.dtype
        )
        chain: list[Iterator[_Work]] = []
        results: Iterator[_Work]
        if self.runner is not None:
            results = self.runner.results()
        else:
            items: Iterator[_Work] | None = None
            for transform, threads in self._inline_stages():
                stage = transform(items)
                items = _on_threads(stage, threads)
                chain += [stage, items]
            assert items is not None
            results = items
        try:
            for work in results:
                self.progress.written(work.chunk.index, self.counters.frames_done)
                yield from work.frames
                self.counters.frames_done = work.chunk.stop
                self._inline_in_flight -= 1
        finally:
            for generator in [results, *reversed(chain)]:
                close = getattr(generator, "close", None)
                if close is not None:
                    close()  # threaded: stops and joins the workers; inline: runs each stage's cleanup
            self._collect_stats()

    def _inline_stages(self) -> list[tuple[Transform, int]]:
        """The transforms in order, each with its torch thread count (as the threaded mode's workers)."""
        media, model = self._thread_counts()
        return [
            (self._decode, media),
            (self._align, media),
            (self._vae_encode, model),
            (self._diffuse, model),
            (self._vae_decode, model),
            (self._paste, media),
        ]

    def _collect_stats(self) -> None:
        stats, runner = self.stats, self.runner
        if runner is not None:
            stats.max_in_flight = runner.max_in_flight
            stats.queue_high_water = {c.name: c.high_water for c in runner.channels}
            stats.blocked_puts = {c.name: c.blocked_puts for c in runner.channels}
        stats.gpu_ms, stats.gpu_busy_ms = self._gpu.summary()

    # -- stages (threaded: each on its own worker; inline: chained on the caller's thread) -------------------

    def _decode(self, _inputs: Iterator[Any] | None) -> Iterator[_Work]:
        job = self.job
        source = job.frame_source()
        try:
            for chunk in job.plan.chunks:
                self.progress.stage("decode", chunk.index)
                indices = job.timeline.source_indices(chunk.start, chunk.stop)
                with job.timer("decode"):
                    frames = source.get(indices)
                if not self.threaded:
                    self._inline_in_flight += 1
                    self.stats.max_in_flight = max(self.stats.max_in_flight, self._inline_in_flight)
                yield _Work(chunk, indices, frames)
        finally:
            self.counters.decoded_frames = source.frames_decoded
            source.close()

    def _align(self, inputs: Iterator[_Work] | None) -> Iterator[_Work]:
        assert inputs is not None
        job = self.job
        for work in inputs:
            self.progress.stage("detect", work.chunk.index)
            work.aligned = job.track.align(work.frames, work.indices)
            self._check_any_face()
            self.counters.frames_without_face += sum(a is None for a in work.aligned)
            work.positions = [k for k, a in enumerate(work.aligned) if a is not None]
            yield work

    def _check_any_face(self) -> None:
        """A video without any face fails as soon as its first pass is over (passthrough included)."""
        track, first_pass = self.job.track, self.job.plan.first_pass_frames
        if track.frames_seen >= first_pass and track.faces_found == 0:
            raise NoFaceDetected(
                f"No face was found in any of the {first_pass} frames of the video. Use a video "
                "with a clearly visible face.",
                frame_index=0,
                timestamp_s=0.0,
                field="video",
            )

    def _vae_encode(self, inputs: Iterator[_Work] | None) -> Iterator[_Work]:
        assert inputs is not None and self._generator is not None
        job = self.job
        vae = job.models.vae
        for work in inputs:
            if work.positions:  # a chunk without faces draws no random numbers
                self.progress.stage("vae_encode", work.chunk.index)
                crops = [work.aligned[k].face_rgb for k in work.positions]  # type: ignore[union-attr]
                with job.timer("vae_encode"), self._gpu.span("vae_encode"):
                    pixels = faces_to_pixels(crops, self.device)
                    work.latents = encode_latents(vae, pixels, self._mask, self._generator)
            yield work

    def _diffuse(self, inputs: Iterator[_Work] | None) -> Iterator[_Work]:
        assert inputs is not None
        k = self.config.chunk_batch
        batch: list[_Work] = []
        for work in inputs:
            batch.append(work)
            if len(batch) == k:
                self._sample_batch(batch)
                yield from batch
                batch = []
        if batch:
            self._sample_batch(batch)
            yield from batch

    def _sample_batch(self, batch: list[_Work]) -> None:
        """Sample the chunks of *batch* that have faces; chunks with equal frame counts share U-Net calls.

        Progress runs over the whole batch: after ``s`` of ``S`` steps of a group of ``m`` chunks, ``m·s``
        chunk-steps are done, reported as (chunk, step) so that ``chunk + step/S`` advances smoothly from the
        batch's first chunk to its end (with one chunk per batch: the chunk's own steps).
        """
        job = self.job
        steps = job.options.inference_steps
        first = batch[0].chunk.index
        faced = [w for w in batch if w.positions]
        done = steps * (len(batch) - len(faced))
        if not faced:
            return
        groups: dict[int, list[_Work]] = {}
        for work in faced:
            groups.setdefault(len(work.positions), []).append(work)
        no_recompile: AbstractContextManager[None] = nullcontext()
        if self.config.no_recompile:
            from lipsync.engine.compile import no_recompile as _no_recompile

            no_recompile = _no_recompile()
        if self.config.parallel_chunks > 1 and len(faced) > 1:
            with job.timer("diffuse"), self._gpu.span("diffuse"), no_recompile:
                self._sample_side_by_side(faced, first, done)
            return
        self.stats.unet_batches.append(len(faced))
        with job.timer("diffuse"), self._gpu.span("diffuse"), no_recompile:
            for members in groups.values():
                base = done

                def on_step(
                    i: int, _t: int, _latents: torch.Tensor, base: int = base, m: int = len(members)
                ) -> None:
                    if self.runner is not None:
                        self.runner.check()  # another stage failed: stop within one step
                    position = base + m * (i + 1)
                    self.progress.stage(
                        "diffuse", first + (position - 1) // steps, (position - 1) % steps + 1, steps
                    )

                self._sample_group(members, on_step)
                done += len(members) * steps

    def _sample_side_by_side(self, members: list[_Work], first: int, skipped: int) -> None:
        """Each chunk of *members* sampled by the one-chunk call on its own thread, ``parallel_chunks`` at a
        time (``DriverConfig.parallel_chunks``). No RNG is drawn while sampling (DDIM with eta 0, the initial
        noise drawn before), so the chunks' order does not matter and each gives the frames it gives alone.
        Progress as for a batched call from chunk *first*, *skipped* chunk-steps (chunks without faces) done."""
        job, parallel = self.job, self.config.parallel_chunks
        steps = job.options.inference_steps
        threads = max(1, self._thread_counts()[1] // parallel)
        # The chunk-steps done so far, whichever chunk did them.
        done = itertools.count(skipped + 1)
        lock = threading.Lock()

        def on_step(_i: int, _t: int, _latents: torch.Tensor) -> None:
            if self.runner is not None:
                self.runner.check()  # another stage failed: stop within one step
            with lock:
                position = next(done)
                self.progress.stage(
                    "diffuse", first + (position - 1) // steps, (position - 1) % steps + 1, steps
                )

        def sample(work: _Work) -> None:
            torch.get_num_threads()  # torch's lazy per-thread init first (see staged.py)
            torch.set_num_threads(threads)
            self._sample_group([work], on_step)

        self.stats.unet_batches.extend([1] * len(members))
        with ThreadPoolExecutor(parallel, thread_name_prefix="lipsync-diffuse") as pool:
            for future in [pool.submit(sample, work) for work in members]:
                future.result()  # the first failure is raised here, after every chunk has stopped

    def _sample_group(self, members: list[_Work], on_step: StepCallback) -> None:
        job = self.job
        assert self._windows is not None and self._init_noise is not None
        unet = job.models.unet
        audio = [self._windows[[w.chunk.start + k for k in w.positions]] for w in members]
        if len(members) == 1:  # one chunk: exactly the reference's call
            work = members[0]
            assert work.latents is not None
            work.sampled = denoise(unet, work.latents, audio[0], self._init_noise, job.sampler, on_step)
            return
        inputs = []
        for work, chunk_audio in zip(members, audio, strict=True):
            assert work.latents is not None
            inputs.append(
                ChunkInputs(
                    mask_latents=work.latents.mask_latents,
                    masked_image_latents=work.latents.masked_image_latents,
                    ref_latents=work.latents.ref_latents,
                    audio_embeds=chunk_audio,
                    init_latents=self._init_noise.repeat(1, 1, len(work.positions), 1, 1),
                )
            )
        with engine_errors("sampling"):
            outputs = sample_chunks(unet, inputs, config=job.sampler, callback=on_step)
        for work, sampled in zip(members, outputs, strict=True):
            work.sampled = sampled

    def _vae_decode(self, inputs: Iterator[_Work] | None) -> Iterator[_Work]:
        assert inputs is not None
        job = self.job
        vae = job.models.vae
        for work in inputs:
            if work.positions:
                assert work.sampled is not None and work.latents is not None
                self.progress.stage("vae_decode", work.chunk.index)
                with job.timer("vae_decode"), self._gpu.span("vae_decode"):
                    work.faces = decode_faces(vae, work.sampled, work.latents, self._mask)
                work.sampled = work.latents = None  # free device memory as soon as possible
            yield work

    def _paste(self, inputs: Iterator[_Work] | None) -> Iterator[_Work]:
        assert inputs is not None
        job = self.job
        for work in inputs:
            if work.positions:
                assert work.faces is not None
                self.progress.stage("paste", work.chunk.index)
                faces_in = [work.aligned[k] for k in work.positions]
                with job.timer("paste"):
                    pasted = paste_faces([work.frames[k] for k in work.positions], work.faces, faces_in)  # type: ignore[arg-type]
                out = list(work.frames)
                for k, frame in zip(work.positions, pasted, strict=True):
                    out[k] = frame
                work.frames = out
            work.faces = None
            work.aligned = []
            yield work
