"""The LatentSync U-Net, checkpoint-compatible with the official ``latentsync_unet.pt`` (1.5 and 1.6).

Topology: the SD-1.5 U-Net inflated to video (every 2-D op runs per frame), AnimateDiff motion modules after
each layer of all four down and up blocks, and the text cross-attention re-purposed for Whisper audio
(``attn2``, 50 tokens of 384 per frame). State-dict keys and shapes are the reference's, so the official
checkpoint loads strictly (:func:`load_unet`).

Shapes: ``sample (B, 13, f, h, w)`` = [noisy latents 4 | mask 1 | masked-image latents 4 | reference latents 4],
``encoder_hidden_states`` ``(B·f, 50, 384)`` (b outer) or ``(B, f, 50, 384)``; output ``(B, 4, f, h, w)``.
Every batch element is an independent clip: ResNet and output GroupNorms pool statistics over the frames of
one element only, so chunks (and CFG halves) can share a batch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from lipsync.errors import WeightsError

from .checkpoint import StateDictSource, check_state_dict, read_state_dict
from .deepcache import DeepCacheState
from .releases import VERSIONS, normalise_version, unet_config_for
from .unet_blocks import DownBlock, FrameConv2d, FrameGroupNorm, MidBlock, UpBlock
from .unet_config import MotionModuleConfig, UNetConfig

__all__ = ["DeepCacheState", "LatentSyncUNet", "MotionModuleConfig", "UNetConfig", "load_unet"]


class LatentSyncUNet(nn.Module):
    """Noise predictor ``unet(sample, timestep, audio) -> eps``; see the module docstring for shapes."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        ch = config.block_out_channels
        n = len(ch)
        temb_dim = ch[0] * 4
        mm = config.use_motion_module

        self.conv_in = FrameConv2d(config.in_channels, ch[0], kernel_size=3, padding=1)
        self.time_proj = Timesteps(ch[0], config.flip_sin_to_cos, config.freq_shift)
        self.time_embedding = TimestepEmbedding(ch[0], temb_dim)

        self.down_blocks = nn.ModuleList()
        out_ch = ch[0]
        for i, kind in enumerate(config.down_block_types):
            in_ch, out_ch = out_ch, ch[i]
            self.down_blocks.append(
                DownBlock(
                    config,
                    in_ch,
                    out_ch,
                    temb_dim,
                    config.heads(i),
                    with_attention=kind == "CrossAttnDownBlock3D",
                    with_motion=mm
                    and 2**i in config.motion_module_resolutions
                    and not config.motion_module_decoder_only,
                    add_downsample=i < n - 1,
                )
            )

        # The reference registers up_blocks before mid_block (state-dict order follows); we do the same.
        self.up_blocks = nn.ModuleList()
        rev = list(reversed(ch))
        rev_heads = [config.heads(i) for i in reversed(range(n))]
        out_ch = rev[0]
        for i, kind in enumerate(config.up_block_types):
            prev_ch, out_ch = out_ch, rev[i]
            self.up_blocks.append(
                UpBlock(
                    config,
                    rev[min(i + 1, n - 1)],
                    out_ch,
                    prev_ch,
                    temb_dim,
                    rev_heads[i],
                    with_attention=kind == "CrossAttnUpBlock3D",
                    with_motion=mm and 2 ** (n - 1 - i) in config.motion_module_resolutions,
                    add_upsample=i < n - 1,
                )
            )
        self.mid_block = MidBlock(
            config, ch[-1], temb_dim, config.heads(n - 1), mm and config.motion_module_mid_block
        )

        norm_cls = FrameGroupNorm if config.use_inflated_groupnorm else nn.GroupNorm
        self.conv_norm_out = norm_cls(config.norm_num_groups, ch[0], eps=config.norm_eps)
        self.conv_act = nn.SiLU()
        self.conv_out = FrameConv2d(ch[0], config.out_channels, kernel_size=3, padding=1)

    # ------------------------------------------------------------------------------------------ helpers
    @property
    def dtype(self) -> torch.dtype:
        return self.conv_in.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.conv_in.weight.device

    def _time_embedding(
        self, timestep: torch.Tensor | float | int, batch: int, device: torch.device
    ) -> torch.Tensor:
        if not torch.is_tensor(timestep):
            dtype = torch.float64 if isinstance(timestep, float) else torch.int64
            timestep = torch.tensor([timestep], dtype=dtype, device=device)
        elif timestep.ndim == 0:
            timestep = timestep[None]
        timestep = timestep.to(device).expand(batch)
        # The sinusoidal table is computed in fp32 (as diffusers does), then cast to the model dtype.
        return self.time_embedding(self.time_proj(timestep).to(self.dtype))

    def _check_inputs(self, sample: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor | None:
        cfg = self.config
        if sample.ndim != 5 or sample.shape[1] != cfg.in_channels:
            raise ValueError(f"sample must be (B, {cfg.in_channels}, f, h, w), got {tuple(sample.shape)}")
        b, _, f, _, _ = sample.shape
        max_f = cfg.motion_module_kwargs.temporal_position_encoding_max_len
        if cfg.use_motion_module and cfg.motion_module_kwargs.temporal_position_encoding and f > max_f:
            raise ValueError(f"at most {max_f} frames per chunk (temporal position table), got {f}")
        if context is None:
            return None
        if context.ndim == 4:
            context = context.reshape(-1, *context.shape[2:])
        if context.ndim != 3 or context.shape[0] != b * f or context.shape[-1] != cfg.cross_attention_dim:
            raise ValueError(
                f"encoder_hidden_states must be (B·f={b * f}, tokens, {cfg.cross_attention_dim}) or "
                f"(B={b}, f={f}, tokens, {cfg.cross_attention_dim}), got {tuple(context.shape)}"
            )
        return context

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv_act(self.conv_norm_out(x)))

    # ------------------------------------------------------------------------------------------ forward
    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor | None,
        *,
        deep_cache: DeepCacheState | None = None,
    ) -> torch.Tensor:
        """Predict the noise. With ``deep_cache`` set, follow its full/cached step schedule (see deepcache.py)."""
        context = self._check_inputs(sample, encoder_hidden_states)
        b, _, f, h, w = sample.shape
        temb = self._time_embedding(timestep, b, sample.device)
        if self.config.center_input_sample:
            sample = 2 * sample - 1.0
        x = self.conv_in(sample)
        last_up = self.up_blocks[-1]

        if deep_cache is not None and not deep_cache.full_step:
            hidden = deep_cache.cached_features(b, f)
            # The last layer of the last up block consumes the first skip, which is conv_in's output.
            x = last_up.layer(last_up.num_layers - 1, hidden, x, temb, context)
            return self._head(last_up.upsample(x, None))

        skips = [x]
        for down in self.down_blocks:
            x, block_skips = down(x, temb, context)
            skips.extend(block_skips)
        x = self.mid_block(x, temb, context)

        # Latent sizes that are not multiples of 2**upsamplers need the skip's size forced on the upsampler.
        factor = 2 ** sum(up.upsamplers is not None for up in self.up_blocks)
        force_size = h % factor != 0 or w % factor != 0
        for up in self.up_blocks:
            k = up.num_layers
            block_skips, skips = skips[-k:], skips[:-k]
            for i in range(k):
                if deep_cache is not None and up is last_up and i == k - 1:
                    deep_cache.features = x
                x = up.layer(i, x, block_skips[k - 1 - i], temb, context)
            size = (skips[-1].shape[3], skips[-1].shape[4]) if force_size and skips else None
            x = up.upsample(x, size)
        return self._head(x)


