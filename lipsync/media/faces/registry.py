"""The face detector registry: every backend, once, with what it needs.

``DETECTORS`` maps a name to its :class:`DetectorSpec` (factory, the weight assets it reads, a description).
The CLI's ``--face-detector`` choices, the server setting, :func:`create_detector` and the pipeline all read
it, so adding a backend is one entry here. Backends are imported inside their factories, so importing this
module needs neither mediapipe nor onnxruntime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from lipsync.media.faces.base import FaceDetector, FaceFilter

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "DETECTOR_NAMES",
    "DetectorFactory",
    "DetectorSpec",
    "create_detector",
    "get_detector_spec",
]


class DetectorFactory(Protocol):
    def __call__(self, *, models_dir: Path | None, device: str, face_filter: FaceFilter) -> FaceDetector: ...


@dataclass(frozen=True)
class DetectorSpec:
    """One face backend.

    ``weights``: the shared weight assets it reads, by name (``lipsync.engine.releases.ASSETS``; a test holds
    the names to that table); the pipeline checks them before building the detector. Empty: it runs offline.
    """

    name: str
    factory: DetectorFactory
    weights: tuple[str, ...]
    description: str

    def missing_weights_hint(self) -> str:
        """The last line of a missing-weights error: which backends do without any download."""
        offline = [f"`--face-detector {s.name}`" for s in DETECTORS.values() if not s.weights]
        return f"The {self.name} face detector needs these files; or use {' or '.join(offline)} with development weights."


def _insightface(*, models_dir: Path | None, device: str, face_filter: FaceFilter) -> FaceDetector:
    from lipsync.media.faces.insightface_onnx import InsightFaceDetector

    if models_dir is None:
        from lipsync.engine.weights import WeightsLayout

        models_dir = WeightsLayout.default().face_models_dir
    return InsightFaceDetector(models_dir, device=device, face_filter=face_filter)


def _mediapipe(*, models_dir: Path | None, device: str, face_filter: FaceFilter) -> FaceDetector:
    # Bundled models on the CPU: models_dir and device do not apply.
    from lipsync.media.faces.mediapipe_mesh import MediaPipeDetector

    return MediaPipeDetector(face_filter=face_filter)


DETECTORS: Mapping[str, DetectorSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            DetectorSpec(
                "insightface",
                _insightface,
                weights=("insightface",),
                description="InsightFace buffalo_l on onnxruntime (the reference's; needs downloaded models)",
            ),
            DetectorSpec(
                "mediapipe",
                _mediapipe,
                weights=(),
                description="MediaPipe face mesh (bundled models, CPU, offline)",
            ),
        )
    }
)
DETECTOR_NAMES: tuple[str, ...] = tuple(DETECTORS)
#: What LatentSync was trained with.
DEFAULT_DETECTOR = "insightface"


def get_detector_spec(name: str) -> DetectorSpec:
    """The spec of ``name`` (case and spaces ignored); ``ValueError`` naming the choices for anything else."""
    spec = DETECTORS.get(str(name).strip().lower())
    if spec is None:
        raise ValueError(f"unknown face detector {name!r}; expected one of {', '.join(DETECTOR_NAMES)}")
    return spec


def create_detector(
    name: str = DEFAULT_DETECTOR,
    *,
    models_dir: Path | str | None = None,
    device: str = "cpu",
    face_filter: FaceFilter = FaceFilter(),
) -> FaceDetector:
    """Build a face detector by name.

    ``models_dir``: the InsightFace root (``WeightsLayout.face_models_dir``); defaults to the one under
    ``$LIPSYNC_WEIGHTS_DIR``. Missing model files raise :class:`~lipsync.errors.WeightsError`.
    MediaPipe ignores ``models_dir`` and ``device`` (its bundled models run on the CPU).
    """
    spec = get_detector_spec(name)
    return spec.factory(
        models_dir=Path(models_dir) if models_dir is not None else None,
        device=device,
        face_filter=face_filter,
    )
