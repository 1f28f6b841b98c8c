"""Progress events and per-stage wall-clock accounting for a run.

:class:`ProgressReporter` is the one place a run's events are made: the driver's stages report what they
start, the consumer reports the frames it has written, and the reporter fills in the counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["STAGES", "ProgressCallback", "ProgressEvent", "ProgressReporter", "StageTimer"]

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
_BEFORE_DIFFUSION = frozenset({"decode", "detect", "align", "vae_encode"})

ProgressCallback = Callable[[ProgressEvent], None]


class ProgressReporter:
    """Make a run's :class:`ProgressEvent` s and hand them to *callback*, serialised and monotonic.

    Events may come from several threads (the threaded driver): the callback never runs on two at once, and
    an event whose ``fraction`` would go backwards is dropped. With ``stages_run_ahead`` (threaded), events of
    the stages before the U-Net for chunks past the one it is sampling are dropped too: those stages run
    ahead, and the U-Net's steps, where the time goes, set the pace. A callback that raises
    (``JobCancelled``) stops the run like any stage error.
    """

    def __init__(
        self,
        callback: ProgressCallback,
        frames_total: int,
        chunks_total: int,
        *,
        stages_run_ahead: bool = False,
    ) -> None:
        self._callback = callback
        self.frames_total = frames_total
        self.chunks_total = chunks_total
        self._ahead = stages_run_ahead
        self._lock = threading.Lock()
        self._last = 0.0
        self._frames_done = 0
        self._diffusing = 0  # chunk the U-Net is on

    @property
    def frames_done(self) -> int:
        return self._frames_done

    def stage(self, stage: str, chunk: int = 0, step: int = 0, steps: int = 0) -> None:
        """*stage* is starting on *chunk* (for ``diffuse``: has done *step* of *steps*)."""
        with self._lock:
            if stage == "diffuse":
                self._diffusing = max(self._diffusing, chunk)
            elif self._ahead and stage in _BEFORE_DIFFUSION and chunk > self._diffusing:
                return
            event = ProgressEvent(
                stage, self._frames_done, self.frames_total, chunk, self.chunks_total, step, steps
            )
            fraction = event.fraction
            if fraction < self._last:
                return
            self._last = fraction
            self._callback(event)

    def written(self, chunk: int, frames_done: int) -> None:
        """The consumer is writing *chunk*; *frames_done* output frames were written before it."""
        with self._lock:
            self._frames_done = frames_done
        self.stage("encode", chunk)

    def done(self) -> None:
        with self._lock:
            self._frames_done = self.frames_total
            self._last = 1.0
            self._callback(ProgressEvent("done", self.frames_total, self.frames_total))


@dataclass
class StageTimer:
    """Accumulates wall time per stage (milliseconds); ``with timer("diffuse"): ...``."""

    totals_ms: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, (time.perf_counter() - start) * 1000.0)

    def add(self, stage: str, ms: float) -> None:
        with self._lock:  # the threaded driver's stages add from their own threads
            self.totals_ms[stage] = self.totals_ms.get(stage, 0.0) + ms

    def snapshot(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.totals_ms.items()}
