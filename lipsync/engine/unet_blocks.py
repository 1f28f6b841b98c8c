"""Building blocks of the LatentSync U-Net: inflated convs, ResNets, down/mid/up blocks.

"Inflated" means a 2-D layer applied to every frame of a ``(b, c, f, h, w)`` tensor. The one place the
reference is *not* frame-wise is the ResNet GroupNorm (and the output GroupNorm in ``unet.py``): a plain
``nn.GroupNorm`` on the 5-D tensor, i.e. statistics over all frames of one clip (one batch element). That is
why chunks can be stacked on the batch axis but frames of different clips must never share a batch element.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import SpatialTransformer, batch_to_frames, frames_to_batch
from .motion import MotionModule
from .unet_config import UNetConfig

__all__ = ["DownBlock", "Downsample", "FrameConv2d", "MidBlock", "ResnetBlock3D", "UpBlock", "Upsample"]


class FrameConv2d(nn.Conv2d):
    """The reference ``InflatedConv3d``: a Conv2d run on every frame (weights stay 4-D, as in the checkpoint)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return batch_to_frames(super().forward(frames_to_batch(x)), x.shape[2])


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm per frame (``use_inflated_groupnorm=True`` variant; not used by the official configs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return batch_to_frames(super().forward(frames_to_batch(x)), x.shape[2])


def _group_norm(cfg: UNetConfig, channels: int) -> nn.GroupNorm:
    cls = FrameGroupNorm if cfg.use_inflated_groupnorm else nn.GroupNorm
    return cls(cfg.norm_num_groups, channels, eps=cfg.norm_eps)


class ResnetBlock3D(nn.Module):
    """GN → SiLU → conv → + time → GN → SiLU → conv, + (1×1 shortcut when the width changes).

    GroupNorm statistics span all frames of a batch element (reference behaviour, see module doc).
    """

    def __init__(
        self, cfg: UNetConfig, in_channels: int, out_channels: int, temb_channels: int, scale: float = 1.0
    ) -> None:
        super().__init__()
        self.output_scale_factor = scale
        self.norm1 = _group_norm(cfg, in_channels)
        self.conv1 = FrameConv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = _group_norm(cfg, out_channels)
        self.conv2 = FrameConv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.conv_shortcut = (
            FrameConv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        shortcut = x if self.conv_shortcut is None else self.conv_shortcut(x)
        out = shortcut + h
        return out if self.output_scale_factor == 1.0 else out / self.output_scale_factor


class Downsample(nn.Module):
    def __init__(self, channels: int, padding: int) -> None:
        super().__init__()
        self.conv = FrameConv2d(channels, channels, kernel_size=3, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = FrameConv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        # Nearest-neighbour ×2 in h and w, frames untouched; ``size`` forces the output size (odd latents).
        if size is None:
            x = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
        else:
            x = F.interpolate(x, size=(x.shape[2], *size), mode="nearest")
        return self.conv(x)


def _attention(cfg: UNetConfig, channels: int, heads: int) -> SpatialTransformer:
    return SpatialTransformer(
        channels,
        heads,
        cfg.cross_attention_dim,
        cfg.norm_num_groups,
        cfg.add_audio_layer,
        cfg.use_linear_projection,
    )


class DownBlock(nn.Module):
    """``CrossAttnDownBlock3D`` (``with_attention``) or ``DownBlock3D``: [resnet → attn → motion] × n → down."""

    def __init__(
        self,
        cfg: UNetConfig,
        in_channels: int,
        out_channels: int,
        temb_channels: int,
        heads: int,
        *,
        with_attention: bool,
        with_motion: bool,
        add_downsample: bool,
    ) -> None:
        super().__init__()
        n = cfg.layers_per_block
        # Registration order = the reference state-dict order: attentions, resnets, motion_modules, samplers.
        if with_attention:
            self.attentions = nn.ModuleList([_attention(cfg, out_channels, heads) for _ in range(n)])
        else:
            self.attentions = None
        self.resnets = nn.ModuleList(
            [
                ResnetBlock3D(cfg, in_channels if i == 0 else out_channels, out_channels, temb_channels)
                for i in range(n)
            ]
        )
        self.motion_modules = (
            nn.ModuleList([MotionModule(out_channels, cfg.motion_module_kwargs) for _ in range(n)])
            if with_motion
            else None
        )
        self.downsamplers = (
            nn.ModuleList([Downsample(out_channels, cfg.downsample_padding)]) if add_downsample else None
        )

    def forward(
        self, x: torch.Tensor, temb: torch.Tensor, context: torch.Tensor | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips: list[torch.Tensor] = []
        for i, resnet in enumerate(self.resnets):
            x = resnet(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
            if self.motion_modules is not None:
                x = self.motion_modules[i](x)
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            skips.append(x)
        return x, skips


class MidBlock(nn.Module):
    """``UNetMidBlock3DCrossAttn``: resnet → [attn → (motion) → resnet] × 1."""

    def __init__(
        self, cfg: UNetConfig, channels: int, temb_channels: int, heads: int, with_motion: bool
    ) -> None:
        super().__init__()
        scale = float(cfg.mid_block_scale_factor)
        self.attentions = nn.ModuleList([_attention(cfg, channels, heads)])
        self.resnets = nn.ModuleList(
            [ResnetBlock3D(cfg, channels, channels, temb_channels, scale) for _ in range(2)]
        )
        self.motion_modules = (
            nn.ModuleList([MotionModule(channels, cfg.motion_module_kwargs)]) if with_motion else None
        )

    def forward(self, x: torch.Tensor, temb: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        x = self.resnets[0](x, temb)
        for i, (attention, resnet) in enumerate(zip(self.attentions, self.resnets[1:], strict=True)):
            x = attention(x, context)
            if self.motion_modules is not None:
                x = self.motion_modules[i](x)
            x = resnet(x, temb)
        return x


class UpBlock(nn.Module):
    """``CrossAttnUpBlock3D`` / ``UpBlock3D``: [cat(skip) → resnet → attn → motion] × (n+1) → up.

    Layers are exposed one at a time (:meth:`layer`) so the U-Net can run a DeepCache partial pass that
    starts at the last layer of the last block.
    """

    def __init__(
        self,
        cfg: UNetConfig,
        in_channels: int,
        out_channels: int,
        prev_output_channels: int,
        temb_channels: int,
        heads: int,
        *,
        with_attention: bool,
        with_motion: bool,
        add_upsample: bool,
    ) -> None:
        super().__init__()
        n = cfg.layers_per_block + 1
        if with_attention:
            self.attentions = nn.ModuleList([_attention(cfg, out_channels, heads) for _ in range(n)])
        else:
            self.attentions = None
        resnets = []
        for i in range(n):
            skip_channels = in_channels if i == n - 1 else out_channels
            resnet_in = prev_output_channels if i == 0 else out_channels
            resnets.append(ResnetBlock3D(cfg, resnet_in + skip_channels, out_channels, temb_channels))
        self.resnets = nn.ModuleList(resnets)
        self.motion_modules = (
            nn.ModuleList([MotionModule(out_channels, cfg.motion_module_kwargs) for _ in range(n)])
            if with_motion
            else None
        )
        self.upsamplers = nn.ModuleList([Upsample(out_channels)]) if add_upsample else None

    @property
    def num_layers(self) -> int:
        return len(self.resnets)

    def layer(
        self, i: int, x: torch.Tensor, skip: torch.Tensor, temb: torch.Tensor, context: torch.Tensor | None
    ) -> torch.Tensor:
        x = self.resnets[i](torch.cat([x, skip], dim=1), temb)
        if self.attentions is not None:
            x = self.attentions[i](x, context)
        if self.motion_modules is not None:
            x = self.motion_modules[i](x)
        return x

    def upsample(self, x: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
        return x if self.upsamplers is None else self.upsamplers[0](x, size)
