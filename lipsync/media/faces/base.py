"""What every face backend returns, the reference's face filters, and the 3 alignment points."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    # numpy is imported where it is used: the detector registry (read by the CLI, whose base install has no
    # numpy) imports this module.
    import numpy as np

__all__ = [
    "INSIGHTFACE_POINT_GROUPS",
    "MEDIAPIPE_POINT_GROUPS",
    "Face",
    "FaceDetector",
    "FaceFilter",
    "MultiFaceDetector",
    "accepted_by_area",
    "points3_from_landmarks",
    "select_largest",
]

#: 2d106det indices averaged into the three alignment points (the reference's choice):
#: image-left eyebrow (upper contour, = 68-point 17-21), image-right eyebrow (= 68-point 22-26),
#: nose centre (74 = lower bridge / 68-point 29, 86 = tip / 68-point 30, 77 and 83 = the two alar wings).
INSIGHTFACE_POINT_GROUPS: tuple[tuple[int, ...], ...] = (
    (43, 48, 49, 51, 50),
    (101, 102, 103, 104, 105),
    (74, 77, 83, 86),
)

#: The anatomically matching MediaPipe face-mesh (468-point) indices: the upper eyebrow contours
#: (70, 63, 105, 66, 107 and 336, 296, 334, 293, 300, the usual mesh equivalents of 68-point 17-26) and, for the
#: nose, 5 (lower bridge), 4 (tip) and 64 / 294 (alar wings just above the nostril corners 98 / 327).
MEDIAPIPE_POINT_GROUPS: tuple[tuple[int, ...], ...] = (
    (70, 63, 105, 66, 107),
    (336, 296, 334, 293, 300),
    (5, 64, 294, 4),
)


@dataclass(frozen=True)
class Face:
    """One detected face, in frame pixels."""

    #: (x1, y1, x2, y2) of the detector's box; may reach past the frame edges.
    bbox: tuple[float, float, float, float]
    #: Detector confidence in [0, 1].
    score: float
    #: (N, 2) float landmarks as (x, y): 106 for InsightFace, 468 for MediaPipe.
    landmarks: np.ndarray
    #: (3, 2) float64 alignment points (left eyebrow, right eyebrow, nose centre), whole pixels.
    points3: np.ndarray


@runtime_checkable
class FaceDetector(Protocol):
    """A face backend. ``detect`` returns the largest face that passes the filters, or None."""

    name: str

    def detect(self, frame_rgb: np.ndarray) -> Face | None: ...

    def close(self) -> None: ...


@runtime_checkable
class MultiFaceDetector(FaceDetector, Protocol):
    """A backend that can also return every accepted face of a frame (choosing the speaker needs them)."""

    def detect_all(self, frame_rgb: np.ndarray) -> list[Face]: ...


@dataclass(frozen=True)
class FaceFilter:
    """The reference's acceptance rule for detections (``latentsync/utils/face_detector.py``).

    The box is truncated to whole pixels first; a face needs width >= 50, height >= 80,
    0.2 <= width/height <= 1.5 and score >= 0.5.
    """

    min_width: int = 50
    min_height: int = 80
    min_aspect: float = 0.2
    max_aspect: float = 1.5
    min_score: float = 0.5

    def area(self, bbox: Sequence[float], score: float) -> int | None:
        """The truncated box area if the detection passes, else None."""
        x1, y1, x2, y2 = (int(v) for v in bbox)
        w, h = x2 - x1, y2 - y1
        if w < self.min_width or h < self.min_height:
            return None
        if w / h > self.max_aspect or w / h < self.min_aspect:
            return None
        if score < self.min_score:
            return None
        return w * h


T = TypeVar("T")


def select_largest(
    candidates: Iterable[tuple[Sequence[float], float, T]], face_filter: FaceFilter = FaceFilter()
) -> T | None:
    """The payload of the accepted candidate ``(bbox, score, payload)`` with the largest area (first on ties)."""
    best: T | None = None
    best_area = 0
    for bbox, score, payload in candidates:
        area = face_filter.area(bbox, score)
        if area is not None and area > best_area:
            best, best_area = payload, area
    return best


def accepted_by_area(
    candidates: Iterable[tuple[Sequence[float], float, T]], face_filter: FaceFilter = FaceFilter()
) -> list[T]:
    """The payloads of all accepted candidates, largest area first (stable on ties, as ``select_largest``)."""
    scored = [(area, i, payload) for i, (bbox, score, payload) in enumerate(candidates)
              if (area := face_filter.area(bbox, score)) is not None and area > 0]  # fmt: skip
    return [payload for _area, _i, payload in sorted(scored, key=lambda t: (-t[0], t[1]))]


def points3_from_landmarks(landmarks: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Three alignment points as the reference makes them: landmarks rounded to whole pixels, each group
    averaged, the means rounded again (``np.round``: halves go to even)."""
    import numpy as np

    lmk = np.round(np.asarray(landmarks, dtype=np.float64)[:, :2]).astype(np.int64)
    return np.round(np.stack([lmk[list(group)].mean(axis=0) for group in groups]))
