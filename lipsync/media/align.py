"""Face alignment and paste-back with the numerics of LatentSync's ``AlignRestore`` (3-point version).

Forward (:class:`FaceAligner`): three points (two eyebrow centres and a nose centre) are fitted to a fixed
template with a similarity transform; the frame is warped into a 210x280 crop (420x560 at resolution 512)
with bilinear sampling and grey (127) fill, truncated to uint8 and resized to RxR with OpenCV's Lanczos-4.
The translation is nudged by the nose offset, smoothed across frames (``0.2 * previous + 0.8 * current``),
which is why one aligner serves one video.

Backward (:func:`paste_back`): the generated face is resized back to the crop size (bicubic, antialiased),
warped into the frame with the inverse transform, and blended through the warped crop mask eroded by 2x2,
eroded again by ``2 * w_edge`` (``w_edge = int(sqrt(mask area)) // 20``) and feathered with a Gaussian blur.

Numerics follow the reference as the ``align`` fixtures captured it: float32 on the CPU. (On CUDA the
reference warps in float16, which moves up to a third of the crop pixels by a few grey levels; see
docs/faces.md.) The kornia 0.8 operations the reference calls (``warp_affine``, ``invert_affine_transform``,
``morphology.erosion``, ``gaussian_blur2d``) are re-expressed here with the same torch primitives in the same
order, because later kornia releases compute the sampling grid and matrix inverses differently and would
drift from the fixtures by a grey level here and there.

paste_back works on the face's bounding region instead of the whole frame (about 10x less work at 1080p).
Every step in it is either per pixel or a local filter whose inputs are zero near the region's edge, so the
result is bit-identical to the full-frame computation (``full_frame=True``); tests/media/test_align_roi.py
checks that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from lipsync.media.faces import Face

__all__ = [
    "AlignedFace",
    "FaceAligner",
    "crop_size",
    "face_template",
    "paste_back",
    "similarity_transform",
]

#: Template of the three points (left eyebrow, right eyebrow, nose) at resolution 256, before ``* 2.8``.
TEMPLATE_UNITS = ((17.0, 20.0), (58.0, 20.0), (37.5, 40.0))
#: Grey used outside the frame when warping into the crop (and outside the crop when warping back).
FILL_VALUE = 127.0
#: Weight of the previous frame's nose bias in the smoothing.
PREV_BIAS_WEIGHT = 0.2
#: kornia's "geodesic" border for erosion pads with this value so that the border never wins the minimum.
_EROSION_BORDER = 1e4


def _ratio(resolution: int) -> float:
    return resolution / 256 * 2.8


def crop_size(resolution: int) -> tuple[int, int]:
    """(width, height) of the warped crop: (210, 280) at 256, (420, 560) at 512."""
    ratio = _ratio(resolution)
    return int(75 * ratio), int(100 * ratio)


def face_template(resolution: int) -> np.ndarray:
    """The three template points, (3, 2) float64 in crop pixels."""
    return np.array(TEMPLATE_UNITS, dtype=np.float64) * _ratio(resolution)


def similarity_transform(
    points: np.ndarray, template: np.ndarray, prev_bias: torch.Tensor | None = None, *, smooth: bool = True
) -> tuple[np.ndarray, torch.Tensor | None]:
    """Fit ``points`` (3, 2) to ``template``; returns ``(M, bias)``, M (2, 3) float32 mapping frame -> crop.

    Float32 torch, as the reference: both point sets are centred and scaled by their *unbiased* std over
    all six numbers, rotation from the SVD of the 2x2 covariance (reflection fixed). With ``smooth`` the
    nose offset in those normalised units, blended with ``prev_bias``, is added to the translation and
    returned as the state for the next frame; without it nothing is added and the bias is None.
    """
    src = torch.tensor(np.asarray(points, dtype=np.float64), dtype=torch.float32)
    dst = torch.tensor(np.asarray(template, dtype=np.float64), dtype=torch.float32)
    src_mean, dst_mean = torch.mean(src, dim=0), torch.mean(dst, dim=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_std, dst_std = torch.std(src_c), torch.std(dst_c)
    src_n, dst_n = src_c / src_std, dst_c / dst_std
    u, _, vh = torch.linalg.svd(torch.matmul(src_n.T, dst_n))
    v = vh.mH.clone()
    rot = torch.matmul(v, u.T)
    if torch.det(rot) < 0:
        v[:, -1] = -v[:, -1]
        rot = torch.matmul(v, u.T)
    scale = dst_std / src_std
    shift = dst_mean.reshape(2, 1) - scale * torch.matmul(rot, src_mean.reshape(2, 1))
    matrix = torch.cat((scale * rot, shift), dim=1)
    if not smooth:
        return matrix.numpy().astype(np.float32), None
    bias = dst_n[2] - src_n[2]
    if prev_bias is not None:
        bias = prev_bias * PREV_BIAS_WEIGHT + bias * (1 - PREV_BIAS_WEIGHT)
    matrix[:, 2] = matrix[:, 2] + bias
    return matrix.numpy().astype(np.float32), bias


# --- warping (kornia 0.8 ``warp_affine`` arithmetic, align_corners=True) -----------------------------------


def _pixel_to_unit(height: int, width: int) -> torch.Tensor:
    """(1, 3, 3) map from pixel coordinates to [-1, 1]."""
    if height < 2 or width < 2:
        raise ValueError(f"images must be at least 2x2 pixels, got {height}x{width}")
    m = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0], [0.0, 0.0, 1.0]])
    m[0, 0] = m[0, 0] * 2.0 / (width - 1.0)
    m[1, 1] = m[1, 1] * 2.0 / (height - 1.0)
    return m.unsqueeze(0)


def _homography(matrix: torch.Tensor) -> torch.Tensor:
    """(1, 2, 3) affine -> (1, 3, 3)."""
    return torch.cat([matrix, torch.tensor([[[0.0, 0.0, 1.0]]], dtype=matrix.dtype)], dim=1)


def _sampling_theta(matrix: torch.Tensor, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> torch.Tensor:
    """(2, 3) map from normalised destination to normalised source coordinates for ``matrix`` (src -> dst)."""
    dst_from_src = _pixel_to_unit(*dst_hw) @ (_homography(matrix) @ torch.linalg.inv(_pixel_to_unit(*src_hw)))
    return torch.linalg.inv(dst_from_src)[0, :2]


def _grid(theta: torch.Tensor, dst_hw: tuple[int, int], rows: slice, cols: slice) -> torch.Tensor:
    """Sampling grid (1, h, w, 2) for the destination window ``rows x cols`` of a ``dst_hw`` image.

    Written as ``(a*x + b*y) + c`` per axis (what the reference's 3-term matrix product computes without
    fused multiply-adds), from the full-size linspace, so a window reproduces the full grid's values exactly.
    """
    height, width = dst_hw
    xs = torch.linspace(-1.0, 1.0, width)[cols]
    ys = torch.linspace(-1.0, 1.0, height)[rows]
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    u = theta[0, 0] * gx + theta[0, 1] * gy + theta[0, 2]
    v = theta[1, 0] * gx + theta[1, 1] * gy + theta[1, 2]
    return torch.stack([u, v], dim=-1).unsqueeze(0)


def _sample(src: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _source_window(grid: torch.Tensor, height: int, width: int) -> tuple[slice, slice]:
    """Rows/cols of a ``height x width`` source that bilinear sampling at ``grid`` can read (with a margin)."""
    g = grid[0].double()
    xs = (g[..., 0] + 1) / 2 * (width - 1)
    ys = (g[..., 1] + 1) / 2 * (height - 1)
    x0 = max(math.floor(float(xs.min())) - 2, 0)
    x1 = min(math.floor(float(xs.max())) + 3, width)
    y0 = max(math.floor(float(ys.min())) - 2, 0)
    y1 = min(math.floor(float(ys.max())) + 3, height)
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


# --- forward: frame -> aligned face ----------------------------------------------------------------------


@dataclass(frozen=True)
class AlignedFace:
    """One aligned face and what paste-back needs to put it back."""

    #: (R, R, 3) uint8 RGB, the crop after the Lanczos-4 resize.
    face_rgb: np.ndarray
    #: (2, 3) float32, frame pixels -> crop pixels.
    matrix: np.ndarray
    #: (x1, y1, x2, y2) of the crop, always (0, 0, crop_w, crop_h) as in the reference.
    box: tuple[int, int, int, int]
    resolution: int
    #: (height, width) of the frame it came from.
    frame_hw: tuple[int, int]

    @property
    def crop_size(self) -> tuple[int, int]:
        """(width, height) of the warped crop."""
        return self.box[2] - self.box[0], self.box[3] - self.box[1]


class FaceAligner:
    """Aligns faces frame by frame; holds the nose-bias smoothing state, so use one per video (or job).

    Not thread-safe: it keeps the smoothing state and a reusable float copy of the frame.
    """

    def __init__(self, resolution: int = 256, *, smooth: bool = True) -> None:
        if resolution <= 0 or resolution % 8:
            raise ValueError(f"resolution must be a positive multiple of 8, got {resolution}")
        self.resolution = resolution
        self.smooth = smooth
        self.template = face_template(resolution)
        self.crop_wh = crop_size(resolution)
        self._bias: torch.Tensor | None = None
        # Float copy of the frame, filled only where the warp reads: converting a whole 1080p frame
        # would cost more than the warp itself. Unread pixels never influence the result.
        self._frame_buf: torch.Tensor | None = None
        self._ones: torch.Tensor | None = None

    @property
    def bias(self) -> np.ndarray | None:
        """The smoothed nose bias after the last frame (normalised units), or None before the first."""
        return None if self._bias is None else self._bias.numpy().copy()

    def reset(self) -> None:
        """Forget the smoothing state (start of a new video)."""
        self._bias = None

    def align(self, frame_rgb: np.ndarray, face: Face) -> AlignedFace:
        """Align ``face`` (detected in ``frame_rgb``) to an RxR crop."""
        return self.align_points(frame_rgb, face.points3)

    def align_points(self, frame_rgb: np.ndarray, points3: np.ndarray) -> AlignedFace:
        """Align with explicit points: (3, 2) left eyebrow, right eyebrow, nose centre, as (x, y) pixels."""
        points = np.asarray(points3, dtype=np.float64)
        if points.shape != (3, 2):
            raise ValueError(f"points3 must have shape (3, 2), got {points.shape}")
        matrix, self._bias = similarity_transform(points, self.template, self._bias, smooth=self.smooth)
        crop = self.warp(frame_rgb, matrix)
        face = cv2.resize(crop, (self.resolution, self.resolution), interpolation=cv2.INTER_LANCZOS4)
        w, h = self.crop_wh
        return AlignedFace(
            face_rgb=face,
            matrix=matrix,
            box=(0, 0, w, h),
            resolution=self.resolution,
            frame_hw=(int(frame_rgb.shape[0]), int(frame_rgb.shape[1])),
        )

    def warp(self, frame_rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """The crop before resizing: (crop_h, crop_w, 3) uint8, bilinear, grey fill, truncated."""
        frame = _check_frame(frame_rgb)
        height, width = frame.shape[:2]
        w, h = self.crop_wh
        m = torch.from_numpy(np.asarray(matrix, dtype=np.float32)).reshape(1, 2, 3)
        theta = _sampling_theta(m, (height, width), (h, w))
        grid = _grid(theta, (h, w), slice(None), slice(None))
        src, ones = self._buffers(height, width)
        rows, cols = _source_window(grid, height, width)
        src[0, :, rows, cols] = torch.from_numpy(frame[rows, cols]).permute(2, 0, 1)
        coverage = _sample(ones, grid)
        warped = _sample(src, grid) + (1 - coverage) * FILL_VALUE
        return warped[0].permute(1, 2, 0).numpy().astype(np.uint8)

    def _buffers(self, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._frame_buf is None or self._frame_buf.shape[-2:] != (height, width):
            self._frame_buf = torch.zeros((1, 3, height, width), dtype=torch.float32)
            self._ones = torch.ones((1, 1, height, width), dtype=torch.float32)
        assert self._ones is not None
        return self._frame_buf, self._ones


def _check_frame(frame_rgb: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame_rgb)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.dtype} {frame.shape}")
    return frame


# --- backward: generated face -> frame --------------------------------------------------------------------


def _face_tensor(face: np.ndarray | torch.Tensor, resolution: int) -> torch.Tensor:
    """(1, 3, R, R) float32 in [-1, 1] from uint8 HWC, or float HWC/CHW already in [-1, 1]."""
    # The decoder's output may live on the GPU and in float16; paste-back runs in float32 on the CPU.
    t = torch.as_tensor(face).detach().cpu()
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3:
        raise ValueError(f"generated face must be (R, R, 3) or (3, R, R), got {tuple(t.shape)}")
    if t.shape[0] != 3 and t.shape[-1] == 3:
        t = t.permute(2, 0, 1)
    if tuple(t.shape) != (3, resolution, resolution):
        raise ValueError(f"generated face must be {resolution}x{resolution} RGB, got {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        # What the reference's image processor does to frames: x / 255, then (x - 0.5) / 0.5.
        t = (t.float() / 255.0 - 0.5) / 0.5
    elif t.is_floating_point():
        t = t.float()
    else:
        raise ValueError(f"generated face must be uint8 or float, got {t.dtype}")
    return t.unsqueeze(0)


def _erode_2x2(mask: torch.Tensor) -> torch.Tensor:
    """kornia ``erosion(mask, ones(2, 2))``: min over the pixel and its up/left/up-left neighbours."""
    padded = F.pad(mask, [1, 0, 1, 0], mode="constant", value=_EROSION_BORDER)
    return torch.minimum(
        torch.minimum(padded[..., :-1, :-1], padded[..., :-1, 1:]),
        torch.minimum(padded[..., 1:, :-1], padded[..., 1:, 1:]),
    )


def _gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    s = torch.tensor([[sigma]], dtype=torch.float32)
    x = torch.arange(size, dtype=torch.float32) - torch.tensor([[float(size // 2)]])
    gauss = torch.exp(-x.pow(2.0) / (2 * s.pow(2.0)))
    return gauss / gauss.sum(-1, keepdim=True)


def _gaussian_blur(x: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """kornia ``gaussian_blur2d(x, (size, size), (sigma, sigma))``: separable, reflect border, x then y."""
    kernel = _gaussian_kernel(size, sigma)
    front = (size - 1) // 2
    back = size - 1 - front
    x = F.conv2d(F.pad(x, [front, back, 0, 0], mode="reflect"), kernel.reshape(1, 1, 1, size))
    return F.conv2d(F.pad(x, [0, 0, front, back], mode="reflect"), kernel.reshape(1, 1, size, 1))


def _edge_width_from_area(area: torch.Tensor) -> int:
    """``w_edge`` exactly as the reference computes it from the float32 mask sum."""
    return int(area**0.5) // 20


def _edge_width(eroded: torch.Tensor, frame_hw: tuple[int, int], rows: slice, cols: slice) -> int:
    """``w_edge`` for an eroded mask given only inside the window ``rows x cols`` (zero elsewhere).

    The reference sums the full-frame float32 mask; summing a window groups the additions differently.
    The sum is only used through ``int(sqrt(area)) // 20``, so a float64 sum of the window decides it unless
    the area lies within a few units of a step; then the full-frame float32 sum is rebuilt exactly.
    """
    area64 = float(eroded.double().sum())
    lo = int(np.sqrt(np.float32(max(area64 - 4.0, 0.0)))) // 20
    hi = int(np.sqrt(np.float32(area64 + 4.0))) // 20
    if lo == hi:
        return lo
    full = torch.zeros((1, 1, *frame_hw), dtype=torch.float32)
    full[..., rows, cols] = eroded
    return _edge_width_from_area(torch.sum(full.float()))


def _mask_window(inv: np.ndarray, crop_wh: tuple[int, int], frame_hw: tuple[int, int]) -> tuple[slice, slice]:
    """Frame window holding every pixel the warped crop mask touches, plus a ring of zeros."""
    w, h = crop_wh
    height, width = frame_hw
    # Bilinear sampling of the crop is non-zero where the crop coordinate falls in (-1, w) x (-1, h);
    # the 2-pixel margin covers rounding in this float64 estimate of torch's float32 grid.
    corners = np.array([[-1.0, -1.0, 1.0], [w, -1.0, 1.0], [-1.0, h, 1.0], [w, h, 1.0]])
    xy = corners @ inv.astype(np.float64).T
    x0, y0 = (int(v) for v in np.floor(xy.min(axis=0)) - 3)
    x1, y1 = (int(v) for v in np.ceil(xy.max(axis=0)) + 4)
    x0, x1 = max(x0, 0), min(x1, width)
    y0, y1 = max(y0, 0), min(y1, height)
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


def _blur_in_window(
    center: np.ndarray, size: int, sigma: float, frame_hw: tuple[int, int], rows: slice, cols: slice
) -> torch.Tensor:
    """The full-frame blur of a mask that is zero outside ``rows x cols``, evaluated on that window.

    The window is widened with zeros by the blur radius (+2) where the frame allows, so the reflect padding
    only ever mirrors zeros the full frame also has there; at a frame edge the padding is the real one.
    """
    height, width = frame_hw
    reach = size // 2 + 2
    top, bottom = min(reach, rows.start), min(reach, height - rows.stop)
    left, right = min(reach, cols.start), min(reach, width - cols.stop)
    padded = np.pad(center, ((top, bottom), (left, right)))
    if min(padded.shape) <= size // 2:
        raise _WindowTooSmall
    soft = _gaussian_blur(torch.from_numpy(padded)[None, None], size, sigma)
    return soft[..., top : top + center.shape[0], left : left + center.shape[1]]


class _WindowTooSmall(Exception):
    """A sliver of a frame too small for the reflect padding of the blur; use the full frame."""


def paste_back(
    frame_rgb: np.ndarray,
    generated_face: np.ndarray | torch.Tensor,
    aligned: AlignedFace,
    *,
    full_frame: bool = False,
    inplace: bool = False,
) -> np.ndarray:
    """Put ``generated_face`` (at the aligned resolution) back into ``frame_rgb``.

    ``generated_face``: (R, R, 3) uint8 RGB, or float in [-1, 1] as (R, R, 3) / (3, R, R) (numpy or torch),
    which is what the reference hands over after decoding. ``frame_rgb`` is the frame ``aligned`` came from.
    Returns a new frame, or ``frame_rgb`` itself modified when ``inplace``. ``full_frame=True`` runs every
    step on the whole frame, as the reference does: slower, same result.
    """
    frame = _check_frame(frame_rgb)
    height, width = frame.shape[:2]
    if (height, width) != aligned.frame_hw:
        raise ValueError(f"frame is {height}x{width} but the face was aligned on {aligned.frame_hw}")
    out = frame if inplace else frame.copy()
    w, h = aligned.crop_size
    face = _face_tensor(generated_face, aligned.resolution)
    # Back to the crop size (torchvision's tensor resize: bicubic, antialias, no clamp for float).
    face = F.interpolate(face, size=(h, w), mode="bicubic", align_corners=False, antialias=True)

    matrix = torch.from_numpy(np.asarray(aligned.matrix, dtype=np.float32)).reshape(1, 2, 3)
    inv = torch.linalg.inv(_homography(matrix))[:, :2]
    theta = _sampling_theta(inv, (h, w), (height, width))
    if full_frame:
        rows, cols = slice(0, height), slice(0, width)
    else:
        rows, cols = _mask_window(inv[0].numpy(), (w, h), (height, width))
        if rows.stop == rows.start or cols.stop == cols.start:
            return out  # the crop lies outside the frame: nothing to paste

    grid = _grid(theta, (height, width), rows, cols)
    # Warping a ones-image gives both the paste mask (zero padding) and the fill weight of the face warp.
    coverage = _sample(torch.ones((1, 1, h, w), dtype=torch.float32), grid)
    inv_face = _sample(face, grid) + (1 - coverage) * FILL_VALUE
    inv_face = (inv_face / 2 + 0.5).clamp(0, 1) * 255
    eroded = _erode_2x2(coverage)
    pasted = eroded * inv_face

    if full_frame:
        w_edge = _edge_width_from_area(torch.sum(eroded.float()))
    else:
        w_edge = _edge_width(eroded, (height, width), rows, cols)
    size = 2 * w_edge + 1
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    center = cv2.erode(eroded[0, 0].numpy(), np.ones((2 * w_edge, 2 * w_edge), np.uint8))
    if full_frame:
        soft = _gaussian_blur(torch.from_numpy(center)[None, None], size, sigma)
    else:
        try:
            soft = _blur_in_window(center, size, sigma, (height, width), rows, cols)
        except _WindowTooSmall:
            return paste_back(frame, generated_face, aligned, full_frame=True, inplace=inplace)

    original = torch.from_numpy(frame[rows, cols]).permute(2, 0, 1).float().unsqueeze(0)
    blended = soft * pasted + (1 - soft) * original
    out[rows, cols] = blended[0].permute(1, 2, 0).to(torch.uint8).numpy()
    return out
