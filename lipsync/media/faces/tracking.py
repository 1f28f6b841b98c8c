"""Link per-frame face detections into tracks: one track per person through a shot.

Choosing the speaker needs identities over time: "the face under this point at 3.2 s" must stay the same
person when the two faces swap sizes, and a person who looks away for a few frames (or leaves and comes
back) must not become somebody new. Talking-head footage is well served by a small IoU tracker in the
spirit of SORT, without its Kalman filter (heads move little between frames at 25 fps):

1. a face is matched to the active track whose last box overlaps it most (IoU ≥ ``min_iou``);
2. unmatched faces are matched to a lost track (missed for a while, or gone for longer) whose last box
   is near by (centre distance ≤ ``return_distance`` × that box's size, size ratio within ``max_scale``):
   the same seat in an interview, the same side of a two-shot;
3. the rest start new tracks.

Matching is greedy on the best score first, which for the handful of faces in a frame is what an optimal
assignment would give in all but contrived cases, and needs no solver.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from lipsync.media.faces.base import Face

__all__ = ["FaceTrack", "FaceTracker", "box_iou", "track_faces"]

Box = tuple[float, float, float, float]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _size(box: Sequence[float]) -> float:
    return math.sqrt(max(box[2] - box[0], 1e-6) * max(box[3] - box[1], 1e-6))


def _centre_distance(a: Sequence[float], b: Sequence[float]) -> float:
    return math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)


@dataclass
class FaceTrack:
    """One person's faces over time, keyed by (25 fps) frame index."""

    id: int
    faces: dict[int, Face] = field(default_factory=dict)

    @property
    def first_frame(self) -> int:
        return min(self.faces)

    @property
    def last_frame(self) -> int:
        return max(self.faces)

    @property
    def last_box(self) -> Box:
        return self.faces[self.last_frame].bbox

    def box_at(self, frame: int) -> Box | None:
        face = self.faces.get(frame)
        return None if face is None else face.bbox

    def mean_area(self) -> float:
        return sum((f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]) for f in self.faces.values()) / max(
            len(self.faces), 1
        )


class FaceTracker:
    """Feed it each frame's faces in order (``update``); read ``tracks`` at the end.

    ``max_gap``: frames a track may miss and still be continued by overlap alone; beyond it a track is
    only picked up again by position (rule 2), so a face that leaves and returns to the same place keeps
    its identity, while a different person entering elsewhere does not inherit it.
    """

    def __init__(
        self,
        *,
        min_iou: float = 0.3,
        max_gap: int = 12,
        return_distance: float = 0.75,
        max_scale: float = 1.8,
    ) -> None:
        self.min_iou = min_iou
        self.max_gap = max_gap
        self.return_distance = return_distance
        self.max_scale = max_scale
        self.tracks: list[FaceTrack] = []

    def update(self, frame: int, faces: Sequence[Face]) -> list[int]:
        """Assign each of *faces* (seen in *frame*) to a track; returns the track ids in the same order."""
        assigned: list[int | None] = [None] * len(faces)
        taken: set[int] = set()
        recent = [t for t in self.tracks if frame - t.last_frame <= self.max_gap and t.last_frame < frame]
        pairs = sorted(
            (
                (box_iou(t.last_box, f.bbox), ti, fi)
                for ti, t in enumerate(recent)
                for fi, f in enumerate(faces)
            ),
            reverse=True,
        )
        for iou, ti, fi in pairs:
            if iou < self.min_iou:
                break
            if assigned[fi] is None and recent[ti].id not in taken:
                assigned[fi] = recent[ti].id
                taken.add(recent[ti].id)
        # Rule 2: lost tracks near where the unmatched face is, nearest first.
        near: list[tuple[float, int, int]] = []
        for fi, face in enumerate(faces):
            if assigned[fi] is not None:
                continue
            for track in self.tracks:
                if track.id in taken or track.last_frame >= frame:
                    continue
                last = track.last_box
                ratio = _size(face.bbox) / _size(last)
                dist = _centre_distance(face.bbox, last) / _size(last)
                if dist <= self.return_distance and 1 / self.max_scale <= ratio <= self.max_scale:
                    near.append((dist, track.id, fi))
        for _dist, track_id, fi in sorted(near):
            if assigned[fi] is None and track_id not in taken:
                assigned[fi] = track_id
                taken.add(track_id)
        by_id = {t.id: t for t in self.tracks}
        for fi, face in enumerate(faces):
            track_id = assigned[fi]
            if track_id is None:
                track = FaceTrack(id=len(self.tracks))
                self.tracks.append(track)
                by_id[track.id] = track
                track_id = assigned[fi] = track.id
            by_id[track_id].faces[frame] = face
        return [int(t) for t in assigned if t is not None]

    def track(self, track_id: int) -> FaceTrack:
        return self.tracks[track_id]


def track_faces(frames_faces: Sequence[tuple[int, Sequence[Face]]], **options: float) -> list[FaceTrack]:
    """Run a :class:`FaceTracker` over ``(frame index, faces)`` pairs and return its tracks."""
    tracker = FaceTracker(**options)  # type: ignore[arg-type]
    for frame, faces in frames_faces:
        tracker.update(frame, faces)
    return tracker.tracks
