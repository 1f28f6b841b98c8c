"""Loading a weights folder into the engine's models: one path for official and tiny weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from lipsync.engine.weights.layout import WeightsLayout
from lipsync.errors import WeightsError

if TYPE_CHECKING:
    from lipsync.engine.audio import AudioEncoder
    from lipsync.engine.unet import LatentSyncUNet
    from lipsync.engine.unet_config import UNetConfig
    from lipsync.engine.vae import VAE

__all__ = ["EngineModels", "load_engine_models"]


@dataclass
class EngineModels:
    """Everything the sampler needs, on one device."""

    unet: LatentSyncUNet
    audio_encoder: AudioEncoder
    vae: VAE
    unet_config: UNetConfig
    device: torch.device
    dtype: torch.dtype
    version: str
    tiny: bool


def load_engine_models(
    layout: WeightsLayout,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    *,
    audio_dtype: str | torch.dtype | None = None,
) -> EngineModels:
    """Load U-Net, Whisper encoder and VAE from ``layout`` — the one path for official and tiny weights.

    ``device``/``dtype`` default to :func:`~lipsync.engine.device.select_device` /
    :func:`~lipsync.engine.device.select_dtype` (reference behaviour); the Whisper encoder follows the
    reference's own rule (float16 on any GPU) unless ``audio_dtype`` says otherwise.
    """
    from lipsync.engine.audio import AudioEncoder
    from lipsync.engine.device import select_audio_dtype, select_device, select_dtype
    from lipsync.engine.unet import load_unet
    from lipsync.engine.vae import VAE

    layout.check()
    target = select_device(device)
    precision = select_dtype(target, dtype)
    config = layout.unet_config()
    audio_encoder = AudioEncoder.from_checkpoint(
        layout.whisper_path, device=target, dtype=select_audio_dtype(target, audio_dtype)
    )
    if audio_encoder.hidden_size != config.cross_attention_dim:
        raise WeightsError(
            f"{layout.whisper_path} is {audio_encoder.hidden_size}-wide but the U-Net expects "
            f"{config.cross_attention_dim}-wide audio features (cross_attention_dim)"
        )
    unet = load_unet(layout.unet_path, config, device=target, dtype=precision)
    vae = VAE.from_pretrained(layout.vae_dir, device=target, dtype=precision)
    return EngineModels(
        unet=unet,
        audio_encoder=audio_encoder,
        vae=vae,
        unet_config=config,
        device=target,
        dtype=precision,
        version=layout.version,
        tiny=layout.is_tiny,
    )
