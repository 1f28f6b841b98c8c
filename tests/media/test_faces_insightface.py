"""InsightFace backend on onnxruntime, exercised with small ONNX models in the official file format.

The real buffalo_l networks cannot be downloaded here, so these models have the real ones' interfaces
(SCRFD: one NCHW input, 9 outputs = scores / box distances / keypoints for strides 8, 16, 32 with 2 anchors
each; 2d106det: a 192x192 input, 212 outputs) and emit known values. That checks everything around the
networks: preprocessing geometry, decoding, NMS, the reference's filters, the largest-face choice, the
landmark back-projection and the 106 -> 3 point mapping. It does not check the networks' own accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from lipsync.errors import WeightsError
from lipsync.media.faces import (
    INSIGHTFACE_POINT_GROUPS,
    FaceDetector,
    FaceFilter,
    create_detector,
    points3_from_landmarks,
    select_largest,
)
from lipsync.media.faces.insightface_onnx import InsightFaceDetector, _normalises_internally, find_face_models

FRAME_HW = (1920, 1080)
DET_SIZE = 512
STRIDES = (8, 16, 32)
# 1920x1080 portrait goes into the 512 canvas at 288x512: one canvas pixel is 3.75 frame pixels.
FRAME_PER_CANVAS = 1920 / 512

# (stride, row, col, anchor, distances l/t/r/b in canvas px, score)
CANVAS_FACES = {
    "A": (32, 5, 4, 1, (40, 48, 40, 56), 0.90),  # the largest acceptable face
    "A_dup": (32, 5, 4, 0, (38, 46, 42, 54), 0.85),  # overlaps A: removed by NMS
    "B": (16, 20, 5, 0, (16, 20, 16, 24), 0.95),  # best score, smaller
    "C": (8, 40, 30, 0, (100, 30, 100, 30), 0.80),  # largest of all, but 3.3:1 wide: filtered out
    "D": (16, 10, 20, 1, (150, 150, 150, 150), 0.30),  # under the detection threshold
}


def _canvas_box(name: str) -> np.ndarray:
    stride, row, col, _, (left, top, right, bottom), _ = CANVAS_FACES[name]
    cx, cy = col * stride, row * stride
    return np.array([cx - left, cy - top, cx + right, cy + bottom], dtype=np.float64)


def _frame_box(name: str) -> np.ndarray:
    return _canvas_box(name) * FRAME_PER_CANVAS


def _constant_outputs_model(path: Path, input_name: str, input_shape: list, outputs: dict[str, np.ndarray], *,
                            first_nodes: tuple[str, ...] = ()) -> None:  # fmt: skip
    """An ONNX model whose outputs are fixed tensors (plus 0 x the mean of its input, so the input is used)."""
    nodes = []
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    for i, name in enumerate(first_nodes):  # named like a converted network's first layers
        nodes.append(
            helper.make_node("Identity", [input_name if i == 0 else f"pre{i - 1}"], [f"pre{i}"], name=name)
        )
    source = f"pre{len(first_nodes) - 1}" if first_nodes else input_name
    nodes.append(helper.make_node("ReduceMean", [source], ["mean"], keepdims=0, name="reduce"))
    nodes.append(helper.make_node("Mul", ["mean", "zero"], ["nothing"], name="times_zero"))
    graph_outputs = []
    for name, value in outputs.items():
        inits.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_const"))
        nodes.append(helper.make_node("Add", [f"{name}_const", "nothing"], [name], name=f"add_{name}"))
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)],
        graph_outputs,
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _scrfd_outputs() -> dict[str, np.ndarray]:
    scores, boxes, kps = {}, {}, {}
    for stride in STRIDES:
        n = (DET_SIZE // stride) ** 2 * 2
        scores[stride] = np.zeros((n, 1), np.float32)
        boxes[stride] = np.zeros((n, 4), np.float32)
        kps[stride] = np.zeros((n, 10), np.float32)
    for stride, row, col, anchor, dist, score in CANVAS_FACES.values():
        index = (row * (DET_SIZE // stride) + col) * 2 + anchor
        scores[stride][index, 0] = score
        boxes[stride][index] = np.array(dist, np.float32) / stride
    # det_10g's output order: the three score maps, then the three box maps, then the three keypoint maps.
    out = {f"score_{s}": scores[s] for s in STRIDES}
    out.update({f"bbox_{s}": boxes[s] for s in STRIDES})
    out.update({f"kps_{s}": kps[s] for s in STRIDES})
    return out


LANDMARKS_NORM = np.random.default_rng(7).uniform(-0.8, 0.8, (106, 2)).astype(np.float32)


@pytest.fixture()
def models_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "insightface" / "models" / "buffalo_l"
    folder.mkdir(parents=True)
    _constant_outputs_model(folder / "det_10g.onnx", "input.1", [1, 3, "h", "w"], _scrfd_outputs())
    _constant_outputs_model(
        folder / "2d106det.onnx",
        "data",
        [1, 3, 192, 192],
        {"fc1": LANDMARKS_NORM.reshape(1, 212)},
        first_nodes=("bn_data", "conv_1"),
    )
    return tmp_path / "insightface"


@pytest.fixture()
def frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (*FRAME_HW, 3), dtype=np.uint8)


def test_detect_boxes_decodes_scales_and_suppresses(models_dir: Path, frame: np.ndarray) -> None:
    with InsightFaceDetector(models_dir) as det:
        dets = det.detect_boxes(frame)
    assert dets.shape == (3, 5)
    np.testing.assert_allclose(dets[:, 4], [0.95, 0.90, 0.80], rtol=1e-6)
    for row, name in zip(dets, ("B", "A", "C"), strict=True):
        np.testing.assert_allclose(row[:4], _frame_box(name), rtol=1e-5)


def test_detect_picks_largest_face_passing_filters_and_maps_landmarks(
    models_dir: Path, frame: np.ndarray
) -> None:
    det = create_detector("insightface", models_dir=models_dir)
    assert isinstance(det, FaceDetector) and det.name == "insightface"
    face = det.detect(frame)
    det.close()
    assert face is not None
    box = _frame_box("A")
    np.testing.assert_allclose(face.bbox, box, rtol=1e-5)
    assert face.score == pytest.approx(0.90)
    # The landmark crop: box centre at the middle of 192 px, scaled so 1.5 x the longer side fills it.
    scale = 192 / (max(box[2] - box[0], box[3] - box[1]) * 1.5)
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    expected = centre + ((LANDMARKS_NORM.astype(np.float64) + 1) * 96 - 96) / scale
    assert face.landmarks.shape == (106, 2)
    np.testing.assert_allclose(face.landmarks, expected, atol=2e-3)
    np.testing.assert_array_equal(face.points3, points3_from_landmarks(expected, INSIGHTFACE_POINT_GROUPS))


def test_no_detection_returns_none(models_dir: Path, frame: np.ndarray) -> None:
    with InsightFaceDetector(models_dir, det_threshold=0.99) as det:
        assert det.detect(frame) is None
    # Only the filtered-out wide box left: nothing acceptable.
    strict = FaceFilter(min_score=0.97)
    with InsightFaceDetector(models_dir, face_filter=strict) as det:
        assert det.detect(frame) is None


def test_missing_models_raise_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"det_10g\.onnx and 2d106det\.onnx") as info:
        create_detector("insightface", models_dir=tmp_path)
    assert "lipsync weights download" in str(info.value)
    assert "mediapipe" in str(info.value)


def test_corrupt_model_raises_weights_error(models_dir: Path) -> None:
    (models_dir / "models" / "buffalo_l" / "det_10g.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(WeightsError, match="cannot load"):
        InsightFaceDetector(models_dir)


def test_model_folder_layouts(models_dir: Path, tmp_path: Path) -> None:
    det, lmk = find_face_models(models_dir)
    assert det.parent == lmk.parent == models_dir / "models" / "buffalo_l"
    # A folder holding the two files directly works too.
    assert find_face_models(models_dir / "models" / "buffalo_l") == (det, lmk)


def test_landmark_input_normalisation_rule(tmp_path: Path) -> None:
    # insightface: graphs that begin with their own Sub + Mul (or MXNet's bn_data) take raw pixels.
    for first, internal in (
        (("bn_data", "conv0"), True),
        (("Sub_0", "Mul_1"), True),
        (("conv0", "relu0"), False),
        (("Sub_0", "conv0"), False),
    ):
        path = tmp_path / f"{'_'.join(first)}.onnx"
        _constant_outputs_model(
            path, "data", [1, 3, 192, 192], {"fc1": np.zeros((1, 212))}, first_nodes=first
        )
        assert _normalises_internally(path) is internal


def test_106_point_mapping_reproduces_the_fixture_rounding() -> None:
    # landmarks.json: group means that InsightFace's integer landmarks give, and the points LatentSync uses.
    cases = {
        "frame1": (
            ((200, 201, 202, 202, 203), (90, 90, 90, 91, 91)),
            ((249, 249, 250, 250, 251), (92, 92, 92, 92, 93)),
            ((224, 224, 225, 225), (116, 116, 116, 117)),
            [[202, 90], [250, 92], [224, 116]],
        ),
        "frame2": (
            ((202, 203, 203, 204, 204), (91, 91, 91, 92, 92)),
            ((250, 251, 251, 251, 252), (92, 93, 93, 93, 93)),
            ((225, 225, 226, 226), (117, 117, 118, 118)),
            [[203, 91], [251, 93], [226, 118]],
        ),
    }
    rng = np.random.default_rng(3)
    for left, right, nose, expected in cases.values():
        lmk = rng.uniform(0, 500, (106, 2))
        for group, (xs, ys) in zip(INSIGHTFACE_POINT_GROUPS, (left, right, nose), strict=True):
            # Sub-pixel noise below 0.5 px: the reference rounds each landmark before averaging.
            lmk[list(group)] = np.stack([xs, ys], axis=1) + rng.uniform(-0.45, 0.45, (len(group), 2))
        np.testing.assert_array_equal(points3_from_landmarks(lmk, INSIGHTFACE_POINT_GROUPS), expected)


def test_face_filter_follows_the_reference_rule() -> None:
    f = FaceFilter()
    assert f.area((0.9, 0.0, 50.8, 80.9), 0.9) == 50 * 80  # truncated to whole pixels first
    assert f.area((0.0, 0.0, 49.99, 100.0), 0.9) is None  # narrower than 50
    assert f.area((0.0, 0.0, 60.0, 79.0), 0.9) is None  # lower than 80
    assert f.area((0.0, 0.0, 120.0, 80.0), 0.9) == 9600  # w/h = 1.5 is allowed
    assert f.area((0.0, 0.0, 121.0, 80.0), 0.9) is None
    assert f.area((0.0, 0.0, 50.0, 251.0), 0.9) is None  # w/h < 0.2
    assert f.area((0.0, 0.0, 100.0, 100.0), 0.4999) is None
    boxes = [((0, 0, 100, 100), 0.9, "a"), ((0, 0, 300, 100), 0.99, "wide"), ((0, 0, 100, 101), 0.6, "b"),
             ((5, 5, 105, 106), 0.7, "tie")]  # fmt: skip
    assert select_largest(boxes) == "b"
    assert select_largest([]) is None
