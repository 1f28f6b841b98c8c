"""The mouth mask rebuilt from its geometry equals the reference mask.png and what load_fixed_mask returns."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lipsync.media.mask import MASK_SIZE, fixed_mask, mask_image


@pytest.fixture(scope="module")
def align_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "align"


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _black_runs(row: np.ndarray) -> list[tuple[int, int]]:
    black = np.flatnonzero(row == 0)
    runs: list[tuple[int, int]] = []
    for col in black:
        if runs and runs[-1][1] == col - 1:
            runs[-1] = (runs[-1][0], int(col))
        else:
            runs.append((int(col), int(col)))
    return runs


def test_mask_image_equals_reference_png(align_dir: Path) -> None:
    reference = _read_rgb(align_dir / "mask.png")
    ours = mask_image()
    assert ours.shape == (MASK_SIZE, MASK_SIZE, 3) and ours.dtype == np.uint8
    np.testing.assert_array_equal(ours, reference)


def test_mask_runs_match_run_table(align_dir: Path) -> None:
    lines = (align_dir / "mask_black_runs.tsv").read_text().splitlines()[1:]
    assert len(lines) == MASK_SIZE
    mask = mask_image()[:, :, 0]
    for line in lines:
        row_s, runs_s, count_s = line.split("\t")
        expected = [tuple(int(v) for v in run.split("-")) for run in runs_s.split(";") if run]
        row = int(row_s)
        assert _black_runs(mask[row]) == expected, f"row {row}"
        assert int((mask[row] == 0).sum()) == int(count_s)


def test_mask_geometry_facts() -> None:
    black = mask_image()[:, :, 0] == 0
    assert int(black.sum()) == 26_673
    rows, cols = np.nonzero(black)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (95, 242, 9, 247)
    # The white notch over the nose.
    assert not black[95:128, 78:178].any()


def test_fixed_mask_256_is_the_png_over_255(align_dir: Path) -> None:
    reference = _read_rgb(align_dir / "mask.png")[:, :, 0] / 255.0
    mask = fixed_mask(256)
    assert mask.dtype == np.float64 and mask.shape == (256, 256)
    np.testing.assert_array_equal(mask, reference)


def test_fixed_mask_512_equals_reference_loader(align_dir: Path) -> None:
    loaded = cv2.imread(str(align_dir / "mask_loaded_512.png"), cv2.IMREAD_UNCHANGED)
    mask = fixed_mask(512)
    assert mask.shape == (512, 512)
    # The PNG stores load_fixed_mask(512) * 255; LANCZOS4 on uint8 gives k/255 values, 136 of them.
    np.testing.assert_array_equal(mask * 255.0, loaded.astype(np.float64))
    assert len(np.unique(mask)) == 136


def test_fixed_mask_is_read_only() -> None:
    with pytest.raises(ValueError):
        fixed_mask(256)[0, 0] = 0.0
