"""The LatentSync sampling loop: DDIM (eta 0) with classifier-free guidance on zero audio, per chunk.

Reference: ``LipsyncPipeline.__call__`` (LATENTSYNC.md §2.7–2.11). Per step the U-Net sees 13 channels
``[noisy latents 4 | mask 1 | masked-image latents 4 | reference latents 4]``; with guidance > 1 the batch is
``[unconditional (all-zero audio), conditional]`` and ``eps = u + g·(c − u)``. The initial noise is one
``(1, 4, 1, h, w)`` draw repeated over every frame of the video (:func:`prepare_init_noise`).

Batched chunks: several chunks with the same frame count can run as one U-Net batch. Each chunk is its own
batch element (the U-Net's GroupNorms pool over the frames of one element only), so the result equals
running them one at a time up to float rounding. Pass ``B``-sized inputs to :func:`sample_chunk`, or a list
of :class:`ChunkInputs` to :func:`sample_chunks`, which groups equal-length chunks for you.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler

from .deepcache import DeepCacheState
from .unet import LatentSyncUNet

__all__ = [
    "ChunkInputs",
    "SamplerConfig",
    "StepCallback",
    "make_scheduler",
    "prepare_init_noise",
    "sample_chunk",
    "sample_chunks",
]

#: ``callback(step_index, timestep, latents)`` after every DDIM step; raise from it to abort (e.g. cancel).
StepCallback = Callable[[int, int, torch.Tensor], None]

LATENT_CHANNELS = 4


@dataclass(frozen=True)
class SamplerConfig:
    """Sampling options. Defaults follow the reference ``inference.sh`` except DeepCache (off here).

    ``guidance_scale`` > 1 enables CFG (batch doubles); 1.0 is the reference CLI default (no CFG).
    ``deep_cache`` reproduces ``--enable_deepcache`` (``cache_interval=3``, ``cache_branch_id=0``).
    """

    num_inference_steps: int = 20
    guidance_scale: float = 1.5
    deep_cache: bool = False
    cache_interval: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.num_inference_steps <= 1000:
            raise ValueError(f"num_inference_steps must be in 1..1000, got {self.num_inference_steps}")
        if self.guidance_scale < 1.0:
            raise ValueError(f"guidance_scale must be >= 1.0, got {self.guidance_scale}")
        if self.cache_interval < 1:
            raise ValueError(f"cache_interval must be >= 1, got {self.cache_interval}")

    @property
    def do_cfg(self) -> bool:
        return self.guidance_scale > 1.0


def make_scheduler() -> DDIMScheduler:
    """The reference ``configs/scheduler_config.json`` (with diffusers 0.32 defaults filled in), built in code.

    20 steps give timesteps ``[951, 901, …, 51, 1]``.
    """
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        trained_betas=None,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
        thresholding=False,
        timestep_spacing="leading",
        rescale_betas_zero_snr=False,
    )


def prepare_init_noise(
    shape_hw: tuple[int, int],
    num_frames: int,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """One ``(1, 4, 1, h, w)`` standard-normal draw repeated over ``num_frames`` frames → ``(1, 4, F, h, w)``.

    The reference draws it once for the whole video (all chunks share it; slice ``[:, :, 16i:16(i+1)]``).
    With neither ``generator`` nor ``seed`` the global RNG is used, as the reference does after
    ``set_seed(1247)``; ``seed`` makes a private generator on ``device`` (same stream as
    ``torch.manual_seed(seed)`` on CPU). DDIM's ``init_noise_sigma`` is 1.0, so no scaling.
    """
    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)
    h, w = shape_hw
    noise = torch.randn((1, LATENT_CHANNELS, 1, h, w), generator=generator, device=device, dtype=dtype)
    return noise.repeat(1, 1, num_frames, 1, 1)


@dataclass(frozen=True)
class ChunkInputs:
    """One chunk's conditioning, batch 1, as the pipeline prepares it.

    ``mask_latents (1, 1, f, h, w)``, ``masked_image_latents`` and ``ref_latents`` ``(1, 4, f, h, w)``
    (already ×0.18215), ``audio_embeds (f, 50, C)``, ``init_latents (1, 4, f, h, w)``.
    """

    mask_latents: torch.Tensor
    masked_image_latents: torch.Tensor
    ref_latents: torch.Tensor
    audio_embeds: torch.Tensor
    init_latents: torch.Tensor

    @property
    def num_frames(self) -> int:
        return int(self.init_latents.shape[2])


def _check_inputs(
    unet: LatentSyncUNet,
    mask: torch.Tensor,
    masked: torch.Tensor,
    ref: torch.Tensor,
    audio: torch.Tensor,
    init: torch.Tensor,
) -> torch.Tensor:
    """Validate shapes up front (nothing should fail halfway through denoising); return audio as (B, f, S, C)."""
    if init.ndim != 5 or init.shape[1] != LATENT_CHANNELS:
        raise ValueError(f"init_latents must be (B, 4, f, h, w), got {tuple(init.shape)}")
    b, _, f, h, w = init.shape
    expected = {"mask_latents": (mask, 1), "masked_image_latents": (masked, 4), "ref_latents": (ref, 4)}
    for name, (tensor, channels) in expected.items():
        if tuple(tensor.shape) != (b, channels, f, h, w):
            raise ValueError(
                f"{name} must be {(b, channels, f, h, w)} to match init_latents, got {tuple(tensor.shape)}"
            )
    total = 1 + 4 + 4 + LATENT_CHANNELS
    if total != unet.config.in_channels:
        raise ValueError(
            f"the U-Net takes {unet.config.in_channels} input channels, the sampler builds {total}"
        )
    if audio.ndim == 3 and audio.shape[0] == b * f:
        audio = audio.reshape(b, f, *audio.shape[1:])
    if audio.ndim != 4 or audio.shape[:2] != (b, f) or audio.shape[-1] != unet.config.cross_attention_dim:
        raise ValueError(
            f"audio_embeds must be (f={f}, tokens, {unet.config.cross_attention_dim}) for one chunk or "
            f"(B={b}, f={f}, tokens, {unet.config.cross_attention_dim}), got {tuple(audio.shape)}"
        )
    return audio


@torch.no_grad()
def sample_chunk(
    unet: LatentSyncUNet,
    *,
    mask_latents: torch.Tensor,
    masked_image_latents: torch.Tensor,
    ref_latents: torch.Tensor,
    audio_embeds: torch.Tensor,
    init_latents: torch.Tensor,
    config: SamplerConfig | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Denoise one chunk (or ``B`` equal-length chunks stacked on the batch axis); returns ``(B, 4, f, h, w)``.

    Shapes: ``mask_latents (B, 1, f, h, w)``, ``masked_image_latents``/``ref_latents``/``init_latents``
    ``(B, 4, f, h, w)``, ``audio_embeds (f, S, C)`` when B = 1, else ``(B, f, S, C)`` or ``(B·f, S, C)``.
    Inputs are used in the U-Net's dtype and device. The loop is the reference's exactly: DDIM eta 0,
    uncond-first CFG with all-zero audio, ``eps = u + g·(c − u)``, optional DeepCache schedule.
    """
    config = config or SamplerConfig()
    audio = _check_inputs(unet, mask_latents, masked_image_latents, ref_latents, audio_embeds, init_latents)
    device, dtype = unet.device, unet.dtype

    cond = torch.cat([mask_latents, masked_image_latents, ref_latents], dim=1).to(device, dtype)
    context = audio.to(device, dtype).flatten(0, 1)  # (B·f, S, C), b outer
    if config.do_cfg:
        cond = torch.cat([cond, cond])
        context = torch.cat([torch.zeros_like(context), context])

    scheduler = make_scheduler()
    scheduler.set_timesteps(config.num_inference_steps)
    cache = DeepCacheState(interval=config.cache_interval) if config.deep_cache else None
    latents = init_latents.to(device, dtype)
    for i, t in enumerate(scheduler.timesteps):
        model_in = torch.cat([latents, latents]) if config.do_cfg else latents
        if cache is not None:
            cache.step_index = i
        eps = unet(torch.cat([model_in, cond], dim=1), t, context, deep_cache=cache)
        if config.do_cfg:
            uncond, text = eps.chunk(2)
            eps = uncond + config.guidance_scale * (text - uncond)
        latents = scheduler.step(eps, t, latents, eta=0.0).prev_sample
        if callback is not None:
            callback(i, int(t), latents)
    return latents


