"""Stage functions on their own: FaceTrack (detect once per source frame, identical crops on replay)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lipsync.errors import NoFaceDetected
from lipsync.media.align import FaceAligner
from lipsync.media.faces import Face
from lipsync.media.io import iter_frames_25fps
from lipsync.pipeline.stages import FaceTrack
from tests.pipeline.clips import face_clip


class CountingDetector:
    """Wraps a real detector and counts calls (dependency injection, no patching)."""

    name = "counting"

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.calls = 0

    def detect(self, frame_rgb: np.ndarray) -> Face | None:
        self.calls += 1
        return self.inner.detect(frame_rgb)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> list[np.ndarray]:
    clip = face_clip(media_dir, tmp_path_factory.mktemp("c") / "c.mp4", frames=8, no_face=[3])
    return list(iter_frames_25fps(clip))


def test_replayed_frames_reuse_the_first_pass_alignment(frames: list[np.ndarray], mediapipe_detector) -> None:  # type: ignore[no-untyped-def]
    detector = CountingDetector(mediapipe_detector)
    track = FaceTrack(detector, FaceAligner(256), len(frames))
    forward = track.align(frames, list(range(8)))
    assert detector.calls == 8 and track.faces_found == 7 and forward[3] is None
    # A ping-pong replay (reversed) detects nothing again and gives the very same crops and transforms.
    back = track.align(frames[::-1], list(range(7, -1, -1)))
    assert detector.calls == 8
    for a, b in zip(forward, back[::-1], strict=True):
        if a is None:
            assert b is None
            continue
        assert b is not None
        assert np.array_equal(a.face_rgb, b.face_rgb) and np.array_equal(a.matrix, b.matrix)
        assert a.box == b.box and a.frame_hw == b.frame_hw


def test_smoothing_restarts_after_a_lost_face(frames: list[np.ndarray], mediapipe_detector) -> None:  # type: ignore[no-untyped-def]
    track = FaceTrack(mediapipe_detector, FaceAligner(256), len(frames))
    got = track.align(frames, list(range(8)))
    fresh = FaceAligner(256)  # a new aligner: no smoothing history, like the frame after a gap
    expected = fresh.align(frames[4], mediapipe_detector.detect(frames[4]))
    assert got[4] is not None and np.array_equal(got[4].matrix, expected.matrix)


def test_fail_mode_names_the_frame(frames: list[np.ndarray], mediapipe_detector) -> None:  # type: ignore[no-untyped-def]
    track = FaceTrack(mediapipe_detector, FaceAligner(256), len(frames), on_no_face="fail")
    with pytest.raises(NoFaceDetected) as err:
        track.align(frames, list(range(8)))
    assert err.value.frame_index == 3 and err.value.timestamp_s == pytest.approx(0.12)


@pytest.mark.parametrize(
    ("length", "num_frames"), [(1, 3), (12, 8), (25, 14), (40, 22), (500, 252), (40, 30)]
)
def test_audio_windows_equal_the_engines_full_table(length: int, num_frames: int) -> None:
    import torch

    from lipsync.engine.audio import frame_windows
    from lipsync.pipeline.stages import AudioWindows

    features = torch.randn(length, 5, 7)
    full = frame_windows(features, num_frames)
    lazy = AudioWindows(features, num_frames)
    assert len(lazy) == num_frames
    for start in range(0, num_frames, 16):
        chunk = list(range(start, min(start + 16, num_frames)))
        assert torch.equal(lazy[chunk], full[chunk])
    picks = [num_frames // 2, 0, num_frames - 1]  # any order, as a chunk with faceless frames asks
    assert torch.equal(lazy[picks], full[picks])
    assert torch.equal(lazy[1:3], full[1:3]) and torch.equal(lazy[0], full[0])
    with pytest.raises(IndexError):
        lazy[[num_frames]]
