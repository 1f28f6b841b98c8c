"""The DDIM/CFG sampling loop against fixtures/ddim_loop (README §4), DeepCache and batched chunks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lipsync.engine.sampler import (
    ChunkInputs,
    SamplerConfig,
    make_scheduler,
    prepare_init_noise,
    sample_chunk,
    sample_chunks,
)
from lipsync.engine.unet import LatentSyncUNet, UNetConfig, load_unet


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny models are thousands of small ops: on a shared 2-core box, a second OpenMP thread mostly waits at
    barriers (tests ran 10x slower under load). One thread is faster and keeps CI times stable."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# README §4: f32 vs f64 differ by up to 4.7e-4 on values up to ~46; suggested tolerance 1e-3 abs.
ATOL_F32 = 1e-3
# A float64 loop lands within ~3e-7 of the reference's float64 loop (scheduler tables stay f32 in both).
ATOL_F64 = 1e-5


@pytest.fixture(scope="module")
def loop(fixtures_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(fixtures_dir / "ddim_loop" / "ddim_loop.safetensors")


@pytest.fixture(scope="module")
def unet(fixtures_dir: Path) -> LatentSyncUNet:
    return load_unet(fixtures_dir / "unet_tiny" / "latentsync_unet.pt", UNetConfig.tiny())


def _inputs(loop: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # The fixture stores the CFG-doubled conditioning as the U-Net saw it; the sampler takes one copy.
    return {
        "mask_latents": loop["mask_latents"][:1],
        "masked_image_latents": loop["masked_image_latents"][:1],
        "ref_latents": loop["ref_latents"][:1],
        "audio_embeds": loop["audio_embeds"],
        "init_latents": loop["init_noise_latents"],
    }


def _run(
    unet: LatentSyncUNet, inputs: dict[str, torch.Tensor], config: SamplerConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    steps: list[torch.Tensor] = []
    out = sample_chunk(unet, **inputs, config=config, callback=lambda _i, _t, lat: steps.append(lat.clone()))
    return out, torch.stack(steps)


def test_scheduler_is_the_reference_config(loop: dict[str, torch.Tensor]) -> None:
    scheduler = make_scheduler()
    scheduler.set_timesteps(20)
    assert torch.equal(scheduler.timesteps, loop["timesteps"])
    assert scheduler.init_noise_sigma == 1.0
    assert scheduler.final_alpha_cumprod.item() == pytest.approx(0.99914998, abs=1e-8)
    scheduler.set_timesteps(50)
    assert scheduler.timesteps[:2].tolist() == [981, 961] and scheduler.timesteps[-1].item() == 1


def test_initial_noise_is_one_draw_repeated(loop: dict[str, torch.Tensor]) -> None:
    torch.manual_seed(1247)  # the reference's set_seed(1247) + global RNG
    from_global = prepare_init_noise((8, 8), 16)
    assert torch.equal(from_global, loop["init_noise_latents"])
    assert torch.equal(prepare_init_noise((8, 8), 16, seed=1247), from_global)
    assert torch.equal(from_global, from_global[:, :, :1].expand_as(from_global))


def test_cfg_loop_matches_reference(unet: LatentSyncUNet, loop: dict[str, torch.Tensor]) -> None:
    final, steps = _run(unet, _inputs(loop), SamplerConfig(guidance_scale=1.5))
    torch.testing.assert_close(steps, loop["latents_per_step_cfg1.5"], atol=ATOL_F32, rtol=0)
    torch.testing.assert_close(final, loop["final_latents_cfg1.5"], atol=ATOL_F32, rtol=0)


def test_no_cfg_loop_matches_reference(unet: LatentSyncUNet, loop: dict[str, torch.Tensor]) -> None:
    final, steps = _run(unet, _inputs(loop), SamplerConfig(guidance_scale=1.0))
    assert steps.shape == (20, 1, 4, 16, 8, 8)
    torch.testing.assert_close(final, loop["final_latents_cfg1.0"], atol=ATOL_F32, rtol=0)


def test_deepcache_loop_matches_reference(unet: LatentSyncUNet, loop: dict[str, torch.Tensor]) -> None:
    full_passes: list[int] = []
    hook = unet.down_blocks[0].register_forward_hook(lambda *_: full_passes.append(1))
    try:
        final, steps = _run(unet, _inputs(loop), SamplerConfig(guidance_scale=1.5, deep_cache=True))
    finally:
        hook.remove()
    assert len(full_passes) == 7  # steps 0, 3, …, 18
    torch.testing.assert_close(steps, loop["latents_per_step_cfg1.5_deepcache"], atol=ATOL_F32, rtol=0)
    torch.testing.assert_close(final, loop["final_latents_cfg1.5_deepcache"], atol=ATOL_F32, rtol=0)
    # The cached schedule really differs from the full one (so the parity above is not vacuous).
    assert (
        loop["final_latents_cfg1.5_deepcache"] - loop["final_latents_cfg1.5"]
    ).abs().max() > 100 * ATOL_F32


@pytest.mark.parametrize("guidance", [1.5, 1.0])
def test_float64_loop_matches_reference_f64(
    fixtures_dir: Path, loop: dict[str, torch.Tensor], guidance: float
) -> None:
    unet64 = load_unet(
        fixtures_dir / "unet_tiny" / "latentsync_unet.pt", UNetConfig.tiny(), dtype=torch.float64
    )
    final = sample_chunk(unet64, **_inputs(loop), config=SamplerConfig(guidance_scale=guidance))
    torch.testing.assert_close(final, loop[f"final_latents_cfg{guidance}_f64"], atol=ATOL_F64, rtol=0)


def _other_chunk(loop: dict[str, torch.Tensor], frames: int, seed: int) -> ChunkInputs:
    g = torch.Generator().manual_seed(seed)
    base = _inputs(loop)
    return ChunkInputs(
        mask_latents=base["mask_latents"][:, :, :frames],
        masked_image_latents=torch.randn((1, 4, frames, 8, 8), generator=g),
        ref_latents=torch.randn((1, 4, frames, 8, 8), generator=g),
        audio_embeds=torch.randn((frames, 50, 16), generator=g),
        init_latents=base["init_latents"][:, :, :frames],
    )


@pytest.mark.parametrize("deep_cache", [False, True])
def test_batched_chunks_equal_sequential(
    unet: LatentSyncUNet, loop: dict[str, torch.Tensor], deep_cache: bool
) -> None:
    config = SamplerConfig(num_inference_steps=8, guidance_scale=1.5, deep_cache=deep_cache)
    chunks = [
        ChunkInputs(**_inputs(loop)),
        _other_chunk(loop, 12, seed=1),  # a shorter last chunk: its own group
        _other_chunk(loop, 16, seed=2),
    ]
    batched = sample_chunks(unet, chunks, config=config)
    assert [tuple(x.shape) for x in batched] == [(1, 4, 16, 8, 8), (1, 4, 12, 8, 8), (1, 4, 16, 8, 8)]
    for chunk, together in zip(chunks, batched, strict=True):
        alone = sample_chunk(
            unet,
            mask_latents=chunk.mask_latents,
            masked_image_latents=chunk.masked_image_latents,
            ref_latents=chunk.ref_latents,
            audio_embeds=chunk.audio_embeds,
            init_latents=chunk.init_latents,
            config=config,
        )
        torch.testing.assert_close(together, alone, atol=ATOL_F32, rtol=0)
    assert not torch.allclose(batched[0], batched[2], atol=1.0)  # different chunks stay different


def test_inputs_are_validated_before_sampling(unet: LatentSyncUNet, loop: dict[str, torch.Tensor]) -> None:
    inputs = _inputs(loop)
    with pytest.raises(ValueError, match="mask_latents must be"):
        sample_chunk(unet, **{**inputs, "mask_latents": inputs["mask_latents"][:, :, :8]})
    with pytest.raises(ValueError, match="audio_embeds must be"):
        sample_chunk(unet, **{**inputs, "audio_embeds": inputs["audio_embeds"][:15]})
    with pytest.raises(ValueError, match="guidance_scale"):
        SamplerConfig(guidance_scale=0.5)
