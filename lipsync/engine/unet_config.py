"""The LatentSync U-Net configuration, in the reference's own vocabulary.

Field names are the keys of the ``model:`` section of the reference ``configs/unet/stage2*.yaml`` (what
``UNet3DConditionModel.from_config`` receives), so a reference-style ``config.json`` round-trips unchanged.
Only the settings the official checkpoints use (plus a few trivial variants) are supported; anything else is
refused up front instead of silently building a different network.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MOTION_NORM_GROUPS", "MotionModuleConfig", "UNetConfig"]

#: The reference's motion modules build their GroupNorm with the ``TemporalTransformer3DModel`` default of 32
#: groups; ``VanillaTemporalModule`` never passes the config's ``norm_num_groups`` on. So it is not a setting.
MOTION_NORM_GROUPS = 32

_DOWN_TYPES = ("CrossAttnDownBlock3D", "DownBlock3D")
_UP_TYPES = ("CrossAttnUpBlock3D", "UpBlock3D")

# Reference constructor arguments we accept only at their default value (they change nothing we build).
_FIXED_DEFAULTS: dict[str, Any] = {
    "only_cross_attention": False,
    "dual_cross_attention": False,
    "class_embed_type": None,
    "num_class_embeds": None,
    "resnet_time_scale_shift": "default",
    "motion_module_type": "Vanilla",
}
# Accepted and ignored: the reference's SDPA attention never reads it.
_IGNORED = ("upcast_attention",)


@dataclass(frozen=True)
class MotionModuleConfig:
    """``motion_module_kwargs`` of the reference config (AnimateDiff ``VanillaTemporalModule``)."""

    num_attention_heads: int = 8
    num_transformer_block: int = 1
    attention_block_types: tuple[str, ...] = ("Temporal_Self", "Temporal_Self")
    temporal_position_encoding: bool = True
    temporal_position_encoding_max_len: int = 24
    temporal_attention_dim_div: int = 1
    zero_initialize: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "attention_block_types", tuple(self.attention_block_types))
        bad = [t for t in self.attention_block_types if t != "Temporal_Self"]
        if bad:
            raise ValueError(
                f"motion_module_kwargs.attention_block_types: only 'Temporal_Self' is supported, got {bad}"
            )
        if (
            self.num_attention_heads < 1
            or self.num_transformer_block < 1
            or self.temporal_attention_dim_div < 1
        ):
            raise ValueError("motion_module_kwargs: heads, blocks and dim_div must be >= 1")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MotionModuleConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"cross_frame_attention_mode"})
        if unknown:
            raise ValueError(f"motion_module_kwargs: unsupported keys {unknown}")
        if data.get("cross_frame_attention_mode") is not None:
            raise ValueError("motion_module_kwargs.cross_frame_attention_mode is not supported")
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["attention_block_types"] = list(self.attention_block_types)
        return out


@dataclass(frozen=True)
class UNetConfig:
    """Everything :class:`~lipsync.engine.unet.LatentSyncUNet` needs to build the network.

    ``resolution`` is not a network setting (the U-Net is size-agnostic); it records the face-crop size the
    checkpoint was trained at (``data.resolution``: 256 for 1.5, 512 for 1.6) so callers can size latents.
    """

    in_channels: int = 13
    out_channels: int = 4
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    down_block_types: tuple[str, ...] = ("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",)
    mid_block_type: str = "UNetMidBlock3DCrossAttn"
    up_block_types: tuple[str, ...] = ("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3
    layers_per_block: int = 2
    attention_head_dim: int | tuple[int, ...] = 8  # reference naming: this is the number of heads
    cross_attention_dim: int = 384
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    act_fn: str = "silu"
    flip_sin_to_cos: bool = True
    freq_shift: int = 0
    downsample_padding: int = 1
    mid_block_scale_factor: float = 1.0
    center_input_sample: bool = False
    use_linear_projection: bool = False
    use_inflated_groupnorm: bool = False
    add_audio_layer: bool = True
    use_motion_module: bool = True
    motion_module_resolutions: tuple[int, ...] = (1, 2, 4, 8)
    motion_module_mid_block: bool = False
    motion_module_decoder_only: bool = False
    motion_module_kwargs: MotionModuleConfig = field(default_factory=MotionModuleConfig)
    sample_size: int = 64
    resolution: int = 256

    def __post_init__(self) -> None:
        for name in ("block_out_channels", "down_block_types", "up_block_types", "motion_module_resolutions"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if isinstance(self.attention_head_dim, list):
            object.__setattr__(self, "attention_head_dim", tuple(self.attention_head_dim))
        if isinstance(self.motion_module_kwargs, dict):
            object.__setattr__(
                self, "motion_module_kwargs", MotionModuleConfig.from_dict(self.motion_module_kwargs)
            )
        self._validate()

    def _validate(self) -> None:
        n = len(self.block_out_channels)
        if not (len(self.down_block_types) == len(self.up_block_types) == n) or n < 1:
            raise ValueError(
                "block_out_channels, down_block_types and up_block_types must have the same length"
            )
        if bad := [t for t in self.down_block_types if t not in _DOWN_TYPES]:
            raise ValueError(f"unsupported down_block_types {bad}")
        if bad := [t for t in self.up_block_types if t not in _UP_TYPES]:
            raise ValueError(f"unsupported up_block_types {bad}")
        if self.mid_block_type != "UNetMidBlock3DCrossAttn":
            raise ValueError(f"unsupported mid_block_type {self.mid_block_type!r}")
        if self.act_fn not in ("silu", "swish"):
            raise ValueError(f"unsupported act_fn {self.act_fn!r} (only silu)")
        if isinstance(self.attention_head_dim, tuple) and len(self.attention_head_dim) != n:
            raise ValueError("attention_head_dim as a list needs one entry per block")
        for i, ch in enumerate(self.block_out_channels):
            heads = self.heads(i)
            if ch % self.norm_num_groups or ch % heads:
                raise ValueError(
                    f"block_out_channels[{i}]={ch} must divide by norm_num_groups and heads ({heads})"
                )
            if self.use_motion_module and ch % MOTION_NORM_GROUPS:
                raise ValueError(
                    f"block_out_channels[{i}]={ch}: motion modules need a multiple of 32 channels"
                )

    # ------------------------------------------------------------------------------------------- helpers
    def heads(self, block_index: int) -> int:
        """Spatial attention heads of down block ``block_index`` (the reference calls this attention_head_dim)."""
        if isinstance(self.attention_head_dim, int):
            return self.attention_head_dim
        return self.attention_head_dim[block_index]

    @property
    def latent_size(self) -> int:
        """Latent side length for this config's face resolution (VAE factor 8)."""
        return self.resolution // 8

    # ------------------------------------------------------------------------------------------- factories
    @classmethod
    def tiny(cls) -> UNetConfig:
        """The tiny test config of ``fixtures/unet_tiny`` (same 1,246-key layout as the full model)."""
        return cls(
            block_out_channels=(32, 64, 32, 32),
            norm_num_groups=8,
            attention_head_dim=8,
            cross_attention_dim=16,
            motion_module_kwargs=MotionModuleConfig(num_attention_heads=2),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        data = {k: v for k, v in data.items() if not k.startswith("_")}
        for key, default in _FIXED_DEFAULTS.items():
            value = data.pop(key, default)
            if value != default:
                raise ValueError(f"unsupported UNet setting {key}={value!r} (only {default!r})")
        for key in _IGNORED:
            data.pop(key, None)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown UNet config keys {unknown}")
        if "motion_module_kwargs" in data:
            data["motion_module_kwargs"] = MotionModuleConfig.from_dict(data["motion_module_kwargs"] or {})
        return cls(**data)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> UNetConfig:
        """Read a reference-style ``config.json`` (the ``model:`` section of the reference yaml, as JSON)."""
        with Path(path).open(encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, MotionModuleConfig):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        out["motion_module_type"] = "Vanilla"
        out["resnet_time_scale_shift"] = "default"
        return out

    def to_json(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
