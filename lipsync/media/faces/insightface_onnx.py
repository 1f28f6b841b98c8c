"""InsightFace backend: ``buffalo_l``'s SCRFD detector (det_10g.onnx) and 2d106det landmarks on onnxruntime.

This is what ``insightface.app.FaceAnalysis(allowed_modules=["detection", "landmark_2d_106"])`` with
``det_size=(512, 512)`` does for the reference, written against onnxruntime directly: the ``insightface``
package itself pins numpy >= 2 and protobuf >= 5 and brings a second OpenCV wheel, which breaks the
MediaPipe backend in the same environment.

Reference quirk kept on purpose: LatentSync hands the *RGB* frame to insightface, which expects BGR and
swaps channels for the network, so the networks see BGR-ordered input. Feeding the same RGB array through
the same preprocessing reproduces the reference's detections and landmarks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lipsync.errors import WeightsError
from lipsync.media.faces.base import (
    INSIGHTFACE_POINT_GROUPS,
    Face,
    FaceFilter,
    accepted_by_area,
    points3_from_landmarks,
    select_largest,
)

__all__ = ["DETECTOR_FILE", "LANDMARK_FILE", "InsightFaceDetector", "find_face_models"]

DETECTOR_FILE = "det_10g.onnx"
LANDMARK_FILE = "2d106det.onnx"


def find_face_models(models_dir: str | Path) -> tuple[Path, Path]:
    """(detector, landmark) model paths under ``models_dir``.

    ``models_dir`` is the InsightFace root (files in ``models/buffalo_l/``, the layout ``lipsync weights
    download`` writes), or a folder holding the two files directly.
    """
    root = Path(models_dir).expanduser()
    for folder in (root / "models" / "buffalo_l", root / "buffalo_l", root):
        det, lmk = folder / DETECTOR_FILE, folder / LANDMARK_FILE
        if det.is_file() and lmk.is_file():
            return det, lmk
    raise WeightsError(
        f"InsightFace models not found: expected {DETECTOR_FILE} and {LANDMARK_FILE} in "
        f"{root / 'models' / 'buffalo_l'}. Run `lipsync weights download`, or use `--face-detector mediapipe` "
        "with development weights (MediaPipe needs no download)."
    )


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.startswith("cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _normalises_internally(model_path: Path) -> bool:
    """insightface's rule for landmark models: a graph that starts with its own Sub/Mul (or MXNet's
    ``bn_data``) takes raw pixels (mean 0, std 1); otherwise the input is (x - 127.5) / 128."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the InsightFace backend needs the onnx package to inspect 2d106det.onnx") from exc
    nodes = onnx.load(str(model_path), load_external_data=False).graph.node[:8]
    sub = mul = False
    for i, node in enumerate(nodes):
        if node.name.startswith(("Sub", "_minus")):
            sub = True
        if node.name.startswith(("Mul", "_mul")):
            mul = True
        if i < 3 and node.name == "bn_data":
            sub = mul = True
    return sub and mul


def _nms(dets: np.ndarray, threshold: float) -> list[int]:
    """Greedy non-maximum suppression over (x1, y1, x2, y2, score) rows sorted by score (pixel-inclusive areas)."""
    x1, y1, x2, y2 = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.arange(dets.shape[0])
    keep: list[int] = []
    while order.size > 0:
        i = int(order[0])
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]) + 1)
        inter = w * h
        iou = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][iou <= threshold]
    return keep


