"""Per-run options of :meth:`lipsync.LipSync.run`, validated before any work starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lipsync.errors import InputError
from lipsync.pipeline.timeline import LOOP_MODES, LoopMode

__all__ = ["ON_NO_FACE_MODES", "OnNoFace", "RunOptions"]

OnNoFace = Literal["passthrough", "fail"]
ON_NO_FACE_MODES: tuple[OnNoFace, ...] = ("passthrough", "fail")

_MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class RunOptions:
    """Sampling and media options. Defaults are the reference's ``inference.sh`` values except
    ``deep_cache`` (off: the exact, uncached schedule) and ``on_no_face`` (passthrough, see docs/pipeline.md).

    The ranges are wider than the HTTP API's (``contracts.LipsyncRequest``): the CLI and Python API may run
    e.g. 1 step for a smoke test.
    """

    seed: int = 1247
    guidance_scale: float = 1.5
    inference_steps: int = 20
    loop_mode: LoopMode = "pingpong"
    on_no_face: OnNoFace = "passthrough"
    deep_cache: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= _MAX_SEED:
            raise InputError(f"seed must be an integer in 0..{_MAX_SEED}, got {self.seed!r}", field="seed")
        if isinstance(self.inference_steps, bool) or not isinstance(self.inference_steps, int):
            raise InputError(
                f"inference_steps must be an integer, got {self.inference_steps!r}", field="inference_steps"
            )
        if not 1 <= self.inference_steps <= 1000:
            raise InputError(
                f"inference_steps must be in 1..1000, got {self.inference_steps}", field="inference_steps"
            )
        if isinstance(self.guidance_scale, bool) or not isinstance(self.guidance_scale, int | float):
            raise InputError(
                f"guidance_scale must be a number, got {self.guidance_scale!r}", field="guidance_scale"
            )
        if not 1.0 <= float(self.guidance_scale) <= 20.0:
            raise InputError(
                f"guidance_scale must be in 1.0..20.0 (1.0 disables guidance), got {self.guidance_scale}",
                field="guidance_scale",
            )
        if self.loop_mode not in LOOP_MODES:
            raise InputError(
                f"loop_mode must be one of {', '.join(LOOP_MODES)}; got {self.loop_mode!r}", field="loop_mode"
            )
        if self.on_no_face not in ON_NO_FACE_MODES:
            raise InputError(
                f"on_no_face must be one of {', '.join(ON_NO_FACE_MODES)}; got {self.on_no_face!r}",
                field="on_no_face",
            )
        if not isinstance(self.deep_cache, bool):
            raise InputError(f"deep_cache must be true or false, got {self.deep_cache!r}", field="deep_cache")

    @property
    def do_classifier_free_guidance(self) -> bool:
        """The reference runs CFG iff ``guidance_scale > 1``."""
        return float(self.guidance_scale) > 1.0
