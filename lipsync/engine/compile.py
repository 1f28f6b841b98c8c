"""``torch.compile`` for the U-Net with a warm-up outside job time, and the VAE in ``channels_last``.

Both are opt-in (``LipSync(compile=True, channels_last=True)``): compiled kernels fuse and reorder float
operations, and NHWC convolutions pick other cuDNN algorithms, so outputs differ from eager at rounding
level, and the project keeps the reference's numerics by default.

Compiling the whole ``LatentSyncUNet.forward`` works for both schedules because :class:`CompiledUNet` never
hands the compiled code a DeepCache state whose step counter changes: a full step gets a fresh
``DeepCacheState(interval=1)`` (always "full", it captures the features), a cached step a fresh state that is
always "cached" and carries the captured features. Dynamo guards on those constant counters, so a whole
20-step run needs at most three graphs per input shape instead of one per step index.

Job time never compiles: :meth:`CompiledUNet.warm_up` compiles the shapes a job will use (call it when the
models load), and the sampler runs under :func:`no_recompile` (``torch.compiler`` stance
``eager_on_recompile``), so a shape that was not warmed up (a short last chunk, a chunk that lost frames
without a face) runs eagerly instead of stalling the job for a compile. CUDA-graph modes
(``mode="reduce-overhead"``) are not recommended with the staged pipeline: their graphs are recorded per
thread, i.e. again inside the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .deepcache import DeepCacheState
from .unet import LatentSyncUNet
from .unet_config import UNetConfig

__all__ = ["CompiledUNet", "WarmupShape", "compile_unet", "no_recompile", "use_channels_last"]


@dataclass(frozen=True)
class WarmupShape:
    """One U-Net call shape: ``batch`` clips (CFG halves included) of ``frames`` frames at ``latent`` size."""

    batch: int
    frames: int
    latent: int
    deep_cache: bool = False


class CompiledUNet(nn.Module):
    """A ``LatentSyncUNet`` whose forward runs through ``torch.compile``; same call signature and attributes
    (``config``, ``dtype``, ``device``) so the sampler takes it as it is."""

    def __init__(
        self,
        unet: LatentSyncUNet,
        *,
        backend: str | Callable[..., Any] = "inductor",
        mode: str | None = None,
        dynamic: bool | None = None,
    ) -> None:
        super().__init__()
        self.unet = unet
        self.backend = backend
        self.mode = mode
        # The bound forward, not the module: a compiled module would register the U-Net a second time.
        self._compiled: Callable[..., torch.Tensor] = torch.compile(
            unet.forward, backend=backend, mode=mode, dynamic=dynamic
        )
        #: Shapes compiled by :meth:`warm_up`, with the seconds each took.
        self.warmed: dict[WarmupShape, float] = {}

    @property
    def config(self) -> UNetConfig:
        return self.unet.config

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def device(self) -> torch.device:
        return self.unet.device

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor | None,
        *,
        deep_cache: DeepCacheState | None = None,
    ) -> torch.Tensor:
        if deep_cache is None:
            return self._compiled(sample, timestep, encoder_hidden_states)
        if deep_cache.full_step:
            capture = DeepCacheState(interval=1)  # step 0 of interval 1: always a full step
            out = self._compiled(sample, timestep, encoder_hidden_states, deep_cache=capture)
            deep_cache.features = capture.features
            return out
        cached = DeepCacheState(interval=2, step_index=1, features=deep_cache.features)  # always cached
        return self._compiled(sample, timestep, encoder_hidden_states, deep_cache=cached)

    @torch.no_grad()
    def warm_up(self, shapes: Iterable[WarmupShape]) -> dict[WarmupShape, float]:
        """Compile (by running once) every shape in *shapes* not compiled yet; returns seconds per shape."""
        cfg = self.config
        done: dict[WarmupShape, float] = {}
        for shape in shapes:
            if shape in self.warmed:
                continue
            started = time.perf_counter()
            generator = torch.Generator(device="cpu").manual_seed(0)
            size = (shape.batch, cfg.in_channels, shape.frames, shape.latent, shape.latent)
            sample = torch.randn(size, generator=generator).to(self.device, self.dtype)
            context = torch.randn(
                (shape.batch * shape.frames, 50, cfg.cross_attention_dim), generator=generator
            ).to(self.device, self.dtype)
            timestep = torch.tensor(951, device=self.device)
            if shape.deep_cache:
                state = DeepCacheState(interval=3)
                for step in range(2):  # a full step, then a cached one
                    state.step_index = step
                    self(sample, timestep, context, deep_cache=state)
            else:
                self(sample, timestep, context)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            done[shape] = self.warmed[shape] = time.perf_counter() - started
        return done


def compile_unet(
    unet: LatentSyncUNet | CompiledUNet,
    *,
    backend: str | Callable[..., Any] = "inductor",
    mode: str | None = None,
    dynamic: bool | None = None,
) -> CompiledUNet:
    """Wrap *unet* in a :class:`CompiledUNet` (an already compiled one is returned as it is)."""
    if isinstance(unet, CompiledUNet):
        return unet
    return CompiledUNet(unet, backend=backend, mode=mode, dynamic=dynamic)


@contextmanager
def no_recompile() -> Iterator[None]:
    """Inside: compiled code runs where a compiled graph fits the inputs, anything else runs eagerly (no
    compile ever starts). ``torch.compiler`` stances are process-wide; the pipeline runs one job at a time."""
    with torch.compiler.set_stance("eager_on_recompile"):
        yield


def use_channels_last(vae_model: nn.Module) -> nn.Module:
    """Store the VAE's 4-D weights as NHWC: its convolutions then run in channels_last on tensor cores (CUDA),
    and the activations stay NHWC after the first convolution. In place; returns the module."""
    vae_model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing from the stubs
    return vae_model