def _resolve_config(config: UNetConfig | str | os.PathLike[str]) -> UNetConfig:
    if isinstance(config, UNetConfig):
        return config
    text = os.fspath(config)
    if normalise_version(text) is not None:
        return unet_config_for(text)
    path = Path(text)
    if path.is_file():
        return UNetConfig.from_json(path)
    raise ValueError(
        f"config must be a UNetConfig, a version ({'/'.join(VERSIONS)}) or a config.json path, got {config!r}"
    )


def load_unet(
    checkpoint: StateDictSource,
    config: UNetConfig | str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> LatentSyncUNet:
    """Build the U-Net for ``config`` and load ``checkpoint`` strictly, in eval mode without gradients.

    ``checkpoint`` is a path to the official ``latentsync_unet.pt`` (``{"global_step", "state_dict"}``,
    unprefixed keys; a bare state dict or ``.safetensors`` also work) or an in-memory state dict.
    ``config`` is a :class:`UNetConfig`, a release version (``"1.6"``) or a reference-style ``config.json`` path.

    Every key of the model must be present with its shape and nothing else may be: otherwise
    :class:`~lipsync.errors.WeightsError` names the offending keys. The model is built on the meta device
    and the (memory-mapped) checkpoint tensors are assigned into it, so weights are never held twice; for
    CPU fp32 the parameters *are* the mapped file pages (or, for a state dict, the caller's tensors).
    """
    cfg = _resolve_config(config)
    with torch.device("meta"):
        model = LatentSyncUNet(cfg)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    what = (
        "UNet checkpoint" if isinstance(checkpoint, Mapping) else f"UNet checkpoint {os.fspath(checkpoint)}"
    )
    state = read_state_dict(checkpoint, what=what)
    check_state_dict(expected, state, what=what)
    target = torch.device(device)
    # Convert tensor by tensor (a no-op for CPU fp32), dropping each source reference as we go.
    converted: dict[str, torch.Tensor] = {}
    for key in list(state):
        converted[key] = state.pop(key).to(device=target, dtype=dtype)
    model.load_state_dict(converted, strict=True, assign=True)
    del converted
    left_on_meta = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left_on_meta:  # cannot happen after a strict load; guards future non-persistent buffers
        raise WeightsError(f"{what}: tensors not loaded: {left_on_meta[:12]}")
    model.eval()
    model.requires_grad_(False)
    return model
