"""How many 16-frame chunks share one U-Net call: ``chunk_batch="auto"`` sizes it from free GPU memory.

Stacking chunks on the batch axis gives the same numbers as running them one at a time (every batch element
is its own clip for the U-Net's GroupNorms, see ``lipsync.engine.sampler``), so the batch is purely a speed
and memory knob. On a GPU a bigger batch means fewer, larger kernels (at 256 px one chunk is a small GEMM
workload for an H100); on the CPU it only costs memory, so ``auto`` is 1 there.

The memory a chunk needs is measured, not modelled: one U-Net call for one chunk (both CFG halves) and one VAE
decode are run on the device and their peak allocation recorded (:func:`measure_chunk_memory`, once per
model/shape, ~0.1 s). The batch is then what fits in the free memory after a reserve for the VAE stages and
the pixels of the chunks in flight, capped at :data:`MAX_AUTO_CHUNK_BATCH` (more chunks per batch also means
more decoded frames waiting in host memory, and past a few chunks the GPU is saturated anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from lipsync.errors import InputError

if TYPE_CHECKING:
    from lipsync.engine.weights import EngineModels

__all__ = [
    "MAX_AUTO_CHUNK_BATCH",
    "ChunkBatch",
    "ChunkMemory",
    "batch_for_memory",
    "check_chunk_batch",
    "free_device_memory",
    "measure_chunk_memory",
]

ChunkBatch = int | Literal["auto"]

#: Upper bound for ``chunk_batch="auto"``.
MAX_AUTO_CHUNK_BATCH = 4
#: Largest explicit ``chunk_batch`` accepted (a typo guard: 64 chunks are 1,024 frames in flight).
MAX_CHUNK_BATCH = 32
_MIB = 2**20


def check_chunk_batch(value: object) -> ChunkBatch:
    """Validate a ``chunk_batch`` option: ``"auto"`` or an integer in 1..MAX_CHUNK_BATCH."""
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CHUNK_BATCH:
        raise InputError(
            f"chunk_batch must be 'auto' or an integer in 1..{MAX_CHUNK_BATCH}, got {value!r}",
            field="chunk_batch",
        )
    return value


@dataclass(frozen=True)
class ChunkMemory:
    """Measured peak device bytes: one U-Net call for one chunk (``unet``) and one chunk's VAE decode
    (``vae``); ``pixels``: the float32 face crops of one chunk, which stay on the device until paste-back."""

    unet: int
    vae: int
    pixels: int


def free_device_memory(device: torch.device) -> int:
    """Bytes a new allocation can use: the driver's free memory plus what torch's cache holds unused."""
    free, _total = torch.cuda.mem_get_info(device)
    cached_unused = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return int(free + cached_unused)


def _peak_bytes(device: torch.device, fn: Callable[[], object]) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return max(0, int(torch.cuda.max_memory_allocated(device)) - base)


@torch.no_grad()
def measure_chunk_memory(
    models: EngineModels, *, frames: int = 16, do_cfg: bool = True, deep_cache: bool = False
) -> ChunkMemory:
    """Run one chunk's U-Net call and VAE decode on the (CUDA) device and measure their peak memory."""
    from lipsync.engine.deepcache import DeepCacheState

    device, dtype = models.device, models.dtype
    if device.type != "cuda":
        raise ValueError("measure_chunk_memory needs a CUDA device")
    cfg = models.unet_config
    latent = cfg.resolution // models.vae.downsample_factor
    batch = 2 if do_cfg else 1
    # Measure the eager U-Net: calling a compiled one here would compile inside a job.
    unet = getattr(models.unet, "unet", models.unet)

    def unet_call() -> None:
        sample = torch.randn((batch, cfg.in_channels, frames, latent, latent), device=device, dtype=dtype)
        context = torch.randn((batch * frames, 50, cfg.cross_attention_dim), device=device, dtype=dtype)
        state = DeepCacheState() if deep_cache else None
        unet(sample, torch.tensor(951, device=device), context, deep_cache=state)

    def vae_call() -> None:
        models.vae.decode(torch.randn((frames, 4, latent, latent), device=device, dtype=dtype))

    unet_bytes = _peak_bytes(device, unet_call)
    vae_bytes = _peak_bytes(device, vae_call)
    pixels = frames * 3 * cfg.resolution * cfg.resolution * 4
    return ChunkMemory(unet=unet_bytes, vae=vae_bytes, pixels=pixels)


def batch_for_memory(
    free_bytes: int,
    memory: ChunkMemory,
    *,
    chunks_in_flight: int = 16,
    headroom: float = 0.9,
    reserve_bytes: int = 1024 * _MIB,
    max_batch: int = MAX_AUTO_CHUNK_BATCH,
) -> int:
    """The most chunks per U-Net call that fit in *free_bytes*.

    Reserved first: *reserve_bytes* (allocator fragmentation, cuDNN workspaces), two VAE calls (the encode
    and decode stages run beside the U-Net) and the pixels of *chunks_in_flight* chunks; of the rest,
    *headroom* is used. Memory grows about linearly with the batch (the feed-forward, the largest activation,
    is evaluated in slices of fixed size, so a measured single chunk over-estimates the per-chunk share).
    Never below 1: if even one chunk does not fit, the U-Net raises the out-of-memory error.
    """
    budget = (free_bytes - reserve_bytes - 2 * memory.vae - chunks_in_flight * memory.pixels) * headroom
    if memory.unet <= 0:
        return max_batch
    return int(max(1, min(max_batch, budget // memory.unet)))
