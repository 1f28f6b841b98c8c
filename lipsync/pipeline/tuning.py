"""Throughput settings of a :class:`~lipsync.LipSync` and what they imply: the models prepared for jobs,
the chunk batch, and the driver's mode and thread counts (chosen from the device and the core count).

    LipSync(pipeline="staged", chunk_batch="auto", compile=False, channels_last=False, preset="veryfast")

``pipeline``      ``"staged"`` (default): the driver's threaded mode, every stage on its own thread with bounded
                  queues, so decoding, face alignment, paste-back and encoding overlap the model;
                  ``"sequential"``: its inline mode, one chunk at a time through every stage on the caller's
                  thread (:mod:`lipsync.pipeline.driver`). Same frames.
``chunk_batch``   16-frame chunks per U-Net call: ``"auto"`` (1 on CPU, where a small U-Net on several cores
                  diffuses a chunk per core side by side instead, :func:`side_by_side`; on CUDA what fits in
                  free memory, at most 4, :mod:`lipsync.pipeline.batching`) or a number. 1 is the reference's
                  call pattern; more gives the same numbers up to float rounding.
``compile``       ``torch.compile`` the U-Net and compile the job shapes when the models load (a warm-up
                  that does not count against a job); opt-in: rounding-level differences.
``channels_last`` the VAE's convolutions in NHWC (tensor cores on CUDA); opt-in: rounding-level differences.
``preset``        the x264 preset of the output. ``"veryfast"`` (default) encodes 2-3x faster than x264's
                  own default ``"medium"`` at the same CRF 18, i.e. the same visual quality for ~10 % more
                  bytes (docs/media.md, docs/throughput.md); the encode is not part of the model's numerics.
``queue_chunks``  chunks each queue of the staged pipeline holds (memory vs. slack; see docs/throughput.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, cast

import torch

from lipsync.errors import InputError
from lipsync.pipeline.batching import (
    MAX_AUTO_CHUNK_BATCH,
    ChunkBatch,
    ChunkMemory,
    batch_for_memory,
    check_chunk_batch,
    free_device_memory,
    measure_chunk_memory,
)
from lipsync.pipeline.driver import DriverConfig

if TYPE_CHECKING:
    from lipsync.engine.unet import LatentSyncUNet
    from lipsync.engine.weights import EngineModels
    from lipsync.pipeline.options import RunOptions

__all__ = [
    "DEFAULT_PRESET",
    "PIPELINES",
    "SMALL_UNET_CHANNELS",
    "X264_PRESETS",
    "EngineTuning",
    "PipelineKind",
    "ThreadPlan",
    "ThroughputOptions",
    "plan_threads",
    "side_by_side",
]

PipelineKind = Literal["staged", "sequential"]
PIPELINES: tuple[PipelineKind, ...] = ("staged", "sequential")
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
#: Our output's x264 preset (the reference's ffmpeg uses x264's default, "medium"): same CRF, same quality.
DEFAULT_PRESET = "veryfast"


@dataclass(frozen=True)
class ThroughputOptions:
    """Validated throughput settings (see the module docstring)."""

    pipeline: PipelineKind = "staged"
    chunk_batch: ChunkBatch = "auto"
    compile: bool = False
    channels_last: bool = False
    preset: str = DEFAULT_PRESET
    queue_chunks: int = 1
    max_auto_chunk_batch: int = MAX_AUTO_CHUNK_BATCH

    def __post_init__(self) -> None:
        if self.pipeline not in PIPELINES:
            raise InputError(
                f"pipeline must be one of {', '.join(PIPELINES)}; got {self.pipeline!r}", field="pipeline"
            )
        check_chunk_batch(self.chunk_batch)
        for name in ("compile", "channels_last"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be true or false, got {getattr(self, name)!r}", field=name)
        if self.preset not in X264_PRESETS:
            raise InputError(
                f"preset must be an x264 preset ({', '.join(X264_PRESETS)}); got {self.preset!r}",
                field="preset",
            )
        if isinstance(self.queue_chunks, bool) or not isinstance(self.queue_chunks, int):
            raise InputError(
                f"queue_chunks must be an integer, got {self.queue_chunks!r}", field="queue_chunks"
            )
        if not 1 <= self.queue_chunks <= 16:
            raise InputError(f"queue_chunks must be in 1..16, got {self.queue_chunks}", field="queue_chunks")


@dataclass
class EngineTuning:
    """What a :class:`~lipsync.LipSync` does to its models for speed, and how its driver is configured.

    The loaded models are not changed (they may be shared), except with ``channels_last``, which re-lays out
    the VAE's weights in place: :meth:`job_models` returns the models jobs run with (the same object, or a
    copy whose U-Net is compiled). Keeps the measured chunk memory for ``chunk_batch="auto"``.
    """

    options: ThroughputOptions = field(default_factory=ThroughputOptions)
    _memory: dict[tuple[object, ...], ChunkMemory] = field(default_factory=dict)
    _job_models: dict[int, EngineModels] = field(default_factory=dict)

    def job_models(self, models: EngineModels) -> EngineModels:
        """*models* as jobs should run them: ``channels_last`` applied, the U-Net compiled if asked."""
        tuned = self._job_models.get(id(models))
        if tuned is not None and tuned.vae is models.vae:
            return tuned
        tuned = models
        if self.options.channels_last and models.device.type == "cuda":
            from lipsync.engine.compile import use_channels_last

            use_channels_last(models.vae.model)
        if self.options.compile:
            from lipsync.engine.compile import compile_unet

            tuned = replace(models, unet=cast("LatentSyncUNet", compile_unet(models.unet)))
        self._job_models = {id(models): tuned}  # one models object per LipSync at a time
        return tuned

    def warm_up(
        self, models: EngineModels, *, guidance_scale: float = 1.5, deep_cache: bool = False
    ) -> dict[Any, float]:
        """Compile the U-Net of ``job_models(models)`` for a job with these options (full 16-frame chunk
        batches and a lone chunk), so that the job itself never compiles. Seconds per newly compiled shape;
        {} without ``compile``."""
        from lipsync.engine.compile import CompiledUNet, WarmupShape

        tuned = self.job_models(models)
        unet = tuned.unet
        if not isinstance(unet, CompiledUNet):
            return {}
        cfg = 2 if guidance_scale > 1.0 else 1
        k = self.chunk_batch(tuned, do_cfg=cfg == 2, deep_cache=deep_cache)
        latent = tuned.unet_config.resolution // tuned.vae.downsample_factor
        shapes = sorted(
            {WarmupShape(cfg * b, 16, latent, deep_cache) for b in (k, 1)}, key=lambda s: -s.batch
        )
        return unet.warm_up(shapes)

    def chunk_batch(self, models: EngineModels, *, do_cfg: bool, deep_cache: bool = False) -> int:
        """The chunk batch for a job: the explicit setting, or ``auto`` (1 off CUDA, else from free memory)."""
        setting = self.options.chunk_batch
        if setting != "auto":
            return int(setting)
        if models.device.type != "cuda":
            return 1
        key = (id(models.vae), models.dtype, models.unet_config.resolution, do_cfg, deep_cache)
        if key not in self._memory:
            self._memory[key] = measure_chunk_memory(models, do_cfg=do_cfg, deep_cache=deep_cache)
        memory = self._memory[key]
        return batch_for_memory(
            free_device_memory(models.device), memory, max_batch=self.options.max_auto_chunk_batch
        )

    def driver_config(self, models: EngineModels, options: RunOptions) -> DriverConfig:
        """The driver settings for a job with these models and run options: the mode from ``pipeline``, the
        chunk batch, and the thread counts from the device and the core count (:func:`plan_threads`)."""
        from lipsync.engine.compile import CompiledUNet

        threads = plan_threads(models.device)
        chunk_batch = self.chunk_batch(
            models, do_cfg=options.do_classifier_free_guidance, deep_cache=options.deep_cache
        )
        parallel = 1
        if self.options.chunk_batch == "auto" and side_by_side(models, threads):
            chunk_batch = parallel = threads.model
        return DriverConfig(
            mode="threaded" if self.options.pipeline == "staged" else "inline",
            chunk_batch=chunk_batch,
            queue_chunks=self.options.queue_chunks,
            media_threads=threads.media,
            model_threads=threads.model,
            parallel_chunks=parallel,
            no_recompile=isinstance(models.unet, CompiledUNet),
        )


#: A U-Net whose widest block has at most this many channels is "small": its convolutions and matmuls are too
#: small to spread over a CPU's cores (the development weights' 32-64 channels: one chunk on 2 threads 1.22 s
#: a call, two chunks side by side on 1 thread each 1.00 s a call; issue 18). The official U-Net (320-1280
#: channels) parallelises inside its ops, and two chunks at once would double its activation memory.
SMALL_UNET_CHANNELS = 128


def side_by_side(models: EngineModels, threads: ThreadPlan) -> bool:
    """Whether chunks are diffused side by side, one per core (``DriverConfig.parallel_chunks``): a small
    U-Net (``SMALL_UNET_CHANNELS``) on a CPU with more than one core for the model."""
    return (
        models.device.type == "cpu"
        and threads.model > 1
        and max(models.unet_config.block_out_channels) <= SMALL_UNET_CHANNELS
    )


@dataclass(frozen=True)
class ThreadPlan:
    """torch intra-op threads for the model stages and for each media stage of the threaded driver."""

    model: int
    media: int


def plan_threads(device: torch.device, cores: int | None = None) -> ThreadPlan:
    """Thread counts from the device and the cores this process may use.

    On CUDA the model stages only launch kernels: one thread each. On a CPU device the U-Net is nearly all
    the work, so it gets every core (capped by the caller's ``torch.set_num_threads``); the media stages (decode, align, paste) run single-threaded beside it
    (their torch ops are small: several OpenMP threads each only make them wait on one another).
    """
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if device.type == "cuda":
        return ThreadPlan(model=1, media=1)
    return ThreadPlan(model=max(1, min(cores, torch.get_num_threads())), media=1)
