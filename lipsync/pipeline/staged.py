"""A thread-per-stage runner over bounded channels: back-pressure, error propagation, cancellation.

A pipeline is a list of :class:`Stage` s. Each stage is a *transform* ``fn(inputs) -> outputs`` over
iterators and runs on its own thread: the first stage gets ``None`` and produces items (the source), every
other stage iterates the channel from its predecessor, and the last stage's outputs are consumed by the
caller's thread through :meth:`StageRunner.results` (the sink, e.g. the video encoder). A transform may keep
state across items, and may take several inputs before it yields (batching).

Channels hold at most ``capacity`` items; a full channel blocks its producer, so a slow sink stalls the whole
pipeline instead of letting decoded frames pile up. How many items can exist at once (produced by the source
and not yet taken by the sink) is bounded by :attr:`StageRunner.in_flight_bound`: the channel capacities plus
what each stage holds while it works (``Stage.holds``). The runner counts the items actually in flight
(:attr:`StageRunner.max_in_flight`), so tests can check the bound by counting rather than timing.

The first exception in any stage (or in the consumer) stops everything: the runner cancels every channel,
so each worker blocked on a channel wakes up with :class:`Cancelled` and exits, and a worker busy computing
exits at its next channel operation (or sooner, if its work polls :attr:`StageRunner.stopping`). All threads
are joined before :meth:`results` re-raises the original exception in the caller's thread.

Threads and torch: each worker sets its own intra-op thread count (``Stage.torch_threads``) before its first
op (after forcing torch's lazy per-thread initialisation, which would otherwise overwrite it). Small torch ops in CPU stages must run single-threaded: with several OpenMP threads per stage on a busy
machine they get 10-20x slower (docs/faces.md). torch keeps one global default that new threads inherit, so
the runner restores the caller's count when it is done.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Cancelled", "Channel", "Stage", "StageRunner", "Transform"]

#: ``fn(inputs) -> outputs``; ``inputs`` is None for the first stage. Generators are the natural way to write one.
Transform = Callable[[Iterator[Any] | None], Iterator[Any]]


class Cancelled(Exception):
    """Raised inside workers (and by channels) once the pipeline is stopping."""


class _End:
    """Marks the end of a channel's stream."""


_END = _End()


