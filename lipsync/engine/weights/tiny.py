"""Tiny random development weights, in exactly the official layout and file formats (offline, seconds)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from lipsync.engine.releases import DEFAULT_VERSION
from lipsync.engine.weights.layout import WeightsLayout

__all__ = ["TINY_WHISPER_TEXT_DIMS", "write_tiny_weights"]

#: Whisper dims of the tiny weights: encoder width = the tiny U-Net's cross_attention_dim; 1500 positions (30 s)
#: so the real windowing runs unchanged. The decoder is shrunk but present, as in OpenAI's files.
TINY_WHISPER_TEXT_DIMS = {
    "n_vocab": 51865,
    "n_text_ctx": 448,
    "n_text_state": 2,
    "n_text_head": 1,
    "n_text_layer": 4,
}


def _randomise_(tensors: Iterable[tuple[str, torch.Tensor]], generator: torch.Generator) -> None:
    """Unit-gain random values (the fixtures' scheme): outputs are O(1), so every layer matters.

    ndim >= 2: N(0, 1/fan_in); 1-D ``*weight`` (norm scales): 1 + 0.1·N(0,1); 1-D ``*bias``: 0.1·N(0,1).
    """
    with torch.no_grad():
        for name, t in tensors:
            noise = torch.randn(t.shape, generator=generator, dtype=torch.float32)
            if t.ndim >= 2:
                fan_in = int(torch.tensor(t.shape[1:]).prod())
                t.copy_(noise / fan_in**0.5)
            elif name.endswith("weight"):
                t.copy_(1.0 + 0.1 * noise)
            else:
                t.copy_(0.1 * noise)


def _openai_whisper_checkpoint(dims: Mapping[str, int], generator: torch.Generator) -> dict[str, Any]:
    """A random whisper checkpoint in OpenAI's format: ``{"dims", "model_state_dict"}``, float16 tensors."""
    from transformers.models.whisper.modeling_whisper import sinusoids

    shapes: list[tuple[str, tuple[int, ...]]] = []

    def block(prefix: str, width: int, cross: bool) -> None:
        for attn in ("attn", "cross_attn") if cross else ("attn",):
            shapes.extend(
                [
                    (f"{prefix}.{attn}.query.weight", (width, width)),
                    (f"{prefix}.{attn}.query.bias", (width,)),
                    (f"{prefix}.{attn}.key.weight", (width, width)),  # no bias, as in whisper
                    (f"{prefix}.{attn}.value.weight", (width, width)),
                    (f"{prefix}.{attn}.value.bias", (width,)),
                    (f"{prefix}.{attn}.out.weight", (width, width)),
                    (f"{prefix}.{attn}.out.bias", (width,)),
                    (f"{prefix}.{attn}_ln.weight", (width,)),
                    (f"{prefix}.{attn}_ln.bias", (width,)),
                ]
            )
        shapes.extend(
            [
                (f"{prefix}.mlp.0.weight", (4 * width, width)),
                (f"{prefix}.mlp.0.bias", (4 * width,)),
                (f"{prefix}.mlp.2.weight", (width, 4 * width)),
                (f"{prefix}.mlp.2.bias", (width,)),
                (f"{prefix}.mlp_ln.weight", (width,)),
                (f"{prefix}.mlp_ln.bias", (width,)),
            ]
        )

    a, t = dims["n_audio_state"], dims["n_text_state"]
    shapes += [
        ("encoder.conv1.weight", (a, dims["n_mels"], 3)),
        ("encoder.conv1.bias", (a,)),
        ("encoder.conv2.weight", (a, a, 3)),
        ("encoder.conv2.bias", (a,)),
    ]
    for i in range(dims["n_audio_layer"]):
        block(f"encoder.blocks.{i}", a, cross=False)
    shapes += [("encoder.ln_post.weight", (a,)), ("encoder.ln_post.bias", (a,))]
    shapes += [
        ("decoder.token_embedding.weight", (dims["n_vocab"], t)),
        ("decoder.positional_embedding", (dims["n_text_ctx"], t)),
    ]
    for i in range(dims["n_text_layer"]):
        block(f"decoder.blocks.{i}", t, cross=True)
    shapes += [("decoder.ln.weight", (t,)), ("decoder.ln.bias", (t,))]

    state = {name: torch.empty(shape) for name, shape in shapes}
    _randomise_(state.items(), generator)
    # The encoder's positional table is a fixed sinusoid buffer in whisper, not a learned parameter.
    state["encoder.positional_embedding"] = sinusoids(dims["n_audio_ctx"], a)
    return {"dims": dict(dims), "model_state_dict": {k: v.to(torch.float16) for k, v in state.items()}}


#: Spatial attention heads of the development U-Net. The fixtures' tiny config splits its 32 channels into 8
#: heads of 4, which made the (heads x tokens^2) score matrices of the first block's self-attention over half of
#: every U-Net call on a CPU (bench/RESULTS.md, issue 18). Two heads of 16 keep the multi-head code path and the
#: official key layout (heads only split channels: the tensors are the same) at half the cost of a call.
DEVELOPMENT_ATTENTION_HEADS = 2


def write_tiny_weights(
    dest: str | os.PathLike[str], version: str = DEFAULT_VERSION, seed: int = 0
) -> WeightsLayout:
    """Write tiny random weights in exactly the official layout and file formats (a development aid).

    - ``latentsync_unet.pt``: ``torch.save({"global_step": 0, "state_dict": ...})`` of a
      :class:`LatentSyncUNet` built from ``UNetConfig.tiny()`` (same 1,246 keys as the real one) at the
      release's face resolution (1.5: 256 px, 1.6: 512 px), with ``DEVELOPMENT_ATTENTION_HEADS`` heads;
    - ``whisper/tiny.pt``: OpenAI's ``{"dims", "model_state_dict"}`` (float16) with a 16-wide encoder;
    - ``sd-vae-ft-mse/``: a small ``AutoencoderKL`` written by ``save_pretrained`` (safetensors);
    - ``lipsync-weights.json`` with ``"kind": "tiny"`` and the U-Net config, which loading uses.

    The output is meaningless (random weights) but exercises every loading and inference code path offline.
    Face models are not written: use the MediaPipe face backend with tiny weights.
    """
    from lipsync.engine.unet import LatentSyncUNet, UNetConfig
    from lipsync.engine.vae import tiny_autoencoder

    layout = WeightsLayout(Path(dest), version)
    generator = torch.Generator().manual_seed(seed)
    # The release's face resolution (1.6: 512 px), so tiny weights take the same path as the real ones.
    config = dataclasses.replace(
        UNetConfig.tiny(),
        resolution=layout.release.resolution,
        attention_head_dim=DEVELOPMENT_ATTENTION_HEADS,
    )

    unet = LatentSyncUNet(config)
    _randomise_(unet.named_parameters(), generator)  # buffers (pos_encoder.pe) keep their constructed values
    layout.unet_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": 0, "state_dict": unet.state_dict()}, layout.unet_path)

    dims = {
        "n_mels": 80,
        "n_audio_ctx": 1500,
        "n_audio_state": config.cross_attention_dim,
        "n_audio_head": 2,
        "n_audio_layer": 4,
        **TINY_WHISPER_TEXT_DIMS,
    }
    layout.whisper_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_openai_whisper_checkpoint(dims, generator), layout.whisper_path)

    tiny_autoencoder(seed).save_pretrained(layout.vae_dir, safe_serialization=True)

    layout.write_manifest(
        "tiny",
        layout.engine_files(),
        {
            "note": "TINY RANDOM DEVELOPMENT WEIGHTS written by `lipsync weights tiny`: outputs are meaningless.",
            "seed": seed,
            "unet_config": config.to_dict(),
        },
    )
    return layout
