"""Device time of the model stages, from CUDA events (the bench's GPU busy fraction).

Each model stage's work is bracketed by a pair of events; after the run the spans are summed per stage and
their union taken (the device time some model stage was running). Off CUDA, or when not enabled, it records
nothing and costs nothing.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

__all__ = ["GpuTimer"]


class GpuTimer:
    """``with timer.span("diffuse"): ...`` on any thread; :meth:`summary` once the work is done."""

    def __init__(self, device: torch.device, enabled: bool) -> None:
        self.enabled = enabled and device.type == "cuda"
        self._spans: list[tuple[str, Any, Any]] = []
        self._lock = threading.Lock()
        self._origin: Any = None
        if self.enabled:
            self._origin = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            self._origin.record()

    def span(self, stage: str) -> AbstractContextManager[None]:
        return _GpuSpan(self, stage) if self.enabled else nullcontext()

    def add(self, stage: str, start: Any, end: Any) -> None:
        with self._lock:
            self._spans.append((stage, start, end))

    def summary(self) -> tuple[dict[str, float], float | None]:
        """Device milliseconds per stage, and of their union (None when nothing was timed)."""
        if not self.enabled or not self._spans:
            return {}, None
        torch.cuda.synchronize()
        per_stage: dict[str, float] = {}
        intervals = []
        for stage, start, end in self._spans:
            a, b = self._origin.elapsed_time(start), self._origin.elapsed_time(end)
            per_stage[stage] = per_stage.get(stage, 0.0) + (b - a)
            intervals.append((a, b))
        busy, reach = 0.0, float("-inf")
        for a, b in sorted(intervals):  # union of the spans
            if a > reach:
                busy += b - a
                reach = b
            elif b > reach:
                busy += b - reach
                reach = b
        return per_stage, busy


class _GpuSpan:
    def __init__(self, timer: GpuTimer, stage: str) -> None:
        self.timer, self.stage = timer, stage

    def __enter__(self) -> None:
        self.start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        self.start.record()

    def __exit__(self, *exc: object) -> None:
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        end.record()
        self.timer.add(self.stage, self.start, end)
