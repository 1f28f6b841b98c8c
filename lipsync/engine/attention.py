"""Attention layers of the LatentSync U-Net: SDPA attention and the per-frame spatial transformer.

The reference uses its own small ``Attention`` module (not diffusers' processor-based one): ``to_q/to_k/to_v``
without bias, ``to_out.0`` with bias, ``F.scaled_dot_product_attention`` with the default ``head_dim**-0.5``
scale and no mask. We keep that exact shape here because the temporal attention (``motion.py``) needs the same
layer with a ``pos_encoder`` child under the same key prefix, which diffusers' ``Attention`` cannot host
without carrying its unrelated optional sub-modules. The feed-forward is diffusers' ``FeedForward`` (GEGLU),
which is numerically what the reference imports.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from torch import nn

__all__ = [
    "Attention",
    "BasicTransformerBlock",
    "SpatialTransformer",
    "batch_to_frames",
    "feed_forward",
    "frames_to_batch",
]

#: Row budget for the GEGLU feed-forward: its 8×dim hidden is the largest activation of the network
#: (335 MB fp32 at 256 px, batch 2, 16 frames, per call). Rows are independent, so running them in slices of
#: at most this many hidden elements caps peak memory without changing the arithmetic of any row.
FF_CHUNK_ELEMENTS = 16 * 2**20


def frames_to_batch(x: torch.Tensor) -> torch.Tensor:
    """``(b, c, f, h, w) -> (b·f, c, h, w)``, b outer: frame-wise 2-D ops run on this layout."""
    b, c, f, h, w = x.shape
    return x.transpose(1, 2).reshape(b * f, c, h, w)


def batch_to_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Inverse of :func:`frames_to_batch` (a view, like the reference's einops rearrange)."""
    bf, c, h, w = x.shape
    return x.view(bf // frames, frames, c, h, w).transpose(1, 2)


def feed_forward(ff: FeedForward, x: torch.Tensor, chunk_elements: int = FF_CHUNK_ELEMENTS) -> torch.Tensor:
    """``ff(x)`` evaluated in slices along dim 0 when the GEGLU hidden would exceed ``chunk_elements``."""
    hidden = ff.net[0].proj.out_features
    per_row = hidden * x[0].numel() // x.shape[-1]
    rows = max(1, chunk_elements // max(per_row, 1))
    if x.shape[0] <= rows:
        return ff(x)
    return torch.cat([ff(part) for part in x.split(rows)])


class Attention(nn.Module):
    """Multi-head attention over ``(batch, tokens, dim)``; self-attention when ``context`` is None."""

    def __init__(self, query_dim: int, heads: int, dim_head: int, context_dim: int | None = None) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim or query_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim or query_dim, inner, bias=False)
        # The reference's to_out is [Linear, Dropout(0)]; only index 0 has weights ("to_out.0.*").
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim)])

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        ctx = x if context is None else context
        q, k, v = self._split(self.to_q(x)), self._split(self.to_k(ctx)), self._split(self.to_v(ctx))
        out = F.scaled_dot_product_attention(q, k, v)
        b, _, n, _ = out.shape
        return self.to_out[0](out.transpose(1, 2).reshape(b, n, -1))


class BasicTransformerBlock(nn.Module):
    """Spatial self-attention, audio cross-attention (``attn2``), GEGLU feed-forward; pre-LayerNorm."""

    def __init__(self, dim: int, heads: int, context_dim: int, add_audio_layer: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, dim // heads)
        self.norm2: nn.LayerNorm | None = None
        self.attn2: Attention | None = None
        if add_audio_layer:
            self.norm2 = nn.LayerNorm(dim)
            self.attn2 = Attention(dim, heads, dim // heads, context_dim=context_dim)
        self.ff = FeedForward(dim, activation_fn="geglu")
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        if self.attn2 is not None and self.norm2 is not None and context is not None:
            x = self.attn2(self.norm2(x), context) + x
        return feed_forward(self.ff, self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    """The reference ``Transformer3DModel``: a 2-D transformer applied to every frame independently.

    Its GroupNorm is per frame (it runs on the ``(b·f)`` layout), unlike the ResNet GroupNorms.
    ``context`` is the audio, ``(b·f, tokens, dim)`` in b-outer order, one token set per frame.
    """

    def __init__(
        self,
        channels: int,
        heads: int,
        context_dim: int,
        norm_groups: int,
        add_audio_layer: bool,
        use_linear_projection: bool = False,
    ) -> None:
        super().__init__()
        self.use_linear_projection = use_linear_projection
        self.norm = nn.GroupNorm(norm_groups, channels, eps=1e-6)
        proj: type[nn.Module] = nn.Linear if use_linear_projection else nn.Conv2d
        kw = {} if use_linear_projection else {"kernel_size": 1}
        self.proj_in = proj(channels, channels, **kw)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(channels, heads, context_dim, add_audio_layer)]
        )
        self.proj_out = proj(channels, channels, **kw)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        frames = x.shape[2]
        residual = frames_to_batch(x)
        bf, c, h, w = residual.shape
        hs = self.norm(residual)
        if self.use_linear_projection:
            hs = self.proj_in(hs.permute(0, 2, 3, 1).reshape(bf, h * w, c))
        else:
            hs = self.proj_in(hs).permute(0, 2, 3, 1).reshape(bf, h * w, c)
        for block in self.transformer_blocks:
            hs = block(hs, context)
        if self.use_linear_projection:
            hs = self.proj_out(hs).reshape(bf, h, w, c).permute(0, 3, 1, 2)
        else:
            hs = self.proj_out(hs.reshape(bf, h, w, c).permute(0, 3, 1, 2).contiguous())
        return batch_to_frames(hs + residual, frames)
