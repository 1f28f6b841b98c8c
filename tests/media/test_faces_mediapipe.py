"""Real face detection with MediaPipe's bundled models on the shared talking-head clips."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from lipsync.media.faces import (
    MEDIAPIPE_POINT_GROUPS,
    Face,
    FaceDetector,
    FaceFilter,
    create_detector,
)
from lipsync.media.faces.mediapipe_mesh import MediaPipeDetector


def _decode(path: Path, indices: set[int]) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indices:
                frames.append(frame.to_ndarray(format="rgb24"))
            if i >= max(indices):
                break
    return frames


@pytest.fixture(scope="module")
def detector() -> Iterator[MediaPipeDetector]:
    with create_detector("mediapipe") as det:
        yield det


@pytest.fixture(scope="module")
def frames(media_dir: Path) -> dict[str, list[np.ndarray]]:
    return {
        "demo1": _decode(media_dir / "demo1_video.mp4", {0, 45, 90}),
        "demo2": _decode(media_dir / "demo2_video.mp4", {0, 50, 100}),
    }


def _check_plausible(face: Face, frame: np.ndarray) -> None:
    height, width = frame.shape[:2]
    x1, y1, x2, y2 = face.bbox
    assert 0.5 <= face.score <= 1.0
    # A talking head in a portrait 1080x1920 clip: a face a few hundred pixels wide, inside the frame.
    assert 150 <= x2 - x1 <= 700 and 150 <= y2 - y1 <= 700
    assert x1 >= -20 and x2 <= width + 20 and y1 >= -20 and y2 <= height + 20
    assert face.landmarks.shape == (468, 2)
    left, right, nose = face.points3
    assert face.points3.dtype == np.float64 and np.array_equal(face.points3, np.round(face.points3))
    for x, y in face.points3:
        assert x1 <= x <= x2 and y1 - 0.2 * (y2 - y1) <= y <= y2
    # Image-left eyebrow left of the image-right one, both above the nose, nose between them.
    assert left[0] < nose[0] < right[0]
    assert max(left[1], right[1]) < nose[1]
    brow_distance = np.hypot(*(right - left))
    assert 0.25 * (x2 - x1) < brow_distance < 0.9 * (x2 - x1)
    assert 0.2 * brow_distance < nose[1] - (left[1] + right[1]) / 2 < 0.9 * brow_distance
    # The mouth (mesh 13/14, lips) lies below the nose point.
    assert face.landmarks[[13, 14], 1].mean() > nose[1]


@pytest.mark.parametrize("clip", ["demo1", "demo2"])
def test_finds_the_face_on_real_frames(
    clip: str, frames: dict[str, list[np.ndarray]], detector: MediaPipeDetector
) -> None:
    for frame in frames[clip]:
        face = detector.detect(frame)
        assert face is not None
        _check_plausible(face, frame)


def test_same_frame_gives_same_face(frames: dict[str, list[np.ndarray]], detector: MediaPipeDetector) -> None:
    frame = frames["demo2"][1]
    a, b = detector.detect(frame), detector.detect(frame)
    assert a is not None and b is not None
    np.testing.assert_array_equal(a.landmarks, b.landmarks)
    assert a.bbox == b.bbox


def test_no_face_returns_none(frames: dict[str, list[np.ndarray]], detector: MediaPipeDetector) -> None:
    grey = np.full((1920, 1080, 3), 128, dtype=np.uint8)
    assert detector.detect(grey) is None
    # Background only: the bottom of the frame, below the speaker's face.
    background = np.ascontiguousarray(frames["demo1"][0][1350:, :])
    assert detector.detect(background) is None
    noise = np.random.default_rng(0).integers(0, 256, (960, 540, 3), dtype=np.uint8)
    assert detector.detect(noise) is None


def test_small_faces_fail_the_reference_size_filter(frames: dict[str, list[np.ndarray]]) -> None:
    frame = frames["demo2"][0]
    # At 1/5 scale the face box is about 55 x 55 px: found, but under the reference's 80-px minimum height.
    small = cv2.resize(frame, (frame.shape[1] // 5, frame.shape[0] // 5), interpolation=cv2.INTER_AREA)
    with MediaPipeDetector(face_filter=FaceFilter(min_width=1, min_height=1)) as permissive:
        found = permissive.detect(small)
    assert found is not None
    width, height = found.bbox[2] - found.bbox[0], found.bbox[3] - found.bbox[1]
    assert width >= 50 and height < 80
    with MediaPipeDetector() as default:
        assert default.detect(small) is None


def test_detector_protocol_and_lifecycle(frames: dict[str, list[np.ndarray]]) -> None:
    det = create_detector("mediapipe")
    assert isinstance(det, FaceDetector)
    assert det.name == "mediapipe"
    det.close()
    det.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        det.detect(frames["demo1"][0])


def test_rejects_non_rgb_frames(detector: MediaPipeDetector) -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        detector.detect(np.zeros((100, 100), dtype=np.uint8))


def test_point_groups_are_distinct_mesh_indices() -> None:
    flat = [i for group in MEDIAPIPE_POINT_GROUPS for i in group]
    assert len(flat) == len(set(flat)) and all(0 <= i < 468 for i in flat)
    with pytest.raises(ValueError, match="unknown face detector"):
        create_detector("dlib")


def test_native_start_up_lines_stay_out_of_the_terminal(media_dir: Path) -> None:
    """MediaPipe's TFLite/absl lines are written by C++ to fd 2 (at start-up and on the first face); at INFO
    the user sees none of them, at DEBUG they are replayed through the ``lipsync.native`` logger."""
    import subprocess
    import sys

    script = (
        "import logging, sys; logging.basicConfig(level=getattr(logging, sys.argv[1]));"
        "from lipsync.media.faces import create_detector; from lipsync.media.io import iter_frames_25fps;"
        "frame = next(iter(iter_frames_25fps(sys.argv[2], max_frames=1)));"
        "d = create_detector('mediapipe'); assert d.detect(frame) is not None; d.close()"
    )
    video = str(media_dir / "demo1_video.mp4")
    noise = ("XNNPACK", "absl::InitializeLog", "Feedback manager", "landmark_projection")
    run = [sys.executable, "-c", script]
    info = subprocess.run([*run, "INFO", video], capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    assert not any(n in info.stderr for n in noise), info.stderr
    debug = subprocess.run([*run, "DEBUG", video], capture_output=True, text=True, timeout=120)
    assert debug.returncode == 0, debug.stderr
    replayed = [
        line for line in debug.stderr.splitlines() if line.startswith("DEBUG:lipsync.native:mediapipe:")
    ]
    assert any("XNNPACK" in line for line in replayed), debug.stderr
