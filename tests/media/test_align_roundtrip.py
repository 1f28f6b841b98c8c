"""Align -> paste back on real 1080x1920 frames: almost lossless inside the crop, untouched outside it.

With the unchanged aligned face pasted back, what remains is the reference's resampling chain
(bilinear warp, uint8 truncation, Lanczos-4 to R, bicubic back, bilinear inverse warp, feathering).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from lipsync.media.align import AlignedFace, FaceAligner, paste_back
from lipsync.media.faces import create_detector
from lipsync.media.faces.mediapipe_mesh import MediaPipeDetector


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    # These are small per-frame ops; on a shared 2-core runner extra intra-op threads only add contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _decode(path: Path, indices: set[int]) -> dict[int, np.ndarray]:
    frames: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indices:
                frames[i] = frame.to_ndarray(format="rgb24")
            if i >= max(indices):
                break
    return frames


@pytest.fixture(scope="module")
def detector() -> Iterator[MediaPipeDetector]:
    with create_detector("mediapipe") as det:
        yield det


@pytest.fixture(scope="module")
def frames(media_dir: Path) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for name in ("demo1_video.mp4", "demo2_video.mp4"):
        out.extend(_decode(media_dir / name, {0, 80}).values())
    return out


def _outside_crop(aligned: AlignedFace, hw: tuple[int, int], margin_px: int) -> np.ndarray:
    """Pixels further than ``margin_px`` from the warped crop rectangle (float64 geometry)."""
    height, width = hw
    m = aligned.matrix.astype(np.float64)
    inv = np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))[:2]
    crop_w, crop_h = aligned.crop_size
    corners = np.array([[-1, -1, 1], [crop_w, -1, 1], [-1, crop_h, 1], [crop_w, crop_h, 1]], float) @ inv.T
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 2 * margin_px, 0)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2 * margin_px
    ys, xs = np.mgrid[y0 : min(y1, height), x0 : min(x1, width)]
    u = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    v = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    inside = ((u > -1) & (u < crop_w) & (v > -1) & (v < crop_h)).astype(np.uint8)
    grown = cv2.dilate(inside, np.ones((2 * margin_px + 1, 2 * margin_px + 1), np.uint8))
    outside = np.ones((height, width), dtype=bool)
    outside[y0 : min(y1, height), x0 : min(x1, width)] = grown == 0
    return outside


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("resolution", [256, 512])
def test_round_trip_is_almost_lossless(
    resolution: int, frames: list[np.ndarray], detector: MediaPipeDetector
) -> None:
    aligner = FaceAligner(resolution)
    for frame in frames:
        face = detector.detect(frame)
        assert face is not None
        aligned = aligner.align(frame, face)
        restored = paste_back(frame, aligned.face_rgb, aligned)
        assert restored.shape == frame.shape and restored.dtype == np.uint8
        outside = _outside_crop(aligned, frame.shape[:2], margin_px=2)
        # Bit-identical away from the pasted crop ...
        np.testing.assert_array_equal(restored[outside], frame[outside])
        changed = (restored != frame).any(axis=2)
        assert changed.sum() > 10_000  # the face region really went through the chain
        # ... and close inside it (measured 42.9-47.3 dB on these frames).
        assert _psnr(restored[~outside], frame[~outside]) > 40.0
        assert _psnr(restored, frame) > 50.0


def test_aligned_face_is_upright_and_centred(frames: list[np.ndarray], detector: MediaPipeDetector) -> None:
    aligner = FaceAligner(256)
    frame = frames[0]
    face = detector.detect(frame)
    assert face is not None
    aligned = aligner.align(frame, face)
    # The template puts the eyebrows at y = 56 and the nose point at y = 112 of the 280-px crop; after
    # the resize to 256 they land near y = 51 and 102, with the eyebrows at x = 58 and 198 of 256.
    pts = np.hstack([face.points3, np.ones((3, 1))]) @ aligned.matrix.T.astype(np.float64)
    scaled = pts * (256 / aligned.crop_size[0], 256 / aligned.crop_size[1])
    np.testing.assert_allclose(scaled[:, 1], [51.2, 51.2, 102.4], atol=12)
    np.testing.assert_allclose(scaled[:, 0], [58.0, 198.0, 128.0], atol=12)
