"""paste_back on the face's window is bit-identical to the reference's full-frame computation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from lipsync.media import align
from lipsync.media.align import FaceAligner, paste_back


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    # These are small per-frame ops; on a shared 2-core runner extra intra-op threads only add contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def frame(media_dir: Path) -> np.ndarray:
    with av.open(str(media_dir / "demo2_video.mp4")) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def _points(cx: float, cy: float, size: float, angle: float) -> np.ndarray:
    base = np.array([[-0.5, -0.25], [0.5, -0.25], [0.0, 0.25]]) * size
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.round(base @ rot.T + (cx, cy))


CASES = [
    # (resolution, centre x, centre y, eyebrow distance, rotation): a real face position of demo2, a small
    # tilted face, faces cut by each frame edge, a large one, and one almost entirely outside the frame.
    (256, 563, 414, 141, 0.15),
    (512, 563, 414, 141, 0.15),
    (256, 700, 1500, 45, -0.5),
    (256, 20, 900, 160, 0.3),
    (512, 1070, 1850, 120, -0.2),
    (256, 540, 10, 200, 0.0),
    (512, 540, 960, 420, 0.05),
    (256, -150, 1000, 100, 0.0),
]


@pytest.mark.parametrize(("resolution", "cx", "cy", "size", "angle"), CASES)
def test_window_equals_full_frame(
    frame: np.ndarray, resolution: int, cx: float, cy: float, size: float, angle: float
) -> None:
    aligned = FaceAligner(resolution).align_points(frame, _points(cx, cy, size, angle))
    generated = np.random.default_rng(resolution + int(cx)).integers(
        0, 256, (resolution, resolution, 3), np.uint8
    )
    fast = paste_back(frame, generated, aligned)
    full = paste_back(frame, generated, aligned, full_frame=True)
    np.testing.assert_array_equal(fast, full)


@pytest.mark.parametrize("area", [1600.0, 1599.5, 1600.25, 6400.0, 6399.75, 3000.0])
def test_edge_width_near_a_step_matches_the_float32_full_sum(area: float) -> None:
    # w_edge = int(sqrt(sum)) // 20 steps at areas (20 n)^2; near a step the window sum is not trusted.
    frame_hw = (300, 400)
    rows, cols = slice(40, 200), slice(60, 260)
    eroded = torch.zeros((1, 1, 160, 200))
    whole, frac = int(area), area - int(area)
    flat = eroded.view(-1)
    flat[:whole] = 1.0
    if frac:
        flat[whole] = frac
    full = torch.zeros((1, 1, *frame_hw))
    full[..., rows, cols] = eroded
    expected = int(torch.sum(full) ** 0.5) // 20
    assert align._edge_width(eroded, frame_hw, rows, cols) == expected


def test_warp_reads_only_the_window_it_fills(frame: np.ndarray) -> None:
    # The aligner converts only the part of the frame the warp samples. Poison the rest of its buffer:
    # the crop must not change (and a stale buffer from another frame must not leak in either).
    points = _points(563, 414, 141, 0.15)
    fresh = FaceAligner(256)
    matrix, _ = align.similarity_transform(points, fresh.template)
    expected = fresh.warp(frame, matrix)
    poisoned = FaceAligner(256)
    poisoned.warp(frame[::-1].copy(), matrix)  # fills the buffer with another frame's pixels
    assert poisoned._frame_buf is not None
    buffer = poisoned._frame_buf
    buffer.fill_(float("nan"))
    np.testing.assert_array_equal(poisoned.warp(frame, matrix), expected)
    touched = ~torch.isnan(buffer[0, 0])
    assert 0 < int(touched.sum()) < frame.shape[0] * frame.shape[1] // 10