class Channel:
    """A bounded FIFO between two threads that can be closed (end of stream) or cancelled (stop now)."""

    def __init__(self, name: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"channel {name!r}: capacity must be >= 1, got {capacity}")
        self.name = name
        self.capacity = capacity
        self._items: deque[Any] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._cancelled = False
        #: Most items it ever held at once.
        self.high_water = 0
        #: How many puts found it full and had to wait (back-pressure at work).
        self.blocked_puts = 0
        self._waiting_puts = 0

    def put(self, item: Any) -> None:
        with self._cond:
            while len(self._items) >= self.capacity and not self._cancelled:
                self.blocked_puts += 1
                self._waiting_puts += 1
                self._cond.notify_all()  # for wait_for_blocked_put()
                try:
                    self._cond.wait()
                finally:
                    self._waiting_puts -= 1
            if self._cancelled:
                raise Cancelled(self.name)
            if self._closed:
                raise RuntimeError(f"put() on closed channel {self.name!r}")
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()

    def get(self) -> Any:
        """The next item, or the end marker once the producer closed the channel and it is drained."""
        with self._cond:
            while not self._items and not self._closed and not self._cancelled:
                self._cond.wait()
            if self._cancelled:
                raise Cancelled(self.name)
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            return _END

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self.get()
            if item is _END:
                return
            yield item

    def wait_for_blocked_put(self, timeout: float | None = None) -> bool:
        """Wait until a producer is blocked on this full channel (diagnostics and tests: with its consumer
        stalled, that producer stays blocked). False on timeout or cancellation."""
        with self._cond:
            blocked = self._cond.wait_for(
                lambda: self._cancelled or (self._waiting_puts > 0 and len(self._items) >= self.capacity),
                timeout,
            )
            return blocked and not self._cancelled

    def close(self) -> None:
        """No more items will come (the consumer drains what is there, then stops)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def cancel(self) -> None:
        """Drop the items and wake every waiter with :class:`Cancelled`."""
        with self._cond:
            self._cancelled = True
            self._items.clear()
            self._cond.notify_all()


@dataclass(frozen=True)
class Stage:
    """One worker. ``holds``: the most items it holds at once (1, or the batch size of a batching stage);
    ``torch_threads``: intra-op threads for its torch ops (None: the caller's count); ``out_capacity``: the
    capacity of the channel after it (None: the runner's default)."""

    name: str
    fn: Transform
    holds: int = 1
    torch_threads: int | None = 1
    out_capacity: int | None = None


class StageRunner:
    """Run *stages* on one thread each; iterate :meth:`results` in the consuming thread.

    ``capacity``: items per channel unless a stage sets its own. Every stage after the source must yield one
    output per input (a batching stage regroups, it does not merge): an item counts as in flight from the
    moment the source yields it until the consumer asks for the next one.
    """

    def __init__(self, stages: Sequence[Stage], *, capacity: int = 1, name: str = "pipeline") -> None:
        if not stages:
            raise ValueError("a pipeline needs at least one stage")
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        self.name = name
        self.stages = tuple(stages)
        self.channels = [
            Channel(stage.name, stage.out_capacity if stage.out_capacity is not None else capacity)
            for stage in self.stages
        ]
        #: Set once the pipeline is stopping (an error or a cancel); long work may poll it.
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.failed_stage: str | None = None
        self.threads: list[threading.Thread] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._started = False
        self._torch_threads = torch.get_num_threads()

    # -- accounting ------------------------------------------------------------------------------------------

    @property
    def in_flight_bound(self) -> int:
        """Most items that can be between the source and the consumer: every channel full and every stage
        (and the consumer) holding what it may hold."""
        return sum(c.capacity for c in self.channels) + sum(s.holds for s in self.stages) + 1

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def _count(self, delta: int) -> None:
        with self._lock:
            self._in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    # -- control ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            raise RuntimeError("a StageRunner runs once")
        self._started = True
        for index, stage in enumerate(self.stages):
            thread = threading.Thread(
                target=self._work, args=(index,), name=f"{self.name}:{stage.name}", daemon=True
            )
            self.threads.append(thread)
        for thread in self.threads:
            thread.start()

    def fail(self, exc: BaseException, stage: str | None = None) -> None:
        """Record the first error and stop every worker."""
        with self._lock:
            if self.error is None and not isinstance(exc, Cancelled):
                self.error = exc
                self.failed_stage = stage
        self.cancel()

    def cancel(self) -> None:
        """Stop now: wake every blocked worker with :class:`Cancelled`; results() then ends."""
        self.stopping.set()
        for channel in self.channels:
            channel.cancel()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the pipeline is stopping (for long loops inside a stage)."""
        if self.stopping.is_set():
            raise Cancelled(self.name)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the workers (each up to *timeout*); True if all have ended."""
        for thread in self.threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in self.threads)

    def results(self) -> Generator[Any, None, None]:
        """Start the workers and yield the last stage's outputs in order.

        On any error (or when the caller stops iterating early) every worker is stopped and joined; a stage's
        error is then raised here, in the caller's thread, with its original type.
        """
        self.start()
        last = self.channels[-1]
        finished = False
        try:
            while True:
                item = last.get()
                if item is _END:
                    break
                yield item
                self._count(-1)
            finished = True
        except Cancelled:
            pass  # a stage failed (or cancel() was called): its error is raised below
        finally:  # also when the consumer stops early (GeneratorExit) or fails while holding an item
            if not finished:
                self.cancel()
            self.join()
            torch.set_num_threads(self._torch_threads)
        if self.error is not None:
            raise self.error

    # -- workers ---------------------------------------------------------------------------------------------

    def _work(self, index: int) -> None:
        stage = self.stages[index]
        inbox = self.channels[index - 1] if index > 0 else None
        outbox = self.channels[index]
        # torch sets a new thread's OpenMP count lazily, on its first parallel op, from the process-wide value
        # that the last set_num_threads() call (any thread's) left: without this first call the model stage
        # would start computing with the count a media stage set (1), leaving the other cores idle.
        torch.get_num_threads()
        torch.set_num_threads(stage.torch_threads or self._torch_threads)
        try:
            outputs = stage.fn(iter(inbox) if inbox is not None else None)
            try:
                for item in outputs:
                    if index == 0:
                        self._count(+1)
                    outbox.put(item)
            finally:
                close = getattr(outputs, "close", None)
                if close is not None:
                    close()  # run the transform's cleanup (e.g. close a decoder) on its own thread
            outbox.close()
        except Cancelled:
            pass
        except BaseException as exc:
            self.fail(exc, stage.name)
