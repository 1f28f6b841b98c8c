"""MediaPipe backend: BlazeFace full-range detection, then the 468-point face mesh on a crop around the face.

Uses the legacy ``mp.solutions`` graphs whose models ship inside the mediapipe wheel (<= 0.10.21), so it
works offline. Two stages, like the InsightFace path (SCRFD box, then landmarks on that box): the
detector's box and score decide which face wins under the reference's filters, and the mesh runs on a
square crop around that box only. Both graphs run in static-image mode: every frame is processed on its
own, so the same frame always gives the same landmarks (a ping-pong pass may decode frames again) and
a face that leaves and returns is simply found again. Temporal smoothing is the aligner's job, as in the
reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lipsync.media.faces.base import (
    MEDIAPIPE_POINT_GROUPS,
    Face,
    FaceFilter,
    accepted_by_area,
    points3_from_landmarks,
    select_largest,
)
from lipsync.media.native_log import quiet_native_stderr

__all__ = ["MediaPipeDetector"]


def _import_mediapipe() -> Any:
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "the MediaPipe face backend needs mediapipe<=0.10.21 (pip install 'lipsync-api[mediapipe]')"
        ) from exc
    return mp


class MediaPipeDetector:
    """Face detector on MediaPipe's bundled models. Not thread-safe: use one per worker thread.

    ``full_range`` picks BlazeFace's full-range model (faces up to ~5 m) over the short-range one
    (selfie distance). ``crop_scale`` sizes the square crop the mesh sees, relative to the box's longer side.
    """

    name = "mediapipe"

    def __init__(
        self,
        *,
        face_filter: FaceFilter = FaceFilter(),
        full_range: bool = True,
        crop_scale: float = 2.0,
        min_detection_confidence: float = 0.5,
    ) -> None:
        self.face_filter = face_filter
        self.crop_scale = crop_scale
        with quiet_native_stderr("mediapipe"):  # TFLite/absl start-up lines go to DEBUG, not the terminal
            mp = _import_mediapipe()
            self._detector = mp.solutions.face_detection.FaceDetection(
                model_selection=1 if full_range else 0, min_detection_confidence=min_detection_confidence
            )
            # Two faces, so a neighbour that shares the crop cannot hide the one the detector chose.
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=2, refine_landmarks=False, min_detection_confidence=0.5
            )
            # The graphs start (and log) on their first frame: run a blank one inside the quiet block.
            blank = np.zeros((64, 64, 3), np.uint8)
            self._detector.process(blank)
            self._mesh.process(blank)
        self._closed = False
        self._mesh_quiet = True

    def __enter__(self) -> MediaPipeDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._detector.close()
            self._mesh.close()

    def detect(self, frame_rgb: np.ndarray) -> Face | None:
        frame, candidates = self._candidates(frame_rgb)
        chosen = select_largest(candidates, self.face_filter)
        return None if chosen is None else self._face(frame, *chosen)

    def detect_all(self, frame_rgb: np.ndarray) -> list[Face]:
        """Every accepted face with its landmarks, largest first."""
        frame, candidates = self._candidates(frame_rgb)
        faces = (self._face(frame, *chosen) for chosen in accepted_by_area(candidates, self.face_filter))
        return [face for face in faces if face is not None]

    def _candidates(
        self, frame_rgb: np.ndarray
    ) -> tuple[np.ndarray, list[tuple[tuple[float, float, float, float], float, tuple[Any, float]]]]:
        if self._closed:
            raise RuntimeError("MediaPipeDetector is closed")
        frame = np.ascontiguousarray(frame_rgb)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.dtype} {frame.shape}")
        height, width = frame.shape[:2]
        result = self._detector.process(frame)
        candidates = []
        for det in result.detections or ():
            box = det.location_data.relative_bounding_box
            x1, y1 = box.xmin * width, box.ymin * height
            bbox = (x1, y1, x1 + box.width * width, y1 + box.height * height)
            candidates.append((bbox, float(det.score[0]), (bbox, float(det.score[0]))))
        return frame, candidates

    def _face(self, frame: np.ndarray, bbox: tuple[float, float, float, float], score: float) -> Face | None:
        landmarks = self._landmarks(frame, bbox)
        if landmarks is None:
            return None
        return Face(
            bbox=bbox,
            score=score,
            landmarks=landmarks,
            points3=points3_from_landmarks(landmarks, MEDIAPIPE_POINT_GROUPS),
        )

    def _landmarks(self, frame: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray | None:
        """(468, 2) float32 mesh landmarks in frame pixels for the face in ``bbox``, or None."""
        height, width = frame.shape[:2]
        cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
        half = max(bbox[2] - bbox[0], bbox[3] - bbox[1]) * self.crop_scale / 2
        x0, x1 = max(int(cx - half), 0), min(int(cx + half) + 1, width)
        y0, y1 = max(int(cy - half), 0), min(int(cy + half) + 1, height)
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
        if self._mesh_quiet:  # the first mesh with a face logs a projection warning from C++: keep it quiet
            with quiet_native_stderr("mediapipe"):
                result = self._mesh.process(crop)
            self._mesh_quiet = not result.multi_face_landmarks
        else:
            result = self._mesh.process(crop)
        best, best_dist = None, float("inf")
        for mesh in result.multi_face_landmarks or ():
            pts = np.array([(p.x, p.y) for p in mesh.landmark], dtype=np.float64)
            pts = pts * (x1 - x0, y1 - y0) + (x0, y0)
            centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
            dist = float(np.hypot(centre[0] - cx, centre[1] - cy))
            if dist < best_dist:
                best, best_dist = pts, dist
        return None if best is None else best.astype(np.float32)
