"""Retry and polling schedules, ``Retry-After`` parsing, and the clock seam the tests drive.

Nothing here sleeps: the clients ask these objects *how long* to wait and call their injected ``sleep``,
so tests assert the requested delays without waiting for them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Protocol

__all__ = ["Clock", "PollSchedule", "RetryPolicy", "SystemClock", "parse_retry_after"]


class Clock(Protocol):
    """Time sources: ``monotonic`` measures waits and deadlines, ``time`` (wall clock) dates ``Retry-After``."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


@dataclass(frozen=True)
class RetryPolicy:
    """How one HTTP request is retried after 429, 5xx and transport errors.

    Delays grow exponentially (``initial_delay * multiplier**n``, capped at ``max_delay``) with ±``jitter``
    (a fraction) so many clients hit by the same outage do not retry in lockstep. A ``Retry-After`` from the
    server replaces the computed delay; one longer than ``max_retry_after`` is not slept through: the error
    is raised at once (with ``retry_after`` set) so the caller can decide.
    """

    max_retries: int = 4
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.2
    max_retry_after: float = 300.0
    retry_statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")

    def backoff(self, retry_number: int) -> float:
        """Delay before retry number ``retry_number`` (0 = the first retry) when the server gave no hint."""
        base = min(self.max_delay, self.initial_delay * self.multiplier**retry_number)
        spread = base * self.jitter * (2.0 * self.random() - 1.0)
        return max(0.0, base + spread)


@dataclass(frozen=True)
class PollSchedule:
    """Delays between status polls: ``initial``, then ×``multiplier`` up to ``maximum``.

    WaveSpeed asks for video tasks to be polled at >= 5 s with increasing intervals; starting at 1 s keeps
    short jobs (and local servers) snappy while long jobs settle at one poll every ``maximum`` seconds.
    """

    initial: float = 1.0
    multiplier: float = 1.5
    maximum: float = 5.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0:
            raise ValueError("poll intervals must be >= 0")

    def delays(self) -> Iterator[float]:
        delay = self.initial
        top = max(self.initial, self.maximum)
        while True:
            yield delay
            delay = min(top, delay * self.multiplier)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent/invalid.

    ``now`` is the wall-clock time (``Clock.time()``), needed to turn a date into a delay.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is not a delay
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
