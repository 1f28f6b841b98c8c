"""Display orientation from a frame's display matrix, applied the way ffmpeg's ``-autorotate`` does.

Phones store portrait video as landscape pictures plus a display matrix. The reference's
``ffmpeg -r 25`` re-encode applies it (autorotate is on by default), so the frames it lip-syncs are
upright; we do the same with NumPy views (``np.rot90`` / slicing) on the decoded RGB array.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

__all__ = ["Orientation", "display_matrix", "orientation_from_matrix"]

Image = NDArray[np.uint8]
Transform = Callable[[Image], Image]


class Orientation:
    """How to turn a decoded (coded-orientation) picture upright; ``swaps_axes`` for 90/270 degrees."""

    def __init__(self, name: str, transform: Transform, swaps_axes: bool, rotation: int) -> None:
        self.name = name
        self.transform = transform
        self.swaps_axes = swaps_axes
        #: counter-clockwise degrees (0, 90, 180, 270), PyAV's ``VideoFrame.rotation`` convention
        self.rotation = rotation

    def __call__(self, image: Image) -> Image:
        return self.transform(image)

    def __repr__(self) -> str:
        return f"Orientation({self.name!r})"


def _identity(a: Image) -> Image:
    return a


IDENTITY = Orientation("identity", _identity, False, 0)


def display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    """The 3x3 fixed-point display matrix attached to a decoded frame, if any."""
    side_data: Any = frame.side_data
    for entry in list(side_data):
        # PyAV <= 18.1.0 iterates the SideData items; 18.1.1 made the container a Mapping of Type -> SideData.
        item = entry if hasattr(entry, "type") else side_data[entry]
        if str(item.type).endswith("DISPLAYMATRIX"):
            data = bytes(item)
            if len(data) >= 36:
                return struct.unpack("<9i", data[:36])
    return None


def _rotation_ccw(m: tuple[int, ...]) -> float:
    """``av_display_rotation_get``: counter-clockwise rotation in degrees (NaN if degenerate)."""
    s0 = math.hypot(m[0] / 65536.0, m[3] / 65536.0)
    s1 = math.hypot(m[1] / 65536.0, m[4] / 65536.0)
    if s0 == 0.0 or s1 == 0.0:
        return math.nan
    return -math.degrees(math.atan2((m[1] / 65536.0) / s1, (m[0] / 65536.0) / s0))


def orientation_from_matrix(m: tuple[int, ...] | None) -> Orientation:
    """Mirror ffmpeg's autorotate filter choice (``fftools``: transpose / hflip / vflip)."""
    if m is None:
        return IDENTITY
    rot = _rotation_ccw(m)
    if math.isnan(rot):
        return IDENTITY
    theta = -round(rot)  # clockwise degrees, as ffmpeg's get_rotation()
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    ccw = round(-theta) % 360
    if abs(theta - 90) < 1.0:
        if m[3] > 0:  # transpose=cclock_flip: a plain transpose
            return Orientation("transpose", lambda a: a.transpose(1, 0, 2), True, ccw)
        return Orientation("rotate_cw", lambda a: np.rot90(a, -1), True, ccw)
    if abs(theta - 180) < 1.0:
        flip_h, flip_v = m[0] < 0, m[4] < 0
        if flip_h and flip_v:
            return Orientation("rotate_180", lambda a: a[::-1, ::-1], False, 180)
        if flip_h:
            return Orientation("hflip", lambda a: a[:, ::-1], False, ccw)
        if flip_v:
            return Orientation("vflip", lambda a: a[::-1], False, ccw)
        return IDENTITY
    if abs(theta - 270) < 1.0:
        if m[3] < 0:  # transpose=clock_flip: the anti-transpose
            return Orientation("antitranspose", lambda a: a[::-1, ::-1].transpose(1, 0, 2), True, ccw)
        return Orientation("rotate_ccw", lambda a: np.rot90(a, 1), True, ccw)
    if abs(theta) < 1.0 and m[4] < 0:
        return Orientation("vflip", lambda a: a[::-1], False, ccw)
    # Arbitrary angles (ffmpeg would use its 'rotate' filter with black corners) are left as coded.
    return IDENTITY
