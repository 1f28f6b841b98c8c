"""The request journal: what the client under test actually sent, kept in a bounded ring buffer.

Tests assert on it (``mock.journal.polls(id)``, ``GET /__mock/requests``): how many polls, at what
intervals, with which headers and bodies. It holds at most ``maxlen`` entries (oldest dropped first, with
``dropped`` counting them), so a long-running ``lipsync mock`` or a load test cannot grow it without bound.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["MAX_BODY_BYTES", "SECRET_HEADERS", "Journal", "JournalEntry", "redact_headers"]

#: JSON request bodies up to this size are kept (parsed); larger ones and uploads only by size.
MAX_BODY_BYTES = 64 * 1024

#: Request headers that carry credentials: shown redacted over HTTP (``GET /__mock/requests``).
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token", "x-mock-admin-token"}
)
REDACTED = "<redacted>"


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """*headers* with credentials replaced; an ``Authorization`` value keeps its scheme (``Bearer <redacted>``)."""
    shown = dict(headers)
    for name in SECRET_HEADERS & shown.keys():
        scheme, sep, _ = shown[name].partition(" ")
        shown[name] = f"{scheme} {REDACTED}" if name.endswith("authorization") and sep else REDACTED
    return shown


@dataclass(frozen=True)
class JournalEntry:
    """One request. Headers, query and body are kept raw and decoded on first access, off the hot path."""

    seq: int
    #: The mock clock's time (virtual in tests) and the wall-clock time of the request, unix seconds.
    time: float
    wall_time: float
    method: str
    path: str
    status: int
    duration_ms: float
    #: The prediction the request concerned (submit: the one it created), if any.
    prediction_id: str | None = None
    #: The scenario applied (normalised text), if any.
    scenario: str | None = None
    #: Request body size in bytes (the body itself is kept only up to MAX_BODY_BYTES).
    body_size: int = 0
    kind: str = "other"
    raw_headers: tuple[tuple[bytes, bytes], ...] = field(default=(), repr=False)
    raw_query: bytes = field(default=b"", repr=False)
    raw_body: bytes | None = field(default=None, repr=False)

    @functools.cached_property
    def headers(self) -> dict[str, str]:
        """Request headers, names lower-cased (a repeated header keeps its last value)."""
        return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.raw_headers}

    @functools.cached_property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw_query.decode("latin-1"), keep_blank_values=True))

    @functools.cached_property
    def body(self) -> Any:
        """The parsed JSON body when small enough and JSON, else None."""
        return parse_body(self.raw_body or b"", self.headers.get("content-type"))

    def to_json(self, *, redact: bool = True) -> dict[str, Any]:
        """The entry as JSON (``GET /__mock/requests``); credentials redacted unless *redact* is False."""
        return {
            "seq": self.seq,
            "time": self.time,
            "wall_time": self.wall_time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": redact_headers(self.headers) if redact else self.headers,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "prediction_id": self.prediction_id,
            "scenario": self.scenario,
            "body": self.body,
            "body_size": self.body_size,
            "kind": self.kind,
        }


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
