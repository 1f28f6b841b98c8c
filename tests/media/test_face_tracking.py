"""The face tracker on boxes with known identities (the real-face cases are in test_face_choice.py)."""

from __future__ import annotations

import numpy as np

from lipsync.media.faces.base import Face
from lipsync.media.faces.tracking import FaceTracker, box_iou, track_faces


def face(x: float, y: float, size: float) -> Face:
    box = (x - size / 2, y - size / 2, x + size / 2, y + size / 2)
    return Face(bbox=box, score=0.9, landmarks=np.zeros((468, 2), np.float32), points3=np.zeros((3, 2)))


def test_iou() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == 50 / 150
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_two_people_keep_their_ids_when_their_sizes_swap_and_they_drift() -> None:
    frames = []
    for i in range(50):
        grow = i / 49
        a = face(100 + i, 200, 120 - 60 * grow)  # shrinks
        b = face(400 - i, 200, 60 + 60 * grow)  # grows
        frames.append((i, [b, a] if i % 2 else [a, b]))  # detector order changes too
    tracks = track_faces(frames)
    assert len(tracks) == 2
    for track in tracks:
        xs = [f.bbox[0] + (f.bbox[2] - f.bbox[0]) / 2 for _, f in sorted(track.faces.items())]
        assert len(xs) == 50 and (all(x < 250 for x in xs) or all(x > 250 for x in xs))


def test_a_short_miss_and_a_return_to_the_same_place_keep_the_identity() -> None:
    tracker = FaceTracker(max_gap=5)
    for i in range(10):
        tracker.update(i, [face(100, 100, 80), face(300, 100, 80)])
    for i in range(10, 13):  # the right face is missed for 3 frames
        tracker.update(i, [face(100, 100, 80)])
    for i in range(13, 20):
        tracker.update(i, [face(100, 100, 80), face(302, 101, 80)])
    for i in range(20, 60):  # the left person leaves for 40 frames (beyond max_gap)...
        tracker.update(i, [face(302, 101, 80)])
    ids = tracker.update(60, [face(104, 98, 84), face(302, 101, 80)])  # ...and comes back to their seat
    assert ids == [0, 1] and len(tracker.tracks) == 2


def test_a_different_person_elsewhere_starts_a_new_track() -> None:
    tracker = FaceTracker(max_gap=5)
    for i in range(10):
        tracker.update(i, [face(100, 100, 80)])
    ids = tracker.update(30, [face(600, 400, 80)])
    assert ids == [1] and len(tracker.tracks) == 2
