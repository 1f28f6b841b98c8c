"""Injectable clocks: the mock's notion of "now", which tests move by hand.

Job lifecycles, ``created_at`` stamps, webhook timestamps and journal times all read the mock's clock, so a
test can jump a job to completion with ``advance(30)`` instead of sleeping 30 seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["DEFAULT_EPOCH", "Clock", "SystemClock", "VirtualClock"]

#: Where a VirtualClock starts: 2025-01-01T00:00:00Z, so ids, stamps and signatures are reproducible.
DEFAULT_EPOCH = 1_735_689_600.0


class Clock(Protocol):
    def now(self) -> float:
        """Unix time in seconds."""
        ...

    def advance(self, seconds: float) -> float:
        """Move time forward by *seconds* (>= 0); returns the new now()."""
        ...


class _Offset:
    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def _grow(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock only moves forward (got {seconds} s)")
        with self._lock:
            self._offset += seconds


class VirtualClock(_Offset):
    """Frozen time that moves only through ``advance()`` (the default in tests)."""

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        super().__init__()
        self._start = start

    def now(self) -> float:
        return self._start + self._offset

    def advance(self, seconds: float) -> float:
        self._grow(seconds)
        return self.now()


class SystemClock(_Offset):
    """Wall time plus whatever ``advance()`` added (the default of ``lipsync mock``): jobs finish on their own,
    and a developer can still skip ahead."""

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        self._grow(seconds)
        return self.now()
