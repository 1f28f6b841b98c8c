"""CompiledUNet: same numbers as the eager U-Net (plain and DeepCache schedules); it compiles in warm_up
and never inside a job (a shape that was not warmed up runs eagerly).

torch.compile runs with a counting backend that hands back the traced FX graph unchanged: the test covers our
wrapper (graph capture of the whole forward, the constant DeepCache states, the no-recompile stance) without
paying for Inductor's code generation, which is torch's and is exercised by bench/throughput.py on CUDA.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from lipsync.engine.compile import WarmupShape, compile_unet, no_recompile
from lipsync.engine.sampler import SamplerConfig, sample_chunk
from lipsync.engine.unet import LatentSyncUNet, MotionModuleConfig, UNetConfig

FRAMES, LATENT = 4, 8


class CountingBackend:
    """A torch.compile backend that records every compiled graph and runs it as traced."""

    def __init__(self) -> None:
        self.graphs = 0

    def __call__(self, gm: torch.fx.GraphModule, _example_inputs: list[Any]) -> Callable[..., Any]:
        self.graphs += 1
        return gm.forward


#: Two levels, one layer each: every kind of block the real U-Net has (cross-attention, motion modules, plain
#: ResNets, the mid block), in few enough modules that tracing the forward takes seconds.
MICRO = UNetConfig(
    block_out_channels=(32, 32),
    down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
    up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
    layers_per_block=1,
    norm_num_groups=8,
    attention_head_dim=2,
    cross_attention_dim=16,
    motion_module_kwargs=MotionModuleConfig(num_attention_heads=2),
)


@pytest.fixture(scope="module")
def unet() -> LatentSyncUNet:
    torch.manual_seed(0)
    model = LatentSyncUNet(MICRO).eval()
    model.requires_grad_(False)
    return model


def _chunk(seed: int, frames: int = FRAMES) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (1, 4, frames, LATENT, LATENT)
    return {
        "mask_latents": torch.rand((1, 1, frames, LATENT, LATENT), generator=g).round(),
        "masked_image_latents": torch.randn(shape, generator=g),
        "ref_latents": torch.randn(shape, generator=g),
        "audio_embeds": torch.randn((frames, 50, 16), generator=g),
        "init_latents": torch.randn(shape, generator=g),
    }


def test_compiled_sampling_equals_eager_and_compiles_only_in_warm_up(unet: LatentSyncUNet) -> None:
    # The DeepCache schedule: the wrapper's full-step capture and cached-step graphs, the harder case (without
    # DeepCache the compiled call is the plain forward); ~10 s of tracing per graph on a busy 2-core machine.
    deep_cache = True
    backend = CountingBackend()
    compiled = compile_unet(unet, backend=backend)
    assert compile_unet(compiled) is compiled
    assert (compiled.config, compiled.dtype, compiled.device) == (unet.config, unet.dtype, unet.device)
    assert list(compiled.state_dict()) == [f"unet.{k}" for k in unet.state_dict()]  # registered once

    shape = WarmupShape(batch=2, frames=FRAMES, latent=LATENT, deep_cache=deep_cache)
    seconds = compiled.warm_up([shape])
    # One graph per DeepCache phase (full step with capture, cached step): the forward has no graph break.
    assert set(seconds) == {shape} and backend.graphs == 2
    assert compiled.warm_up([shape]) == {}  # already warm: nothing runs
    graphs = backend.graphs

    config = SamplerConfig(num_inference_steps=4, guidance_scale=1.5, deep_cache=deep_cache)
    inputs = _chunk(1)
    short = _chunk(2, frames=FRAMES - 1)  # e.g. a short last chunk: not warmed up, must run eagerly
    with no_recompile():
        got = sample_chunk(compiled, **inputs, config=config)
        got_short = sample_chunk(compiled, **short, config=config)
    assert backend.graphs == graphs, "a job compiled"
    torch.testing.assert_close(got, sample_chunk(unet, **inputs, config=config), rtol=0, atol=1e-5)
    torch.testing.assert_close(got_short, sample_chunk(unet, **short, config=config), rtol=0, atol=1e-5)
