"""Choosing the face in a two-person picture: tracking, active speaker detection, point and boxes.

Real faces and real speech: demo1 (left) and demo2 (right) side by side, with the original voice of one of
them (tests/media/two_faces.py). The left face's box centre is left of x = 480.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from contracts import FaceAuto, FaceBoxes, FacePoint, NormalisedBox
from lipsync.errors import InputError
from lipsync.media.faces import create_detector
from lipsync.media.faces.base import Face
from lipsync.media.faces.selection import FaceSelection, prepare_selection
from tests.media.two_faces import original_voice, side_by_side

FRAMES = 100  # 4 s


@pytest.fixture(scope="module")
def detector() -> Iterator[object]:
    with create_detector("mediapipe") as d:
        yield d


@pytest.fixture(scope="module")
def two_people(media_dir: Path) -> list[np.ndarray]:
    return list(side_by_side(media_dir, FRAMES))


def _side(face: Face) -> str:
    return "left" if (face.bbox[0] + face.bbox[2]) / 2 < 480 else "right"


def _chosen_sides(selection: FaceSelection, frames: list[np.ndarray], detector: object) -> set[str]:
    faces = [selection.face(i, f, detector) for i, f in enumerate(frames)]  # type: ignore[arg-type]
    return {_side(f) for f in faces if f is not None}


def _select(
    choice: object, frames: list[np.ndarray], detector: object, audio: np.ndarray | None
) -> FaceSelection:
    return prepare_selection(
        choice,  # type: ignore[arg-type]
        num_frames=len(frames),
        frames=lambda: iter(frames),
        detector=detector,  # type: ignore[arg-type]
        original_audio=lambda: audio,
    )


@pytest.mark.parametrize(("voice", "side"), [("demo1", "left"), ("demo2", "right")])
def test_auto_picks_the_face_whose_voice_is_in_the_sound(
    two_people: list[np.ndarray], detector: object, media_dir: Path, voice: str, side: str
) -> None:
    selection = _select(FaceAuto(auto=True), two_people, detector, original_voice(media_dir, voice, FRAMES))
    assert selection.mode == "auto" and selection.summary["score"] > selection.summary["runner_up"]
    assert _chosen_sides(selection, two_people, detector) == {side}


def test_auto_without_speech_falls_back_to_the_largest_face_and_says_so(
    two_people: list[np.ndarray], detector: object
) -> None:
    silent = np.zeros(FRAMES * 640, np.float32)
    selection = _select(FaceAuto(auto=True), two_people, detector, silent)
    assert selection.mode == "largest" and selection.summary["fallback"] == "largest"
    assert "no usable speech" in selection.summary["reason"]
    no_track = _select(FaceAuto(auto=True), two_people, detector, None)
    assert "no sound track" in no_track.summary["reason"]


def test_a_point_keeps_its_person_when_the_faces_swap_sizes(media_dir: Path, detector: object) -> None:
    frames = list(side_by_side(media_dir, 60, scales=(1.0, 0.6), swap_at=30))
    largest = FaceSelection("largest")
    assert _chosen_sides(largest, frames[:30], detector) == {"left"}  # the reference follows the size...
    assert _chosen_sides(largest, frames[30:], detector) == {"right"}  # ...and jumps to the other person
    selection = _select(FacePoint(point=(0.25, 0.5), time=0.0), frames, detector, None)
    assert selection.summary["track"] is not None
    chosen = [selection.face(i, f, detector) for i, f in enumerate(frames)]  # type: ignore[arg-type]
    assert sum(f is not None for f in chosen) >= 55 and {_side(f) for f in chosen if f is not None} == {
        "left"
    }


def test_a_point_on_no_face_names_the_frame_and_the_point(
    two_people: list[np.ndarray], detector: object
) -> None:
    with pytest.raises(
        InputError, match=r"face.point \(0.5, 0.02\).* is on no face in frame 25 \(1.00 s\)"
    ) as err:
        _select(FacePoint(point=(0.5, 0.02), time=1.0), two_people, detector, None)
    assert err.value.field == "face.point"
    with pytest.raises(InputError, match="past the end of the video") as late:
        _select(FacePoint(point=(0.25, 0.5), time=60.0), two_people, detector, None)
    assert late.value.field == "face.time"


def test_boxes_pick_the_overlapping_face_frame_by_frame(
    two_people: list[np.ndarray], detector: object
) -> None:
    right = NormalisedBox(x1=0.55, y1=0.2, x2=0.95, y2=0.8)
    boxes: list[NormalisedBox | None] = [right] * FRAMES
    boxes[10] = None
    selection = _select(FaceBoxes(boxes=boxes), two_people, detector, None)
    assert selection.face(10, two_people[10], detector) is None  # type: ignore[arg-type]
    assert _chosen_sides(selection, two_people, detector) == {"right"}
    with pytest.raises(InputError, match=r"face\.boxes has 3 entries but the video has 100 frames"):
        _select(FaceBoxes(boxes=[right] * 3), two_people, detector, None)


def test_largest_is_the_detector_s_own_choice_on_a_single_face(media_dir: Path, detector: object) -> None:
    from tests.pipeline.clips import SPEAKERS, decode_frames

    selection = _select("largest", [], detector, None)
    for i, frame in enumerate(decode_frames(media_dir / SPEAKERS["demo1"].video, count=5)):
        a, b = selection.face(i, frame, detector), detector.detect(frame)  # type: ignore[arg-type, attr-defined]
        assert a is not None and b is not None and a.bbox == b.bbox
