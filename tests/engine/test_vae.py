"""The VAE wrapper: reference scaling, stochastic encode, batching, loading a save_pretrained folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lipsync.engine.vae import SCALING_FACTOR, VAE, tiny_autoencoder
from lipsync.errors import WeightsError


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("vae")
    tiny_autoencoder(seed=3).save_pretrained(directory, safe_serialization=True)
    return directory


@pytest.fixture(scope="module")
def vae(vae_dir: Path) -> VAE:
    return VAE.from_pretrained(vae_dir, batch_size=2)


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    return torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_loads_the_diffusers_folder_format(vae_dir: Path, vae: VAE) -> None:
    assert sorted(p.name for p in vae_dir.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    assert vae.scaling_factor == SCALING_FACTOR == 0.18215 and vae.shift_factor == 0.0
    assert vae.downsample_factor == 8
    assert vae.dtype == torch.float32 and vae.device.type == "cpu"


def test_round_trip_shapes(vae: VAE, frames: torch.Tensor) -> None:
    latents = vae.encode(frames, generator=torch.Generator().manual_seed(1))
    assert latents.shape == (5, 4, 8, 8) and latents.dtype == torch.float32
    assert vae.decode(latents).shape == (5, 3, 64, 64)


def test_encode_is_the_reference_scaled_latent_sample(vae: VAE, frames: torch.Tensor) -> None:
    latents = vae.encode(frames, generator=torch.Generator().manual_seed(7))
    # Reference: (vae.encode(x).latent_dist.sample() - 0) * 0.18215, one draw over all frames at once.
    with torch.no_grad():
        dist = vae.model.encode(frames).latent_dist
        expected = dist.sample(generator=torch.Generator().manual_seed(7)) * 0.18215
    torch.testing.assert_close(latents, expected, atol=1e-6, rtol=1e-5)
    # Stochastic, not the mode: the sample differs from the scaled mean by the std-scaled noise.
    assert not torch.allclose(latents, dist.mean * 0.18215, atol=1e-4)


def test_decode_divides_by_the_scaling_factor(vae: VAE) -> None:
    latents = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = vae.model.decode(latents / 0.18215).sample
    torch.testing.assert_close(vae.decode(latents), expected, atol=1e-5, rtol=1e-5)


def test_generator_determinism(vae: VAE, frames: torch.Tensor) -> None:
    a = vae.encode(frames, generator=torch.Generator().manual_seed(11))
    b = vae.encode(frames, generator=torch.Generator().manual_seed(11))
    c = vae.encode(frames, generator=torch.Generator().manual_seed(12))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_global_rng_is_used_without_a_generator(vae: VAE, frames: torch.Tensor) -> None:
    torch.manual_seed(1247)
    a = vae.encode(frames)
    torch.manual_seed(1247)
    b = vae.encode(frames)
    assert torch.equal(a, b)


def test_batched_equals_unbatched(vae_dir: Path, frames: torch.Tensor) -> None:
    one = VAE.from_pretrained(vae_dir, batch_size=1)
    everything = VAE.from_pretrained(vae_dir, batch_size=16)
    # The noise is drawn once per call, so batching never changes which random numbers a frame gets.
    enc_one = one.encode(frames, generator=torch.Generator().manual_seed(5))
    enc_all = everything.encode(frames, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(enc_one, enc_all, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(one.decode(enc_all), everything.decode(enc_all), atol=2e-5, rtol=1e-5)


def test_bad_shapes_and_missing_files(vae: VAE, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        vae.encode(torch.zeros(3, 64, 64))
    with pytest.raises(ValueError, match="latents"):
        vae.decode(torch.zeros(4, 8, 8))
    with pytest.raises(WeightsError, match=r"diffusion_pytorch_model\.safetensors"):
        VAE.from_pretrained(tmp_path)
