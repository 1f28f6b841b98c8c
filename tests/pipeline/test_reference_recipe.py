"""The pipeline's numbers against the reference recipe (LATENTSYNC.md §2.6-2.11) written out step by step.

The expected frames are computed here the way ``LipsyncPipeline.__call__`` does it: global RNG seeded once,
the initial noise drawn first as one (1, 4, 1, h, w) tensor repeated over the frames, then the masked-image
and the reference VAE samples (``latent_dist.sample()``), nearest-neighbour mask latents, a DDIM scheduler
built from the reference's scheduler_config.json, uncond-first CFG on zero audio, decode, surrounding pixels
pasted back, inverse warp. Only the model weights (tiny, random) and the face backend (MediaPipe) differ
from a real run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler

from lipsync import LipSync
from lipsync.media.align import FaceAligner, paste_back
from lipsync.media.io import iter_frames_25fps, load_audio_16k
from lipsync.media.mask import fixed_mask
from tests.pipeline.clips import face_clip, speech

SEED = 7
STEPS = 2
GUIDANCE = 1.5


def _clip(x: torch.Tensor) -> torch.Tensor:
    """``f c h w -> 1 c f h w`` (the reference's rearrange)."""
    return x.permute(1, 0, 2, 3).unsqueeze(0)


@torch.no_grad()
def reference_frames(video: Path, audio: Path, models, detector) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    frames = list(iter_frames_25fps(video))
    enc = models.audio_encoder
    whisper_chunks = enc.frame_windows(enc.features(load_audio_16k(audio)))  # the reference's own count
    n = len(whisper_chunks)
    assert n <= len(frames) <= 16, "this recipe covers one chunk, video at least as long as the audio"
    frames = frames[:n]
    aligner = FaceAligner(256)
    faces = [aligner.align(f, detector.detect(f)) for f in frames]

    torch.manual_seed(SEED)  # accelerate.set_seed(seed): the global CPU generator
    latents = torch.randn((1, 4, 1, 32, 32)).repeat(1, 1, n, 1, 1)

    mask_image = torch.from_numpy(np.array(fixed_mask(256)))[None]  # (1, R, R) float64
    images = torch.from_numpy(np.stack([a.face_rgb for a in faces])).permute(0, 3, 1, 2)
    pixel_values = (images / 255.0 - 0.5) / 0.5
    masked_pixel_values = pixel_values * mask_image
    vae = models.vae.model
    masked_latents = vae.encode(masked_pixel_values.to(torch.float32)).latent_dist.sample() * 0.18215
    ref_latents = vae.encode(pixel_values).latent_dist.sample() * 0.18215
    masks = mask_image[0:1].expand(n, 1, 256, 256)
    mask_latents = F.interpolate(masks, size=(32, 32)).to(torch.float32)
    cond = torch.cat([_clip(mask_latents), _clip(masked_latents), _clip(ref_latents)], dim=1)
    cond = torch.cat([cond] * 2)
    audio_embeds = whisper_chunks[:n].to(torch.float32)
    audio_embeds = torch.cat([torch.zeros_like(audio_embeds), audio_embeds])

    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    scheduler.set_timesteps(STEPS)
    for t in scheduler.timesteps:
        unet_input = torch.cat([torch.cat([latents] * 2), cond], dim=1)
        noise_pred = models.unet(unet_input, t, audio_embeds)
        uncond, audio_pred = noise_pred.chunk(2)
        noise_pred = uncond + GUIDANCE * (audio_pred - uncond)
        latents = scheduler.step(noise_pred, t, latents, eta=0.0).prev_sample

    decoded = vae.decode((latents / 0.18215)[0].permute(1, 0, 2, 3)).sample
    keep = (1 - masks).to(torch.float32)
    combined = decoded * keep + pixel_values * (1 - keep)
    return [paste_back(frames[i], combined[i], faces[i]) for i in range(n)]


def test_one_chunk_matches_the_reference_recipe(
    tmp_path: Path,
    media_dir: Path,
    tiny_models,
    mediapipe_detector,  # type: ignore[no-untyped-def]
) -> None:
    video = face_clip(media_dir, tmp_path / "v.mp4", frames=10)
    audio = speech(media_dir, tmp_path / "a.wav", 0.25)  # 4000 samples -> L = 12 -> 8 frames
    ls = LipSync(version="1.5", models=tiny_models, detector=mediapipe_detector)
    job = ls.prepare(video, audio, seed=SEED, guidance_scale=GUIDANCE, inference_steps=STEPS)
    assert job.timeline.num_frames == 8
    got = list(job.frames())
    expected = reference_frames(video, audio, tiny_models, mediapipe_detector)
    assert len(got) == len(expected) == 8
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert np.array_equal(a, b), f"frame {i}: max diff {np.abs(a.astype(int) - b.astype(int)).max()}"
    # And the faces did change (the comparison is not between two untouched copies of the input).
    source = list(iter_frames_25fps(video))
    assert all(not np.array_equal(g, s) for g, s in zip(got, source, strict=False))
