"""Progress events and per-stage wall-clock accounting for a run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["STAGES", "ProgressCallback", "ProgressEvent", "StageTimer"]

#: Stage names in pipeline order (also the keys of ``RunResult.timings_ms``).
STAGES: tuple[str, ...] = (
    "load",  # weights + face detector (only when the LipSync object loads them itself)
    "audio",  # decode the audio, whisper features
    "decode",  # video decode + 25 fps conversion
    "detect",  # face detector
    "align",  # similarity transform + warp to the face crop
    "vae_encode",  # masked + reference latents
    "diffuse",  # DDIM sampling with the U-Net
    "vae_decode",  # latents -> face crops
    "paste",  # inverse warp into the full frame
    "encode",  # H.264 + AAC mux
)


@dataclass(frozen=True)
class ProgressEvent:
    """What the pipeline is doing now.

    ``frames_done`` counts output frames written; ``chunk``/``chunks_total`` the 16-frame chunk being worked on
    (0-based), ``step``/``steps_total`` the denoising step inside it (only during ``diffuse``).
    """

    stage: str
    frames_done: int
    frames_total: int
    chunk: int = 0
    chunks_total: int = 0
    step: int = 0
    steps_total: int = 0

    @property
    def fraction(self) -> float:
        """Overall completion in [0, 1], never decreasing over a run: the chunks done, plus the current
        chunk's denoising progress (its other stages are short next to the U-Net)."""
        if self.stage == "done":
            return 1.0
        if self.chunks_total > 0:
            if self.stage == "diffuse" and self.steps_total > 0:
                within = self.step / self.steps_total
            else:
                within = 1.0 if self.stage in _AFTER_DIFFUSION else 0.0
            return min(1.0, (self.chunk + within) / self.chunks_total)
        if self.frames_total <= 0:
            return 0.0
        return min(1.0, self.frames_done / self.frames_total)


_AFTER_DIFFUSION = frozenset({"vae_decode", "paste", "encode"})

ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class StageTimer:
    """Accumulates wall time per stage (milliseconds); ``with timer("diffuse"): ...``."""

    totals_ms: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, (time.perf_counter() - start) * 1000.0)

    def add(self, stage: str, ms: float) -> None:
        self.totals_ms[stage] = self.totals_ms.get(stage, 0.0) + ms

    def snapshot(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.totals_ms.items()}
