"""Face detection backends behind one interface.

    from lipsync.media.faces import create_detector
    with create_detector("mediapipe") as detector:      # or "insightface" (the default)
        face = detector.detect(frame_rgb)                # Face | None: the largest face that passes the filters

Backends are imported lazily, so importing this package needs neither mediapipe nor onnxruntime.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lipsync.media.faces.base import (
    INSIGHTFACE_POINT_GROUPS,
    MEDIAPIPE_POINT_GROUPS,
    Face,
    FaceDetector,
    FaceFilter,
    points3_from_landmarks,
    select_largest,
)

if TYPE_CHECKING:
    from lipsync.media.faces.insightface_onnx import InsightFaceDetector
    from lipsync.media.faces.mediapipe_mesh import MediaPipeDetector

__all__ = [
    "DETECTOR_NAMES",
    "INSIGHTFACE_POINT_GROUPS",
    "MEDIAPIPE_POINT_GROUPS",
    "Face",
    "FaceDetector",
    "FaceFilter",
    "InsightFaceDetector",
    "MediaPipeDetector",
    "create_detector",
    "points3_from_landmarks",
    "select_largest",
]

DetectorName = Literal["insightface", "mediapipe"]
DETECTOR_NAMES: tuple[str, ...] = ("insightface", "mediapipe")


def create_detector(
    name: str = "insightface",
    *,
    models_dir: Path | str | None = None,
    device: str = "cpu",
    face_filter: FaceFilter = FaceFilter(),
) -> InsightFaceDetector | MediaPipeDetector:
    """Build a face detector by name.

    ``models_dir``: the InsightFace root (``WeightsLayout.face_models_dir``); defaults to the one under
    ``$LIPSYNC_WEIGHTS_DIR``. Missing model files raise :class:`~lipsync.errors.WeightsError`.
    MediaPipe ignores ``models_dir`` and ``device`` (its bundled models run on the CPU).
    """
    key = name.strip().lower()
    if key == "mediapipe":
        from lipsync.media.faces.mediapipe_mesh import MediaPipeDetector

        return MediaPipeDetector(face_filter=face_filter)
    if key == "insightface":
        from lipsync.media.faces.insightface_onnx import InsightFaceDetector

        if models_dir is None:
            from lipsync.engine.weights import WeightsLayout

            models_dir = WeightsLayout.default().face_models_dir
        return InsightFaceDetector(models_dir, device=device, face_filter=face_filter)
    raise ValueError(f"unknown face detector {name!r}; expected one of {', '.join(DETECTOR_NAMES)}")


def __getattr__(name: str) -> object:
    # Lazy re-exports, so `from lipsync.media.faces import MediaPipeDetector` works without importing
    # mediapipe for users of the other backend.
    if name == "MediaPipeDetector":
        from lipsync.media.faces.mediapipe_mesh import MediaPipeDetector

        return MediaPipeDetector
    if name == "InsightFaceDetector":
        from lipsync.media.faces.insightface_onnx import InsightFaceDetector

        return InsightFaceDetector
    raise AttributeError(name)
