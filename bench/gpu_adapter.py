"""The GPU benchmark's one coupling to the engine and the pipeline: every ``lipsync`` name it uses is here.

``bench/gpu_sections.py`` builds models, inputs and pipelines only through these functions, so when an engine
module moves (weights split, a new pipeline driver, new run options) this file is the one to fix.

Nothing here needs a file from the hub: the models are the real architectures with random values, built
directly on the device (full size on a GPU, tiny for ``--dry-run``), and the face detector is
:class:`FixedFaceDetector` (MediaPipe and the InsightFace weights are not on the lent GPU machine).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lipsync.engine.compile import CompiledUNet, WarmupShape, compile_unet, no_recompile
from lipsync.engine.deepcache import DeepCacheState
from lipsync.engine.device import select_audio_dtype, select_device, select_dtype
from lipsync.engine.releases import unet_config_for
from lipsync.engine.sampler import SamplerConfig, sample_chunk
from lipsync.engine.unet import LatentSyncUNet, UNetConfig
from lipsync.engine.weights import EngineModels
from lipsync.media.faces import Face

__all__ = [
    "DEMO1_FACE",
    "CompiledUNet",
    "DeepCacheState",
    "FixedFaceDetector",
    "WarmupShape",
    "compile_unet",
    "flops_table",
    "make_lipsync",
    "no_recompile",
    "random_models",
    "sample",
    "select_device",
    "select_dtype",
    "unet_inputs",
]

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``$LIPSYNC_SHARED_DIR`` (bench/gpu.sh points it at ``.whl/shared`` on the lent machine) or ``../shared``."""
    env = os.environ.get("LIPSYNC_SHARED_DIR")
    return Path(env) if env else REPO.parent / "shared"


def flops_table() -> dict[str, Any]:
    """``reference/fixtures/flops.json``: the FLOP counts measured on the full-size models."""
    data: dict[str, Any] = json.loads((shared_dir() / "reference" / "fixtures" / "flops.json").read_text())
    return data


# --- models ----------------------------------------------------------------------------------------------------


def unet_config(version: str, *, tiny: bool) -> UNetConfig:
    return UNetConfig.tiny() if tiny else unet_config_for(version)


def random_models(version: str, device: str, dtype: str, *, tiny: bool = False) -> EngineModels:
    """U-Net, SD VAE and Whisper-tiny encoder with random values, built on the device in ``dtype``.

    Full size: the official architectures (1.27 B-parameter U-Net, ``sd-vae-ft-mse``'s config from flops.json,
    Whisper tiny's encoder). ``tiny``: the shapes of ``lipsync weights tiny`` (seconds on a CPU). Timings do
    not depend on the values, only on the shapes, so random weights give the real costs.
    """
    from diffusers import AutoencoderKL
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from lipsync.engine.audio import AudioEncoder
    from lipsync.engine.vae import VAE, tiny_autoencoder

    target = select_device(device)
    precision = select_dtype(target, dtype)
    config = unet_config(version, tiny=tiny)
    torch.manual_seed(0)
    width = config.cross_attention_dim
    whisper = WhisperConfig(
        d_model=width,
        encoder_layers=4,
        encoder_attention_heads=2 if tiny else 6,
        encoder_ffn_dim=4 * width,
        num_mel_bins=80,
        max_source_positions=1500,
        activation_function="gelu",
    )
    whisper._attn_implementation = "sdpa"
    with torch.device(target):
        unet = LatentSyncUNet(config).to(precision).eval()
        vae_model = tiny_autoencoder(0) if tiny else AutoencoderKL(**flops_table()["vae"]["config"])
        vae_model = vae_model.to(target, precision).eval()
        encoder = WhisperEncoder(whisper).to(select_audio_dtype(target)).eval()
    for module in (unet, vae_model, encoder):
        module.requires_grad_(False)
    return EngineModels(
        unet=unet,
        audio_encoder=AudioEncoder(encoder),
        vae=VAE(vae_model),
        unet_config=config,
        device=target,
        dtype=precision,
        version=version,
        tiny=tiny,
    )


# --- inputs ----------------------------------------------------------------------------------------------------


def unet_inputs(
    unet: LatentSyncUNet | CompiledUNet, batch: int, frames: int, latent: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random (never zero: zeros can run faster than data) U-Net inputs: sample, timestep, audio context."""
    cfg = unet.config
    g = torch.Generator(device="cpu").manual_seed(0)
    sample_ = torch.randn((batch, cfg.in_channels, frames, latent, latent), generator=g)
    context = torch.randn((batch * frames, 50, cfg.cross_attention_dim), generator=g)
    return (
        sample_.to(unet.device, unet.dtype),
        torch.tensor(951, device=unet.device),
        context.to(unet.device, unet.dtype),
    )


def sample(
    unet: LatentSyncUNet | CompiledUNet,
    *,
    chunks: int,
    frames: int,
    latent: int,
    steps: int,
    guidance: float,
    deep_cache: bool,
) -> torch.Tensor:
    """One sampler call over ``chunks`` stacked chunks (the staged pipeline's chunk batch) on random inputs."""
    g = torch.Generator(device="cpu").manual_seed(1)
    width = unet.config.cross_attention_dim

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=g).to(unet.device, unet.dtype)

    return sample_chunk(
        unet,  # type: ignore[arg-type]  # CompiledUNet keeps LatentSyncUNet's call signature
        mask_latents=rand(chunks, 1, frames, latent, latent),
        masked_image_latents=rand(chunks, 4, frames, latent, latent),
        ref_latents=rand(chunks, 4, frames, latent, latent),
        audio_embeds=rand(chunks, frames, 50, width),
        init_latents=rand(chunks, 4, frames, latent, latent),
        config=SamplerConfig(num_inference_steps=steps, guidance_scale=guidance, deep_cache=deep_cache),
    )


# --- face detector ---------------------------------------------------------------------------------------------

#: MediaPipe's face on frame 0 of ``demo1_video.mp4`` (1080x1920), measured here with
#: ``create_detector("mediapipe")``; tests/bench/test_gpu.py checks it against MediaPipe on that frame.
DEMO1_FACE = {
    "bbox": (510.85, 637.58, 701.80, 828.54),
    "score": 0.888,
    "points3": ((559.0, 661.0), (656.0, 673.0), (595.0, 722.0)),
}


@dataclass
class FixedFaceDetector:
    """The same face on every frame: the lent GPU machine has neither MediaPipe nor the InsightFace weights.

    The pipeline's cost after detection (alignment warp, VAE, U-Net, paste-back) does not depend on where the
    face is, so e2e timings hold; detection itself is then ~0 and is measured on the CPU by bench/pipeline.py.
    """

    face: Face
    name: str = "fixed"

    @classmethod
    def demo1(cls) -> FixedFaceDetector:
        points = np.asarray(DEMO1_FACE["points3"], dtype=np.float64)
        bbox = tuple(float(v) for v in DEMO1_FACE["bbox"])  # type: ignore[attr-defined]
        return cls(Face(bbox=bbox, score=float(DEMO1_FACE["score"]), landmarks=points, points3=points))  # type: ignore[arg-type]

    def detect(self, frame_rgb: np.ndarray) -> Face | None:
        return self.face

    def close(self) -> None:
        return None


# --- pipeline --------------------------------------------------------------------------------------------------


def make_lipsync(models: EngineModels, detector: FixedFaceDetector, **throughput: Any) -> Any:
    """A :class:`lipsync.LipSync` over already built models and detector (``pipeline=``, ``compile=``, …)."""
    from lipsync.pipeline import LipSync

    return LipSync(version=models.version, models=models, detector=detector, **throughput)
