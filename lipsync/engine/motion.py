"""AnimateDiff-style motion modules (temporal attention across the frames of a chunk).

Reference: ``VanillaTemporalModule`` → ``TemporalTransformer3DModel`` → ``TemporalTransformerBlock`` →
2 × ``VersatileAttention("Temporal_Self")`` with a sinusoidal positional encoding added to the *normed* input.
Every token of the feature map (each pixel of each batch element) attends over the ``f`` frames.

Layout note: the reference moves between ``(b·f, h·w, c)`` and ``(b·h·w, f, c)`` around every attention layer.
LayerNorm, the linear layers and the feed-forward are token-wise, so we switch to the frame-sequence layout
once, after the GroupNorm, and back once at the end; the arithmetic per token is unchanged.
"""

from __future__ import annotations

import math

import torch
from diffusers.models.attention import FeedForward
from torch import nn

from .attention import Attention, feed_forward, frames_to_batch
from .unet_config import MOTION_NORM_GROUPS, MotionModuleConfig

__all__ = ["MotionModule", "PositionalEncoding", "TemporalAttention", "TemporalTransformer"]


class PositionalEncoding(nn.Module):
    """Sinusoidal frame-position table; ``pe`` is a persistent buffer, stored in the official checkpoint."""

    def __init__(self, dim: int, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
        pe = torch.zeros(1, max_len, dim)
        pe[0, :, 0::2] = torch.sin(position * div_term)
        pe[0, :, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[:, : x.shape[1]]


class TemporalAttention(Attention):
    """Self-attention over frames, input ``(tokens, f, c)``; q, k and v all see the position-encoded input."""

    def __init__(self, dim: int, heads: int, dim_head: int, max_len: int, position_encoding: bool) -> None:
        super().__init__(dim, heads, dim_head)
        self.pos_encoder = PositionalEncoding(dim, max_len) if position_encoding else None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if self.pos_encoder is not None:
            x = self.pos_encoder(x)
        return super().forward(x)


class TemporalTransformerBlock(nn.Module):
    def __init__(self, dim: int, cfg: MotionModuleConfig) -> None:
        super().__init__()
        heads = cfg.num_attention_heads
        dim_head = dim // heads // cfg.temporal_attention_dim_div
        self.attention_blocks = nn.ModuleList(
            [
                TemporalAttention(
                    dim,
                    heads,
                    dim_head,
                    cfg.temporal_position_encoding_max_len,
                    cfg.temporal_position_encoding,
                )
                for _ in cfg.attention_block_types
            ]
        )
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in cfg.attention_block_types])
        self.ff = FeedForward(dim, activation_fn="geglu")
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(b·h·w, f, c)`` frame sequences."""
        for attention, norm in zip(self.attention_blocks, self.norms, strict=True):
            x = attention(norm(x)) + x
        return feed_forward(self.ff, self.ff_norm(x)) + x


class TemporalTransformer(nn.Module):
    def __init__(self, channels: int, cfg: MotionModuleConfig) -> None:
        super().__init__()
        inner = cfg.num_attention_heads * (
            channels // cfg.num_attention_heads // cfg.temporal_attention_dim_div
        )
        self.norm = nn.GroupNorm(MOTION_NORM_GROUPS, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList(
            [TemporalTransformerBlock(inner, cfg) for _ in range(cfg.num_transformer_block)]
        )
        self.proj_out = nn.Linear(inner, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = x.shape
        # GroupNorm per frame (the reference runs it on the (b f) c h w layout).
        hs = self.norm(frames_to_batch(x))
        # (b f) c h w -> (b h w) f c: one sequence of f frames per pixel. Explicitly contiguous: for b = 1 a
        # reshape would return a strided view, and Linear on that falls back to a batched matmul (bmm with
        # the weight broadcast over h·w sequences), which is several times slower on CPU.
        hs = hs.view(b, f, c, h * w).permute(0, 3, 1, 2).contiguous().view(b * h * w, f, c)
        hs = self.proj_in(hs)
        for block in self.transformer_blocks:
            hs = block(hs)
        hs = self.proj_out(hs)
        hs = hs.view(b, h, w, f, c).permute(0, 4, 3, 1, 2)
        return hs + x


class MotionModule(nn.Module):
    """``VanillaTemporalModule``: a thin holder, kept for the ``temporal_transformer.`` key prefix."""

    def __init__(self, channels: int, cfg: MotionModuleConfig) -> None:
        super().__init__()
        self.max_frames = cfg.temporal_position_encoding_max_len
        self.temporal_transformer = TemporalTransformer(channels, cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal_transformer(x)
