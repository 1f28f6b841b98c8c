"""FrameSource: random access to the 25-fps source frames with a bounded window of decoded frames."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from lipsync.errors import UnreadableMedia
from lipsync.pipeline.frames import FrameSource
from lipsync.pipeline.timeline import plan_timeline


class CountingReader:
    """A decoder stand-in whose frame *i* holds the value i; records how many frames it produced."""

    def __init__(self, num_frames: int, *, truncate_at: int | None = None) -> None:
        self.num_frames = num_frames
        self.truncate_at = truncate_at
        self.decoded = 0

    def __call__(self, path: str, start: int, max_frames: int | None) -> Iterator[np.ndarray]:
        end = self.num_frames if self.truncate_at is None else self.truncate_at
        if max_frames is not None:
            end = min(end, start + max_frames)
        for i in range(start, end):
            self.decoded += 1
            yield np.full((2, 2, 3), i % 256, dtype=np.uint8)


def values(frames: list[np.ndarray]) -> list[int]:
    return [int(f[0, 0, 0]) for f in frames]


def test_pingpong_pass_returns_the_right_frames_with_bounded_cache_and_few_reopens() -> None:
    n_video, n_out, chunk = 100, 430, 16
    reader = CountingReader(n_video)
    src = FrameSource("x.mp4", n_video, reader, cache_frames=48, backward_block=32)
    t = plan_timeline(n_video, n_out, (n_out - 2) * 640, "pingpong")
    for start in range(0, n_out, chunk):
        idx = t.source_indices(start, min(start + chunk, n_out))
        assert values(src.get(idx)) == [i % 256 for i in idx]
        assert len(src._cache) <= 48
    # Forward laps continue one decoder; each backward lap re-opens about once per 32-frame block.
    laps_backward = 2  # laps 1 and 3 of 0..4
    assert src.opens <= 1 + laps_backward * (-(-n_video // 32) + 1) + 2
    # Frames are decoded at most ~twice per output frame (backward blocks overlap the previous request).
    assert reader.decoded <= 2 * n_out


def test_forward_reads_use_one_decoder() -> None:
    reader = CountingReader(64)
    src = FrameSource("x.mp4", 64, reader)
    for start in range(0, 64, 16):
        assert values(src.get(list(range(start, start + 16)))) == list(range(start, start + 16))
    assert src.opens == 1 and reader.decoded == 64


def test_repeated_and_unordered_indices() -> None:
    src = FrameSource("x.mp4", 10, CountingReader(10))
    assert values(src.get([3, 3, 1, 9, 0])) == [3, 3, 1, 9, 0]


def test_truncated_video_is_a_typed_error_naming_the_video() -> None:
    src = FrameSource("x.mp4", 50, CountingReader(50, truncate_at=20))
    with pytest.raises(UnreadableMedia) as err:
        src.get(list(range(16, 32)))
    assert err.value.field == "video" and "frame 20" in str(err.value)


def test_out_of_range_and_oversized_requests() -> None:
    src = FrameSource("x.mp4", 10, CountingReader(10), cache_frames=4, backward_block=4)
    with pytest.raises(IndexError):
        src.get([10])
    with pytest.raises(ValueError):
        src.get([0, 1, 2, 3, 4])
