"""Parity of the alignment and paste-back with the reference ``align`` fixtures (CPU float32 run).

Bit-exact: matrices, smoothing bias, warps, aligned crops and restored frames all equal the fixtures.
That needs one MKL code path on every CPU (``MKL_CBWR``, pinned in tests/conftest.py): the matrices come
out of a float32 SVD and 3x3 inverses (LAPACK), and with MKL's CPU-specific kernels they differed from the
fixtures in the last bit or two (max 1.2e-4 on translations of ~870 px), which truncated pixels sitting
within ~1e-4 of an integer to the neighbouring grey level.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from lipsync.media.align import (
    AlignedFace,
    FaceAligner,
    crop_size,
    face_template,
    paste_back,
    similarity_transform,
)

FRAMES = ("frame1", "frame2")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    # These are small per-frame ops; on a shared 2-core runner extra intra-op threads only add contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def align_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "align"


@pytest.fixture(scope="module")
def tensors(align_dir: Path) -> dict[str, np.ndarray]:
    return load_file(str(align_dir / "align.safetensors"))


@pytest.fixture(scope="module")
def matrices(align_dir: Path) -> dict:
    return json.loads((align_dir / "matrices.json").read_text())


@pytest.fixture(scope="module")
def landmarks(align_dir: Path) -> dict[str, np.ndarray]:
    data = json.loads((align_dir / "landmarks.json").read_text())
    return {frame: np.array(data[frame]["landmarks3_rounded"], dtype=np.float64) for frame in FRAMES}


@pytest.fixture(scope="module")
def astronaut(align_dir: Path) -> np.ndarray:
    return _read_rgb(align_dir / "input_astronaut.png")


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _assert_same_image(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape and ours.dtype == ref.dtype == np.uint8
    diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() == 0, f"{np.count_nonzero(diff)} values differ, by up to {diff.max()} grey levels"


@pytest.mark.parametrize("resolution", [256, 512])
def test_template_and_crop_size(resolution: int, matrices: dict) -> None:
    ref = matrices[str(resolution)]
    np.testing.assert_allclose(face_template(resolution), np.array(ref["face_template"]), rtol=0, atol=1e-12)
    assert list(crop_size(resolution)) == ref["face_size_wh"]


@pytest.mark.parametrize("resolution", [256, 512])
def test_matrices_and_smoothed_bias(
    resolution: int, tensors: dict[str, np.ndarray], landmarks: dict[str, np.ndarray], astronaut: np.ndarray
) -> None:
    aligner = FaceAligner(resolution)
    for frame in FRAMES:
        aligned = aligner.align_points(astronaut, landmarks[frame])
        ref_m = tensors[f"R{resolution}.{frame}.M"]
        assert aligned.matrix.dtype == np.float32 and aligned.matrix.shape == (2, 3)
        np.testing.assert_array_equal(aligned.matrix, ref_m)
        np.testing.assert_array_equal(aligner.bias, tensors[f"R{resolution}.{frame}.p_bias_after"])
        crop_w, crop_h = crop_size(resolution)
        assert aligned.box == (0, 0, crop_w, crop_h)
        assert aligned.face_rgb.shape == (resolution, resolution, 3)


def test_frame2_depends_on_frame1_through_smoothing(
    tensors: dict[str, np.ndarray], landmarks: dict[str, np.ndarray], astronaut: np.ndarray
) -> None:
    aligner = FaceAligner(256)
    aligner.align_points(astronaut, landmarks["frame1"])
    aligner.reset()
    fresh = aligner.align_points(astronaut, landmarks["frame2"])
    # Without frame 1's bias the matrix differs from the smoothed reference by about 0.2 * bias change.
    assert np.abs(fresh.matrix - tensors["R256.frame2.M"]).max() > 1e-3
    unsmoothed, bias = similarity_transform(landmarks["frame2"], face_template(256), smooth=False)
    assert bias is None
    assert np.abs(fresh.matrix[:, 2] - unsmoothed[:, 2]).max() > 1e-3
    np.testing.assert_array_equal(fresh.matrix[:, :2], unsmoothed[:, :2])


@pytest.mark.parametrize("resolution", [256, 512])
def test_warp_and_aligned_crop(
    resolution: int,
    align_dir: Path,
    tensors: dict[str, np.ndarray],
    landmarks: dict[str, np.ndarray],
    astronaut: np.ndarray,
) -> None:
    aligner = FaceAligner(resolution)
    aligned = aligner.align_points(astronaut, landmarks["frame1"])
    ref_warp = _read_rgb(align_dir / f"R{resolution}_frame1_warp.png")
    _assert_same_image(aligner.warp(astronaut, aligned.matrix), ref_warp)
    _assert_same_image(aligned.face_rgb, _read_rgb(align_dir / f"R{resolution}_frame1_aligned.png"))
    # Warping with the fixture's own matrix isolates the warp itself.
    _assert_same_image(aligner.warp(astronaut, tensors[f"R{resolution}.frame1.M"]), ref_warp)


@pytest.mark.parametrize("resolution", [256, 512])
@pytest.mark.parametrize("full_frame", [False, True])
def test_restored_frame(
    resolution: int,
    full_frame: bool,
    align_dir: Path,
    tensors: dict[str, np.ndarray],
    matrices: dict,
    landmarks: dict[str, np.ndarray],
    astronaut: np.ndarray,
) -> None:
    aligned = FaceAligner(resolution).align_points(astronaut, landmarks["frame1"])
    aligned = AlignedFace(
        face_rgb=aligned.face_rgb,
        matrix=tensors[f"R{resolution}.frame1.M"],
        box=aligned.box,
        resolution=resolution,
        frame_hw=aligned.frame_hw,
    )
    modified = _read_rgb(align_dir / f"R{resolution}_frame1_modified.png")
    restored = paste_back(astronaut, modified, aligned, full_frame=full_frame)
    reference = _read_rgb(align_dir / f"R{resolution}_frame1_restored.png")
    _assert_same_image(restored, reference)
    changed = np.argwhere((restored != astronaut).any(axis=2))
    ref_stats = matrices[str(resolution)]
    assert len(changed) == ref_stats["restored_changed_pixels"]
    (y0, x0), (y1, x1) = changed.min(axis=0), changed.max(axis=0)
    assert [x0, y0, x1, y1] == ref_stats["restored_changed_bbox_xyxy"]


def test_paste_back_accepts_float_faces_like_uint8(
    align_dir: Path, landmarks: dict[str, np.ndarray], astronaut: np.ndarray
) -> None:
    aligned = FaceAligner(256).align_points(astronaut, landmarks["frame1"])
    modified = _read_rgb(align_dir / "R256_frame1_modified.png")
    from_uint8 = paste_back(astronaut, modified, aligned)
    pixels = (torch.from_numpy(modified).float() / 255.0 - 0.5) / 0.5
    np.testing.assert_array_equal(paste_back(astronaut, pixels, aligned), from_uint8)
    np.testing.assert_array_equal(paste_back(astronaut, pixels.permute(2, 0, 1).numpy(), aligned), from_uint8)
    # A batch of one, as a decoder hands it over, in float16: same frame up to float16 rounding.
    half = paste_back(astronaut, pixels.permute(2, 0, 1)[None].half(), aligned)
    assert np.abs(half.astype(np.int16) - from_uint8).max() <= 2
    frame = astronaut.copy()
    assert paste_back(frame, modified, aligned, inplace=True) is frame
    np.testing.assert_array_equal(frame, from_uint8)


def test_input_validation(astronaut: np.ndarray, landmarks: dict[str, np.ndarray]) -> None:
    aligner = FaceAligner(256)
    with pytest.raises(ValueError, match="points3"):
        aligner.align_points(astronaut, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="uint8 RGB frame"):
        aligner.align_points(astronaut.astype(np.float32), landmarks["frame1"])
    aligned = aligner.align_points(astronaut, landmarks["frame1"])
    with pytest.raises(ValueError, match="256x256"):
        paste_back(astronaut, np.zeros((512, 512, 3), np.uint8), aligned)
    with pytest.raises(ValueError, match="aligned on"):
        paste_back(astronaut[:500], aligned.face_rgb, aligned)
    with pytest.raises(ValueError, match="multiple of 8"):
        FaceAligner(250)
