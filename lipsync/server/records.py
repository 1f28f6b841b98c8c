"""A ``JobRecord`` as backends store it: the one place records are (de)serialised.

Backends keep ``options`` opaque: they store what ``to_dict`` gives and rebuild with ``from_dict``. Dict
backends keep the dict itself; SQL backends keep one column per field (``FIELDS``), JSON text for the
structured ones (``JSON_FIELDS``) and integers for flags (``FLAG_FIELDS``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

from contracts import RunOptions
from lipsync.server.interfaces import JobRecord

__all__ = ["FIELDS", "FLAG_FIELDS", "JSON_FIELDS", "from_dict", "from_row", "to_dict", "to_row"]

#: Every field of a record, in the order of ``to_row``.
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(JobRecord))
JSON_FIELDS = frozenset({"options", "inputs", "outputs", "timings", "sources", "face"})
FLAG_FIELDS = frozenset({"base64_output", "cancel_requested"})


def to_dict(job: JobRecord) -> dict[str, Any]:
    """Plain JSON-compatible values (a fresh copy: later changes to *job* do not reach it); ``options`` as
    the ``RunOptions``' JSON dump."""
    data = {name: _copy(getattr(job, name)) for name in FIELDS}
    data["options"] = job.options.model_dump(mode="json")
    return data


def from_dict(data: dict[str, Any]) -> JobRecord:
    """The record back; options written by older versions load too (``RunOptions.from_stored``)."""
    values = {name: _copy(data[name]) for name in FIELDS if name in data}
    if "options" in values:
        values["options"] = RunOptions.from_stored(values["options"])
    return JobRecord(**values)


def to_row(job: JobRecord, *, flag: Callable[[bool], Any] = int) -> tuple[Any, ...]:
    """Column values in ``FIELDS`` order: JSON text for structured fields (SQL NULL for None),
    ``flag(value)`` for flags."""
    data = to_dict(job)
    return tuple(
        json.dumps(data[f], separators=(",", ":"))
        if f in JSON_FIELDS and data[f] is not None
        else flag(data[f])
        if f in FLAG_FIELDS
        else data[f]
        for f in FIELDS
    )


def from_row(row: Sequence[Any]) -> JobRecord:
    data = dict(zip(FIELDS, row, strict=True))
    for name in JSON_FIELDS:
        if isinstance(data[name], str):  # PostgreSQL's jsonb columns arrive decoded already
            data[name] = json.loads(data[name])
    for name in FLAG_FIELDS:
        data[name] = bool(data[name])
    return from_dict(data)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value