class InsightFaceDetector:
    """SCRFD + 106-point landmarks, as the reference runs them. Not thread-safe per instance."""

    name = "insightface"

    def __init__(
        self,
        models_dir: str | Path,
        *,
        device: str = "cpu",
        det_size: int = 512,
        det_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        face_filter: FaceFilter = FaceFilter(),
        threads: int | None = None,
    ) -> None:
        det_path, lmk_path = find_face_models(models_dir)
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "the InsightFace backend needs onnxruntime and onnx (pip install 'lipsync-api[insightface]')"
            ) from exc
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = _providers(device)
        self._det: Any = None
        self._lmk: Any = None
        try:
            self._det = ort.InferenceSession(str(det_path), options, providers=providers)
            self._lmk = ort.InferenceSession(str(lmk_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
            raise WeightsError(f"cannot load the InsightFace models in {det_path.parent}: {exc}") from exc
        self.det_size = det_size
        self.det_threshold = det_threshold
        self.nms_threshold = nms_threshold
        self.face_filter = face_filter
        self._setup_detector()
        self._setup_landmarks(lmk_path)

    # --- model introspection (as insightface's model_zoo does it) --------------------------------------

    def _setup_detector(self) -> None:
        det_input = self._det.get_inputs()[0]
        self._det_input = det_input.name
        # A model exported with a fixed input size keeps it; det_10g's is dynamic, so det_size applies.
        if isinstance(det_input.shape[2], int) and isinstance(det_input.shape[3], int):
            self.det_size = int(det_input.shape[2])
        self._det_outputs = [o.name for o in self._det.get_outputs()]
        n = len(self._det_outputs)
        layouts = {6: (3, (8, 16, 32), 2, False), 9: (3, (8, 16, 32), 2, True),
                   10: (5, (8, 16, 32, 64, 128), 1, False), 15: (5, (8, 16, 32, 64, 128), 1, True)}  # fmt: skip
        if n not in layouts:
            raise WeightsError(f"{DETECTOR_FILE}: unexpected SCRFD model with {n} outputs")
        self._fmc, self._strides, self._anchors, self._with_kps = layouts[n]
        self._batched = len(self._det.get_outputs()[0].shape) == 3

    def _setup_landmarks(self, path: Path) -> None:
        inp = self._lmk.get_inputs()[0]
        self._lmk_input = inp.name
        self._lmk_size = int(inp.shape[2])
        self._lmk_outputs = [o.name for o in self._lmk.get_outputs()]
        if _normalises_internally(path):
            self._lmk_mean, self._lmk_std = 0.0, 1.0
        else:
            self._lmk_mean, self._lmk_std = 127.5, 128.0

    # --- public -------------------------------------------------------------------------------------------

    def __enter__(self) -> InsightFaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # onnxruntime frees sessions with the objects; drop them so a closed detector fails loudly.
        self._det = None
        self._lmk = None

    def detect(self, frame_rgb: np.ndarray) -> Face | None:
        frame = self._check_frame(frame_rgb)
        dets = self.detect_boxes(frame)
        chosen = select_largest(((tuple(d[:4]), float(d[4]), d) for d in dets), self.face_filter)
        return None if chosen is None else self._face(frame, chosen)

    def detect_all(self, frame_rgb: np.ndarray) -> list[Face]:
        """Every accepted face with its landmarks, largest first."""
        frame = self._check_frame(frame_rgb)
        dets = self.detect_boxes(frame)
        chosen = accepted_by_area(((tuple(d[:4]), float(d[4]), d) for d in dets), self.face_filter)
        return [self._face(frame, det) for det in chosen]

    def _check_frame(self, frame_rgb: np.ndarray) -> np.ndarray:
        if self._det is None:
            raise RuntimeError("InsightFaceDetector is closed")
        frame = np.asarray(frame_rgb)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.dtype} {frame.shape}")
        return frame

    def _face(self, frame: np.ndarray, det: np.ndarray) -> Face:
        bbox = tuple(float(v) for v in det[:4])
        landmarks = self.landmarks(frame, bbox)
        return Face(
            bbox=bbox,  # type: ignore[arg-type]
            score=float(det[4]),
            landmarks=landmarks,
            points3=points3_from_landmarks(landmarks, INSIGHTFACE_POINT_GROUPS),
        )

    def detect_boxes(self, frame: np.ndarray) -> np.ndarray:
        """SCRFD detections (n, 5) = x1, y1, x2, y2, score in frame pixels, after NMS, best first."""
        height, width = frame.shape[:2]
        size = self.det_size
        if height / width > 1.0:
            new_h, new_w = size, int(size / (height / width))
        else:
            new_w, new_h = size, int(size * (height / width))
        scale = new_h / height
        canvas = np.zeros((size, size, 3), dtype=np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(frame, (new_w, new_h))
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / 128, (size, size), (127.5, 127.5, 127.5), swapRB=True)
        outs = self._det.run(self._det_outputs, {self._det_input: blob})
        boxes, scores = [], []
        for idx, stride in enumerate(self._strides):
            score = outs[idx]
            dist = outs[idx + self._fmc]
            if self._batched:
                score, dist = score[0], dist[0]
            dist = dist * stride
            rows, cols = size // stride, size // stride
            centres = (np.stack(np.mgrid[:rows, :cols][::-1], axis=-1).astype(np.float32) * stride).reshape(
                -1, 2
            )
            if self._anchors > 1:
                centres = np.stack([centres] * self._anchors, axis=1).reshape(-1, 2)
            keep = np.where(score.reshape(-1) >= self.det_threshold)[0]
            c, d = centres[keep], dist.reshape(-1, 4)[keep]
            boxes.append(
                np.stack([c[:, 0] - d[:, 0], c[:, 1] - d[:, 1], c[:, 0] + d[:, 2], c[:, 1] + d[:, 3]], -1)
            )
            scores.append(score.reshape(-1)[keep])
        all_scores = np.concatenate(scores)
        if all_scores.size == 0:
            return np.zeros((0, 5), dtype=np.float32)
        order = all_scores.argsort()[::-1]
        dets = np.hstack([np.concatenate(boxes) / scale, all_scores[:, None]]).astype(np.float32, copy=False)
        dets = dets[order]
        return dets[_nms(dets, self.nms_threshold)]

    def landmarks(self, frame: np.ndarray, bbox: tuple[float, ...]) -> np.ndarray:
        """(106, 2) float32 landmarks in frame pixels for the face in ``bbox``."""
        x1, y1, x2, y2 = bbox[:4]
        size = self._lmk_size
        scale = size / (max(x2 - x1, y2 - y1) * 1.5)
        cx, cy = (x1 + x2) / 2 * scale, (y1 + y2) / 2 * scale
        # insightface's face_align.transform with no rotation: scale about the box centre into the input.
        m = np.array([[scale, 0.0, size / 2 - cx], [0.0, scale, size / 2 - cy]])
        crop = cv2.warpAffine(frame, m, (size, size), borderValue=(0.0, 0.0, 0.0))
        blob = cv2.dnn.blobFromImage(
            crop, 1.0 / self._lmk_std, (size, size), (self._lmk_mean,) * 3, swapRB=True
        )
        pred = self._lmk.run(self._lmk_outputs, {self._lmk_input: blob})[0][0]
        pred = pred.reshape(-1, 2)[-106:].astype(np.float32)
        pred = (pred + 1) * (size // 2)
        inv = cv2.invertAffineTransform(m)
        pts = np.hstack([pred, np.ones((pred.shape[0], 1), dtype=np.float32)]) @ inv.T
        return pts.astype(np.float32)