def sample_chunks(
    unet: LatentSyncUNet,
    chunks: Sequence[ChunkInputs],
    *,
    config: SamplerConfig | None = None,
    callback: StepCallback | None = None,
) -> list[torch.Tensor]:
    """Denoise several chunks, batching those with equal shapes into one U-Net call each.

    Returns one ``(1, 4, f, h, w)`` tensor per input chunk, in input order. Memory grows with the group
    size, so the caller decides how many chunks to pass at once. ``callback`` receives the batched latents.
    """
    results: list[torch.Tensor | None] = [None] * len(chunks)
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, chunk in enumerate(chunks):
        if chunk.init_latents.shape[0] != 1:
            raise ValueError(
                f"chunk {index}: ChunkInputs hold batch 1, got {tuple(chunk.init_latents.shape)}"
            )
        groups.setdefault(tuple(chunk.init_latents.shape), []).append(index)
    for indices in groups.values():
        members = [chunks[i] for i in indices]
        out = sample_chunk(
            unet,
            mask_latents=torch.cat([c.mask_latents for c in members]),
            masked_image_latents=torch.cat([c.masked_image_latents for c in members]),
            ref_latents=torch.cat([c.ref_latents for c in members]),
            audio_embeds=torch.stack([c.audio_embeds for c in members]),
            init_latents=torch.cat([c.init_latents for c in members]),
            config=config,
            callback=callback,
        )
        for position, index in enumerate(indices):
            results[index] = out[position : position + 1]
    return [r for r in results if r is not None]
