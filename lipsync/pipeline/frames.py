"""Bounded-memory access to the frames of the 25-fps source timeline.

The reference keeps every decoded frame in RAM so it can play a short video backwards (ping-pong). We keep at
most a small window of frames and decode again when an earlier frame is needed: forward reads continue one
sequential decoder; a backward read re-opens the decoder at a block ending at the requested frame (the media
layer seeks to the nearest keyframe) and keeps that block, so a reversed pass costs one re-open per block.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from lipsync.errors import UnreadableMedia

__all__ = ["Frame", "FrameReader", "FrameSource"]

#: A decoded video frame: (H, W, 3) RGB uint8.
Frame = NDArray[np.uint8]

#: ``reader(path, start_frame, max_frames)`` -> RGB uint8 frames of the 25-fps timeline from ``start_frame``.
FrameReader = Callable[[str, int, "int | None"], Iterator[Frame]]


class FrameSource:
    """``get(indices)`` returns the source frames at *indices* (any order, repeats allowed).

    Memory is bounded by ``cache_frames`` decoded frames whatever the video length.
    """

    def __init__(
        self,
        path: str,
        num_frames: int,
        reader: FrameReader,
        *,
        cache_frames: int = 48,
        backward_block: int = 32,
        max_forward_gap: int = 64,
    ) -> None:
        if backward_block > cache_frames:
            raise ValueError("backward_block must fit in the cache")
        self.path = path
        self.num_frames = num_frames
        self._reader = reader
        self._cache: OrderedDict[int, Frame] = OrderedDict()
        self._cache_frames = cache_frames
        self._backward_block = backward_block
        self._max_forward_gap = max_forward_gap
        self._it: Iterator[Frame] | None = None
        self._pos = 0  # index of the next frame self._it yields
        #: How many times a decoder was (re)opened; the bench and the tests look at it.
        self.opens = 0
        self.frames_decoded = 0

    def get(self, indices: Sequence[int]) -> list[Frame]:
        if len(set(indices)) > self._cache_frames:
            raise ValueError(
                f"asked for {len(set(indices))} distinct frames; the cache holds {self._cache_frames}"
            )
        for i in indices:
            if not 0 <= i < self.num_frames:
                raise IndexError(f"source frame {i} outside 0..{self.num_frames - 1}")
        wanted = set(indices)
        missing = sorted(i for i in wanted if i not in self._cache)
        if missing:
            self._load(missing[0], missing[-1], protect=wanted)
        out = []
        for i in indices:
            self._cache.move_to_end(i)
            out.append(self._cache[i])
        return out

    def close(self) -> None:
        self._drop_iterator()
        self._cache.clear()

    # -- internals ---------------------------------------------------------------------------------------------

    def _load(self, lo: int, hi: int, *, protect: set[int]) -> None:
        sequential = self._it is not None and self._pos <= lo and lo - self._pos <= self._max_forward_gap
        if not sequential:
            # A jump (backwards, or far ahead): re-open. Going backwards, start a block early so the next
            # (earlier) requests of a reversed pass are already cached.
            start = lo
            if self._it is not None and lo < self._pos:
                start = max(0, min(lo, hi - self._backward_block + 1))
            self._open(start)
        assert self._it is not None
        while self._pos <= hi:
            try:
                frame = next(self._it)
            except StopIteration:
                self._drop_iterator()
                raise UnreadableMedia(
                    f"the video ended at frame {self._pos} although {self.num_frames} frames were counted "
                    "(truncated or corrupt file)",
                    field="video",
                ) from None
            self.frames_decoded += 1
            self._put(self._pos, frame, protect)
            self._pos += 1

    def _put(self, index: int, frame: Frame, protect: set[int]) -> None:
        self._cache[index] = frame
        self._cache.move_to_end(index)
        while len(self._cache) > self._cache_frames:
            # Evict the least recently used frame that the current request does not need.
            for key in self._cache:
                if key not in protect:
                    del self._cache[key]
                    break
            else:  # pragma: no cover - guarded by the size check in get()
                break

    def _open(self, start: int) -> None:
        self._drop_iterator()
        self._it = iter(self._reader(self.path, start, None))
        self._pos = start
        self.opens += 1

    def _drop_iterator(self) -> None:
        it, self._it = self._it, None
        close = getattr(it, "close", None)
        if close is not None:
            close()
