"""The lip-sync job as a staged pipeline: every stage on its own thread, bounded queues between them.

    decode -> detect/align -> VAE encode -> U-Net sampling (chunk batches) -> VAE decode -> paste -> consumer

On CUDA the three model stages are three workers (their CPU-side work, launches and copies overlap the
device); on a CPU device they are chained on one worker, since they would only compete for the same cores.
The consumer is the caller's thread iterating :meth:`StagedRun.frames` (``LipSync.run`` feeds the H.264
encoder from it), so encoding overlaps everything else too. Each stage calls the same functions as the
sequential loop (:class:`lipsync.pipeline.lipsync.Job`, :mod:`lipsync.pipeline.stages`) on the same chunks in
the same order, and the one stage that draws random numbers (the VAE encoder's latent samples) is a single
thread, so the RNG is consumed exactly as in the sequential path: with ``chunk_batch=1`` the output frames
are identical (at equal torch intra-op thread counts: some CPU kernels round differently with another
count); with larger batches the U-Net sees several chunks per call, equal up to float rounding.

Host <-> device traffic: a chunk's face crops go to the device once, as uint8 (the normalisation runs
there), and the decoded faces come back once, as float32 for paste-back; nothing else crosses.

Memory: at most :attr:`StagedRun.in_flight_bound` chunks exist at once (each holds its 16 decoded frames),
whatever the video's length; a slow encoder stalls decoding instead of letting frames pile up.

Progress: events from the stages are serialised (the callback never runs on two threads at once) and
filtered so that ``ProgressEvent.fraction`` never decreases: the stages run ahead of one another, and
the U-Net's steps, where the time goes, set the pace. A callback that raises (``JobCancelled``) stops
the whole pipeline like any stage error.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lipsync.engine.sampler import ChunkInputs, prepare_init_noise, sample_chunks
from lipsync.pipeline.progress import ProgressEvent
from lipsync.pipeline.staged import Stage, StageRunner
from lipsync.pipeline.stages import (
    ChunkLatents,
    decode_faces,
    denoise,
    encode_latents,
    engine_errors,
    paste_faces,
)

if TYPE_CHECKING:
    from lipsync.media.align import AlignedFace
    from lipsync.pipeline.lipsync import Chunk, Job

__all__ = ["GPU_STAGES", "StagedConfig", "StagedRun", "StagedStats", "crops_to_pixels"]

#: Stages whose work runs on the model's device.
GPU_STAGES = ("vae_encode", "diffuse", "vae_decode")
_BEFORE_DIFFUSION = frozenset({"decode", "detect", "align", "vae_encode"})


@dataclass(frozen=True)
class StagedConfig:
    """``chunk_batch``: chunks per U-Net call; ``queue_chunks``: chunks each queue holds; ``cpu_threads``:
    torch intra-op threads of the CPU stages; ``model_threads``: of the model stages (None: 1 on CUDA, where
    they only launch kernels, else the caller's count); ``split_model``: VAE encode, U-Net and VAE decode on
    three workers (None: on CUDA only; on a CPU device they would compete for the same cores, so they share
    one worker there and only the media stages overlap them); ``gpu_timing``: time the model stages with CUDA
    events (the bench's GPU busy fraction); ``no_recompile``: run the U-Net under
    :func:`lipsync.engine.compile.no_recompile` (a compiled U-Net never compiles inside a job)."""

    chunk_batch: int = 1
    queue_chunks: int = 1
    cpu_threads: int = 1
    model_threads: int | None = None
    split_model: bool | None = None
    gpu_timing: bool = False
    no_recompile: bool = False

    def __post_init__(self) -> None:
        for name in ("chunk_batch", "queue_chunks", "cpu_threads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class StagedStats:
    """What a staged run did, for benches and tests (filled in as it runs)."""

    chunk_batch: int
    in_flight_bound: int
    max_in_flight: int = 0
    #: Most chunks each queue held at once / how often its producer had to wait for room.
    queue_high_water: dict[str, int] = field(default_factory=dict)
    blocked_puts: dict[str, int] = field(default_factory=dict)
    #: Chunks per U-Net call, in order.
    unet_batches: list[int] = field(default_factory=list)
    #: With ``gpu_timing`` on CUDA: device milliseconds per model stage, and of their union (GPU busy).
    gpu_ms: dict[str, float] = field(default_factory=dict)
    gpu_busy_ms: float | None = None


@dataclass
class _Work:
    """One chunk on its way through the stages."""

    chunk: Chunk
    indices: list[int]
    frames: list[np.ndarray]
    aligned: list[AlignedFace | None] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    latents: ChunkLatents | None = None
    sampled: torch.Tensor | None = None
    faces: torch.Tensor | None = None


def crops_to_pixels(crops: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """(R, R, 3) uint8 crops -> ``(f, 3, R, R)`` float32 in [-1, 1] on *device*: one uint8 copy to the device,
    then the same arithmetic as :func:`lipsync.pipeline.stages.faces_to_pixels`."""
    stacked = torch.from_numpy(np.stack(crops)).to(device)
    return (stacked.permute(0, 3, 1, 2) / 255.0 - 0.5) / 0.5


class _ProgressGate:
    """Serialise the stages' events and keep ``fraction`` monotonic (see the module docstring)."""

    def __init__(self, emit: Any) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self._last = 0.0
        self._diffusing = 0  # chunk the U-Net is on: events of earlier stages past it are ahead of the pace

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if event.stage == "diffuse":
                self._diffusing = max(self._diffusing, event.chunk)
            elif event.stage in _BEFORE_DIFFUSION and event.chunk > self._diffusing:
                return
            fraction = event.fraction
            if fraction < self._last:
                return
            self._last = fraction
            self._emit(event)


class _GpuTimer:
    """CUDA events around the model stages' work; summed (and their union taken) after the run."""

    def __init__(self, device: torch.device, enabled: bool) -> None:
        self.enabled = enabled and device.type == "cuda"
        self._spans: list[tuple[str, Any, Any]] = []
        self._lock = threading.Lock()
        self._origin: Any = None
        if self.enabled:
            self._origin = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            self._origin.record()

    def span(self, stage: str) -> AbstractContextManager[None]:
        return _GpuSpan(self, stage) if self.enabled else nullcontext()

    def add(self, stage: str, start: Any, end: Any) -> None:
        with self._lock:
            self._spans.append((stage, start, end))

    def summary(self, stats: StagedStats) -> None:
        if not self.enabled or not self._spans:
            return
        torch.cuda.synchronize()
        intervals = []
        for stage, start, end in self._spans:
            a, b = self._origin.elapsed_time(start), self._origin.elapsed_time(end)
            stats.gpu_ms[stage] = stats.gpu_ms.get(stage, 0.0) + (b - a)
            intervals.append((a, b))
        busy, reach = 0.0, float("-inf")
        for a, b in sorted(intervals):  # union of the spans: device time some model stage was running
            if a > reach:
                busy += b - a
                reach = b
            elif b > reach:
                busy += b - reach
                reach = b
        stats.gpu_busy_ms = busy


class _GpuSpan:
    def __init__(self, timer: _GpuTimer, stage: str) -> None:
        self.timer, self.stage = timer, stage

    def __enter__(self) -> None:
        self.start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        self.start.record()

    def __exit__(self, *exc: object) -> None:
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        end.record()
        self.timer.add(self.stage, self.start, end)


class StagedRun:
    """Run a prepared :class:`~lipsync.pipeline.lipsync.Job` as a staged pipeline; iterate :meth:`frames`.

    ``runner`` (the :class:`StageRunner`) and ``stats`` are there to be looked at; a run happens once.
    """

    def __init__(self, job: Job, config: StagedConfig | None = None) -> None:
        self.job = job
        self.config = config or StagedConfig()
        models = job.models
        self.device = models.device
        k, q = self.config.chunk_batch, self.config.queue_chunks
        model_threads = self.config.model_threads
        if model_threads is None:
            model_threads = 1 if self.device.type == "cuda" else torch.get_num_threads()
        cpu = self.config.cpu_threads
        split = self.config.split_model
        if split is None:
            split = self.device.type == "cuda"
        if split:
            model = [
                # The U-Net stage takes k chunks at a time: its queue holds a whole next batch.
                Stage("vae_encode", self._vae_encode, torch_threads=model_threads, out_capacity=max(q, k)),
                Stage("diffuse", self._diffuse, holds=k, torch_threads=model_threads),
                Stage("vae_decode", self._vae_decode, torch_threads=model_threads),
            ]
        else:  # the same three transforms, chained on one thread
            model = [
                Stage(
                    "model",
                    lambda inputs: self._vae_decode(self._diffuse(self._vae_encode(inputs))),
                    holds=k,
                    torch_threads=model_threads,
                )
            ]
        self.runner = StageRunner(
            [
                Stage("decode", self._decode, torch_threads=cpu),
                Stage("align", self._align, torch_threads=cpu),
                *model,
                Stage("paste", self._paste, torch_threads=cpu),
            ],
            capacity=q,
            name="lipsync",
        )
        self.stats = StagedStats(chunk_batch=k, in_flight_bound=self.runner.in_flight_bound)
        self._progress = _ProgressGate(job.emit)
        self._gpu = _GpuTimer(self.device, self.config.gpu_timing)
        self._mask = job.mask.to(self.device)
        self._windows: Any = None  # the job's AudioWindows: windows[frame_indices] -> (k, 50, C)
        self._generator: torch.Generator | None = None
        self._init_noise: torch.Tensor | None = None

    @property
    def in_flight_bound(self) -> int:
        """Most chunks (of 16 frames) that can exist at once between decoding and the consumer."""
        return self.runner.in_flight_bound

    # -- driver ----------------------------------------------------------------------------------------------

    def frames(self) -> Generator[np.ndarray, None, None]:
        """The output frames (RGB uint8, the video's size), in order, as the sequential ``Job.frames``."""
        job, models = self.job, self.job.models
        self._emit("audio", None)
        self._windows = job.audio_windows()
        # Drawn here, before any stage starts, in the sequential order: the initial noise, then (in the
        # VAE encode stage) the masked and reference latent samples, chunk after chunk.
        self._generator = torch.Generator(device=models.device).manual_seed(job.options.seed)
        latent_hw = (job.resolution // models.vae.downsample_factor,) * 2
        self._init_noise = prepare_init_noise(
            latent_hw, 1, generator=self._generator, device=models.device, dtype=models.dtype
        )
        results = self.runner.results()
        try:
            for work in results:
                self._emit("encode", work.chunk)
                yield from work.frames
                job.frames_done = work.chunk.stop
        finally:
            results.close()  # stops and joins the workers if we end early (error or consumer gone)
            self._collect_stats()

    def _collect_stats(self) -> None:
        runner, stats = self.runner, self.stats
        stats.max_in_flight = runner.max_in_flight
        stats.queue_high_water = {c.name: c.high_water for c in runner.channels}
        stats.blocked_puts = {c.name: c.blocked_puts for c in runner.channels}
        self._gpu.summary(stats)

    def _emit(self, stage: str, chunk: Chunk | None, step: int = 0, steps: int = 0) -> None:
        job = self.job
        self._progress(
            ProgressEvent(
                stage,
                job.frames_done,
                job.timeline.num_frames,
                chunk.index if chunk is not None else 0,
                job.chunks_total,
                step,
                steps,
            )
        )

    # -- stages (each runs on its own thread) -----------------------------------------------------------------

    def _decode(self, _inputs: Iterator[Any] | None) -> Iterator[_Work]:
        from lipsync.pipeline.lipsync import iter_chunks

        job = self.job
        source = job.frame_source()  # the sequential loop's decoder, window and all
        try:
            for chunk in iter_chunks(job.timeline.num_frames):
                self._emit("decode", chunk)
                indices, frames = job.decode(source, chunk)
                yield _Work(chunk, indices, frames)
        finally:
            job.decoded_frames = source.frames_decoded
            source.close()

    def _align(self, inputs: Iterator[_Work] | None) -> Iterator[_Work]:
        assert inputs is not None
        for work in inputs:
            self._emit("detect", work.chunk)
            work.aligned = self.job.align(work.frames, work.indices)
            self.job.frames_without_face += sum(a is None for a in work.aligned)
            work.positions = [k for k, a in enumerate(work.aligned) if a is not None]
            yield work

    def _vae_encode(self, inputs: Iterator[_Work] | None) -> Iterator[_Work]:
        assert inputs is not None and self._generator is not None
        vae = self.job.models.vae
        for work in inputs:
            if work.positions:  # a chunk without faces draws no random numbers, as in the sequential loop
                self._emit("vae_encode", work.chunk)
                crops = [work.aligned[k].face_rgb for k in work.positions]  # type: ignore[union-attr]
                with self.job.timer("vae_encode"), self._gpu.span("vae_encode"):
                    pixels = crops_to_pixels(crops, self.device)
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
        batch's first chunk to its end (with one chunk per batch: exactly the sequential loop's events).
        """
        job = self.job
        steps = job.options.inference_steps
        first = batch[0].chunk.index
        done = steps * sum(1 for w in batch if not w.positions)
        groups: dict[int, list[_Work]] = {}
        for work in batch:
            if work.positions:
                groups.setdefault(len(work.positions), []).append(work)
        if not groups:
            return
        self.stats.unet_batches.append(sum(len(g) for g in groups.values()))
        no_recompile: AbstractContextManager[None] = nullcontext()
        if self.config.no_recompile:
            from lipsync.engine.compile import no_recompile as _no_recompile

            no_recompile = _no_recompile()
        with job.timer("diffuse"), self._gpu.span("diffuse"), no_recompile:
            for members in groups.values():
                base = done

                def on_step(
                    i: int, _t: int, _latents: torch.Tensor, base: int = base, m: int = len(members)
                ) -> None:
                    self.runner.check()  # another stage failed: stop within one step
                    position = base + m * (i + 1)
                    self._progress(
                        ProgressEvent(
                            "diffuse",
                            job.frames_done,
                            job.timeline.num_frames,
                            first + (position - 1) // steps,
                            job.chunks_total,
                            (position - 1) % steps + 1,
                            steps,
                        )
                    )

                self._sample_group(members, on_step)
                done += len(members) * steps

    def _sample_group(self, members: list[_Work], on_step: Any) -> None:
        job = self.job
        assert self._windows is not None and self._init_noise is not None
        unet = job.models.unet
        audio = [self._windows[[w.chunk.start + k for k in w.positions]] for w in members]
        if len(members) == 1:  # one chunk: exactly the sequential loop's call
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
        vae = self.job.models.vae
        for work in inputs:
            if work.positions:
                assert work.sampled is not None and work.latents is not None
                self._emit("vae_decode", work.chunk)
                with self.job.timer("vae_decode"), self._gpu.span("vae_decode"):
                    work.faces = decode_faces(vae, work.sampled, work.latents, self._mask)
                work.sampled = work.latents = None  # free device memory as soon as possible
            yield work

    def _paste(self, inputs: Iterator[_Work] | None) -> Iterator[_Work]:
        assert inputs is not None
        for work in inputs:
            if work.positions:
                assert work.faces is not None
                self._emit("paste", work.chunk)
                out = list(work.frames)
                faces_in = [work.aligned[k] for k in work.positions]
                with self.job.timer("paste"):
                    pasted = paste_faces([work.frames[k] for k in work.positions], work.faces, faces_in)  # type: ignore[arg-type]
                for k, frame in zip(work.positions, pasted, strict=True):
                    out[k] = frame
                work.frames = out
            work.faces = None
            work.aligned = []
            yield work
