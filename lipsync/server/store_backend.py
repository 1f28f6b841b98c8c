"""What a job store backend provides: storing, fetching and compare-and-setting records, nothing more.

The job lifecycle (claims, leases, ownership, cancellation) lives once, above this interface, in
``job_store.BackendJobStore``. A backend offers five operations over :class:`Match`, a conjunction of
simple filters that every backend can evaluate (in Python with :meth:`Match.matches`, or in SQL with
:meth:`Match.sql`, which also lets an index serve it):

- ``insert``  a new record, refused when its owner is at the active-job limit (checked atomically)
- ``get``     one record by id
- ``update``  read-modify-write of the matching records, each atomically: ``change(job)`` mutates the
              record and returns whether to write it back (it re-checks the real precondition, so a match
              may be a superset); with ``first=n``, the n oldest matching records only (claims), skipping
              records that another writer holds at the moment where the backend can (``SKIP LOCKED``)
- ``scan``    matching records, ordered by (created_at, id), paged; with the total count
- ``remove``  delete the matching records (the match is re-checked atomically); returns them
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from lipsync.server.interfaces import JobRecord

__all__ = ["Change", "Match", "StoreBackend"]

#: Mutates a record inside the backend's atomic section; True = write it back.
Change = Callable[[JobRecord], bool]


@dataclass(frozen=True, slots=True)
class Match:
    """Records matching every given filter (``None`` = any)."""

    ids: tuple[str, ...] | None = None
    owner: str | None = None
    statuses: tuple[str, ...] | None = None
    worker_id: str | None = None
    #: ``lease_until`` is unset or earlier than this
    lease_before: float | None = None
    #: ``created_at >= created_after`` and ``created_at < created_before``
    created_after: float | None = None
    created_before: float | None = None

    def matches(self, job: JobRecord) -> bool:
        return (
            (self.ids is None or job.id in self.ids)
            and (self.owner is None or job.owner == self.owner)
            and (self.statuses is None or job.status in self.statuses)
            and (self.worker_id is None or job.worker_id == self.worker_id)
            and (self.lease_before is None or job.lease_until is None or job.lease_until < self.lease_before)
            and (self.created_after is None or job.created_at >= self.created_after)
            and (self.created_before is None or job.created_at < self.created_before)
        )

    def sql(self, mark: str = "?") -> tuple[str, list[Any]]:
        """A WHERE clause over the ``jobs`` table and its parameters (*mark*: the driver's placeholder)."""
        where: list[str] = []
        params: list[Any] = []

        def among(column: str, values: Sequence[Any]) -> None:
            where.append(f"{column} IN ({', '.join(mark for _ in values)})" if values else "FALSE")
            params.extend(values)

        if self.ids is not None:
            among("id", self.ids)
        if self.owner is not None:
            where.append(f"owner = {mark}")
            params.append(self.owner)
        if self.statuses is not None:
            among("status", self.statuses)
        if self.worker_id is not None:
            where.append(f"worker_id = {mark}")
            params.append(self.worker_id)
        if self.lease_before is not None:
            where.append(f"(lease_until IS NULL OR lease_until < {mark})")
            params.append(self.lease_before)
        if self.created_after is not None:
            where.append(f"created_at >= {mark}")
            params.append(self.created_after)
        if self.created_before is not None:
            where.append(f"created_at < {mark}")
            params.append(self.created_before)
        return " AND ".join(where) or "TRUE", params


@runtime_checkable
class StoreBackend(Protocol):
    async def insert(self, job: JobRecord, *, active_limit: int | None, active: Match) -> None:
        """Store a new record; ``ActiveLimitExceeded`` when *active_limit* records match *active*
        (atomic with the insert); ValueError for a duplicate id."""

    async def get(self, job_id: str) -> JobRecord | None: ...

    async def update(self, match: Match, change: Change, *, first: int | None = None) -> list[JobRecord]:
        """Apply *change* to the matching records, oldest first; returns those written, as written."""

    async def scan(
        self, match: Match, *, offset: int = 0, limit: int | None = None, newest_first: bool = True
    ) -> tuple[list[JobRecord], int]:
        """(matching records of the page, total matching); ``limit=0`` counts only."""

    async def remove(self, match: Match) -> list[JobRecord]: ...

    async def close(self) -> None: ...
