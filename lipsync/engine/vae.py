"""The SD VAE (``stabilityai/sd-vae-ft-mse``) as LatentSync uses it (LATENTSYNC.md §5, §2.7, §2.9).

Encode: ``(latent_dist.sample() - 0) * 0.18215`` — a *stochastic* sample, not the mode. Decode:
``vae.decode(latents / 0.18215 + 0).sample`` with no clamp. Both are batched; batching never changes results:
the encoder moments are computed per batch but the noise is drawn once for the whole call, so the random
stream is consumed exactly as the reference's single ``latent_dist.sample()`` over all frames.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import torch

from lipsync.errors import WeightsError

__all__ = ["SCALING_FACTOR", "SHIFT_FACTOR", "VAE", "tiny_autoencoder"]

#: Set explicitly by the reference (``scripts/inference.py``), whatever the VAE's config.json says.
SCALING_FACTOR = 0.18215
SHIFT_FACTOR = 0.0


class VAE:
    """Thin wrapper around a diffusers ``AutoencoderKL``."""

    def __init__(self, model: Any, *, batch_size: int = 16) -> None:
        self.model = model.eval()
        #: Frames per encoder/decoder forward (memory knob; results do not depend on it).
        self.batch_size = max(1, int(batch_size))
        self.scaling_factor = SCALING_FACTOR
        self.shift_factor = SHIFT_FACTOR

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        batch_size: int = 16,
    ) -> VAE:
        """Load a ``save_pretrained`` directory (``config.json`` + ``diffusion_pytorch_model.safetensors``).

        Always from local files: only :mod:`lipsync.engine.weights` talks to the hub.
        """
        from diffusers import AutoencoderKL

        path = Path(path)
        missing = [
            n for n in ("config.json", "diffusion_pytorch_model.safetensors") if not (path / n).is_file()
        ]
        if missing:
            raise WeightsError(f"VAE directory {path} lacks {', '.join(missing)}")
        try:
            model = AutoencoderKL.from_pretrained(
                path,
                torch_dtype=dtype,
                local_files_only=True,
                # diffusers' low-memory path needs `accelerate`; say so explicitly instead of letting it log a
                # warning on every load when it is not installed (the VAE is small, 335 MB, either way).
                low_cpu_mem_usage=importlib.util.find_spec("accelerate") is not None,
            )
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise WeightsError(f"cannot load the VAE from {path}: {exc}") from exc
        return cls(model.to(torch.device(device)), batch_size=batch_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.model.config.block_out_channels) - 1)

    @torch.inference_mode()
    def encode(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(B, 3, H, W)`` pixels in [-1, 1] → ``(B, 4, H/8, W/8)`` scaled latents (stochastic sample).

        ``generator=None`` draws from the global RNG of the VAE's device, as the reference does.
        """
        from diffusers.utils.torch_utils import randn_tensor

        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"expected frames of shape (B, 3, H, W), got {tuple(frames.shape)}")
        means, stds = [], []
        for batch in frames.split(self.batch_size):
            dist = self.model.encode(batch.to(device=self.device, dtype=self.dtype)).latent_dist
            means.append(dist.mean)
            stds.append(dist.std)
        mean, std = torch.cat(means), torch.cat(stds)
        noise = randn_tensor(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return (mean + std * noise - self.shift_factor) * self.scaling_factor

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``(B, 4, h, w)`` scaled latents → ``(B, 3, 8h, 8w)`` pixels, roughly in [-1, 1] (not clamped)."""
        if latents.ndim != 4:
            raise ValueError(f"expected latents of shape (B, C, h, w), got {tuple(latents.shape)}")
        out = []
        for batch in latents.split(self.batch_size):
            z = batch.to(device=self.device, dtype=self.dtype) / self.scaling_factor + self.shift_factor
            out.append(self.model.decode(z).sample)
        return torch.cat(out)


def tiny_autoencoder(seed: int = 0) -> Any:
    """A small random ``AutoencoderKL`` with the SD topology (4 blocks → factor 8, 4 latent channels).

    For tests and ``lipsync weights tiny``: a few hundred kB, yet the same classes and file format as
    ``sd-vae-ft-mse``.
    """
    from diffusers import AutoencoderKL

    # Seed inside a forked RNG so building tiny weights never disturbs the caller's global random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(8, 16, 16, 16),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=4,
            sample_size=64,
            scaling_factor=SCALING_FACTOR,
        )
    return model.eval()
