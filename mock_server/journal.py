"""The request journal: what the client under test actually sent, kept in a bounded ring buffer.

Tests assert on it (``mock.journal.polls(id)``, ``GET /__mock/requests``): how many polls, at what
intervals, with which headers and bodies. It holds at most ``maxlen`` entries (oldest dropped first, with
``dropped`` counting them), so a long-running ``lipsync mock`` or a load test cannot grow it without bound.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["MAX_BODY_BYTES", "Journal", "JournalEntry"]

#: JSON request bodies up to this size are kept (parsed); larger ones and uploads only by size.
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    #: The mock clock's time (virtual in tests) and the wall-clock time of the request, unix seconds.
    time: float
    wall_time: float
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int
    duration_ms: float
    #: The prediction the request concerned (submit: the one it created), if any.
    prediction_id: str | None = None
    #: The scenario applied (normalised text), if any.
    scenario: str | None = None
    #: Parsed JSON body when small enough, else None; body_size is always the byte count.
    body: Any = None
    body_size: int = 0
    kind: str = field(default="other")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_body(raw: bytes, content_type: str | None) -> Any:
    """The JSON value of a small JSON body; None for anything else."""
    if not raw or len(raw) > MAX_BODY_BYTES or "json" not in (content_type or ""):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


class Journal:
    """A thread-safe, bounded list of :class:`JournalEntry` (oldest first)."""

    def __init__(self, maxlen: int = 1000) -> None:
        if maxlen < 1:
            raise ValueError("the journal needs room for at least one entry")
        self._entries: deque[JournalEntry] = deque(maxlen=maxlen)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self.dropped = 0

    @property
    def maxlen(self) -> int:
        return self._entries.maxlen or 0

    def record(self, **fields: Any) -> JournalEntry:
        with self._lock:
            entry = JournalEntry(seq=next(self._seq), **fields)
            if len(self._entries) == self._entries.maxlen:
                self.dropped += 1
            self._entries.append(entry)
        return entry

    def entries(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        prediction_id: str | None = None,
        kind: str | None = None,
    ) -> list[JournalEntry]:
        """Entries matching every given filter (``path`` matches a prefix), oldest first."""
        with self._lock:
            snapshot = list(self._entries)
        return [
            e
            for e in snapshot
            if (method is None or e.method == method.upper())
            and (path is None or e.path.startswith(path))
            and (prediction_id is None or e.prediction_id == prediction_id)
            and (kind is None or e.kind == kind)
        ]

    def submits(self) -> list[JournalEntry]:
        return self.entries(kind="submit")

    def polls(self, prediction_id: str) -> list[JournalEntry]:
        """Every GET of that prediction (either result route), including ones answered 429/5xx."""
        return self.entries(prediction_id=prediction_id, kind="poll")

    def poll_intervals(self, prediction_id: str, *, wall: bool = False) -> list[float]:
        """Seconds between consecutive polls of a prediction, on the mock clock (or the wall clock)."""
        times = [e.wall_time if wall else e.time for e in self.polls(prediction_id)]
        return [b - a for a, b in itertools.pairwise(times)]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(self.entries())
