"""Face detection backends behind one interface, chosen from one registry (:data:`DETECTORS`).

    from lipsync.media.faces import create_detector
    with create_detector("mediapipe") as detector:      # or "insightface" (the default)
        face = detector.detect(frame_rgb)                # Face | None: the largest face that passes the filters

Backends are imported lazily, so importing this package needs neither mediapipe nor onnxruntime; the
classes themselves live in ``faces.insightface_onnx`` and ``faces.mediapipe_mesh``.
"""

from __future__ import annotations

from lipsync.media.faces.base import (
    INSIGHTFACE_POINT_GROUPS,
    MEDIAPIPE_POINT_GROUPS,
    Face,
    FaceDetector,
    FaceFilter,
    points3_from_landmarks,
    select_largest,
)
from lipsync.media.faces.registry import (
    DEFAULT_DETECTOR,
    DETECTOR_NAMES,
    DETECTORS,
    DetectorSpec,
    create_detector,
    get_detector_spec,
)

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "DETECTOR_NAMES",
    "INSIGHTFACE_POINT_GROUPS",
    "MEDIAPIPE_POINT_GROUPS",
    "DetectorSpec",
    "Face",
    "FaceDetector",
    "FaceFilter",
    "create_detector",
    "get_detector_spec",
    "points3_from_landmarks",
    "select_largest",
]
