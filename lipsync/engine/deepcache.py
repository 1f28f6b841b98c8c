"""DeepCache as the reference runs it (``DeepCacheSDHelper``, ``cache_interval=3``, ``cache_branch_id=0``).

On a *full* step the whole U-Net runs and we keep one tensor: the hidden state entering the last layer of
the last up block (before its skip concatenation). On a *cached* step only ``conv_in``, that last layer
(``resnets[-1]`` → ``attentions[-1]`` → ``motion_modules[-1]``, its skip being the fresh ``conv_in`` output,
with the fresh time embedding) and the output head run. This is exactly what the reference computes: its
helper returns cached outputs for every other wrapped block, and the unwrapped motion modules it re-runs on
cached inputs reproduce the cached values, so keeping their result is equivalent and cheaper.

Full steps are the step indices ``i`` with ``i % interval == 0`` (0, 3, …, 18 of 20); every chunk starts with
a fresh :class:`DeepCacheState`, so its first step is always full, as in the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["DeepCacheState"]


@dataclass
class DeepCacheState:
    """Per-chunk DeepCache state, passed to ``LatentSyncUNet.forward(..., deep_cache=state)``.

    Set :attr:`step_index` (the position of the timestep in the schedule) before each call.
    """

    interval: int = 3
    step_index: int = 0
    features: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.interval < 1:
            raise ValueError(f"cache interval must be >= 1, got {self.interval}")

    @property
    def full_step(self) -> bool:
        """Whether the current step runs the whole U-Net (and refreshes the cache)."""
        return self.step_index % self.interval == 0

    def cached_features(self, batch: int, frames: int) -> torch.Tensor:
        """The cached tensor for a partial pass; refuses a missing or mismatched cache."""
        if self.features is None:
            raise RuntimeError(
                f"DeepCache step {self.step_index} is a cached step but no full step has filled the cache"
            )
        if self.features.shape[0] != batch or self.features.shape[2] != frames:
            raise RuntimeError(
                f"DeepCache holds features for batch {self.features.shape[0]} × {self.features.shape[2]} frames, "
                f"this call has batch {batch} × {frames} frames; use one DeepCacheState per chunk"
            )
        return self.features
