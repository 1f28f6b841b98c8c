"""The fixed mouth mask LatentSync inpaints through (``latentsync/utils/mask.png``), rebuilt from its geometry.

The mask is 256x256, white (1) = keep, black (0) = region to generate: the lower face (cheeks, mouth, chin)
with a notch over the nose. It is not made only of rectangles, so it is stored here as its black runs:

- rows 95-127: two black runs, cols 9-77 and 178-246 (the white notch between them keeps the nose);
- rows 128-242: one black run per row, ``_BOTTOM_STARTS[i]`` to ``_BOTTOM_ENDS[i]`` (inclusive) for
  row ``128 + i``, narrowing to a rounded chin.

tests/media/test_mask.py checks this against the reference PNG and its run table.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

__all__ = ["MASK_SIZE", "fixed_mask", "mask_image"]

MASK_SIZE = 256

_NOTCH_ROWS = (95, 127)
_NOTCH_RUNS = ((9, 77), (178, 246))
_BOTTOM_FIRST_ROW = 128
# fmt: off
_BOTTOM_STARTS = (
    9, 9, 9, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11,
    11, 11, 11, 11, 11, 11, 11, 12, 12, 12, 12, 12, 12, 12, 13, 13, 14, 14, 15, 15, 16, 16, 17, 18, 18, 19, 19,
    20, 21, 21, 22, 22, 23, 24, 25, 26, 26, 27, 28, 29, 30, 31, 32, 33, 34, 34, 35, 36, 37, 38, 39, 40, 42, 43,
    44, 45, 47, 48, 49, 51, 52, 54, 56, 57, 59, 60, 62, 64, 66, 68, 70, 72, 74, 76, 78, 80, 82, 85, 87, 90, 93,
    95, 99, 104, 108, 131,
)
_BOTTOM_ENDS = (
    247, 247, 247, 247, 247, 247, 247, 246, 246, 246, 246, 246, 246, 246, 246, 246, 246, 246, 246, 246, 246,
    245, 245, 245, 245, 245, 245, 245, 245, 245, 245, 245, 245, 245, 245, 244, 244, 244, 244, 244, 244, 244,
    243, 243, 242, 242, 241, 241, 240, 240, 239, 238, 238, 237, 236, 236, 235, 234, 234, 233, 232, 232, 231,
    230, 230, 229, 228, 228, 227, 226, 225, 224, 223, 223, 222, 221, 220, 219, 218, 217, 216, 215, 214, 213,
    212, 211, 210, 208, 207, 206, 204, 203, 202, 200, 199, 197, 196, 194, 192, 191, 189, 187, 185, 183, 180,
    178, 175, 173, 171, 168, 166, 164, 160, 156, 152,
)
# fmt: on


@lru_cache(maxsize=1)
def _mask_u8() -> np.ndarray:
    mask = np.full((MASK_SIZE, MASK_SIZE), 255, dtype=np.uint8)
    for row in range(_NOTCH_ROWS[0], _NOTCH_ROWS[1] + 1):
        for start, end in _NOTCH_RUNS:
            mask[row, start : end + 1] = 0
    for i, (start, end) in enumerate(zip(_BOTTOM_STARTS, _BOTTOM_ENDS, strict=True)):
        mask[_BOTTOM_FIRST_ROW + i, start : end + 1] = 0
    mask.setflags(write=False)
    return mask


def mask_image() -> np.ndarray:
    """mask.png as the reference reads it: (256, 256, 3) uint8 RGB, values 0 and 255, channels equal."""
    return np.repeat(_mask_u8()[:, :, None], 3, axis=2)


@lru_cache(maxsize=4)
def _fixed_mask(resolution: int) -> np.ndarray:
    # The reference resizes the 3-channel uint8 image (LANCZOS4 saturates to 0..255, hence soft and
    # non-binary edges at 512) and divides by 255 in float64; the channels stay equal.
    resized = cv2.resize(mask_image(), (resolution, resolution), interpolation=cv2.INTER_LANCZOS4)
    mask = resized[:, :, 0] / 255.0
    mask.setflags(write=False)
    return mask


def fixed_mask(resolution: int) -> np.ndarray:
    """The mask at ``resolution`` as ``load_fixed_mask`` returns it: (R, R) float64 in [0, 1], 1 = keep.

    The reference keeps three equal channels (CHW); use ``mask[None]`` or broadcast as needed. The array
    is read-only and shared between calls.
    """
    if resolution <= 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    return _fixed_mask(int(resolution))
