"""The stages one chunk goes through, as plain functions over explicit inputs.

decode -> detect/align -> VAE encode -> sample -> VAE decode -> paste -> encode. The driver
(:mod:`lipsync.pipeline.driver`) calls them for each 16-frame chunk, inline or each on its own worker: none
of them reaches for shared state except through its arguments (:class:`FaceTrack` holds the alignment state
and must see the first pass over the video in order).

Numerics follow LatentSync's ``LipsyncPipeline`` (LATENTSYNC.md §2.6-2.9): pixel values ``(x/255 - 0.5)/0.5``,
the masked image ``pixels * mask`` (float64 mask, as the reference multiplies by its float64 mask tensor),
mask latents by nearest-neighbour downsampling, masked then reference latents drawn from one generator,
decode, ``decoded * (1 - mask) + pixels * mask`` in the model dtype, paste-back through the inverse warp.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from lipsync.engine.audio import AUDIO_FEAT_LENGTH, FEATURE_RATE
from lipsync.engine.sampler import SamplerConfig, StepCallback, sample_chunk
from lipsync.engine.unet import LatentSyncUNet
from lipsync.engine.vae import VAE
from lipsync.errors import EngineError, NoFaceDetected
from lipsync.media.align import AlignedFace, FaceAligner, paste_back
from lipsync.media.faces import FaceDetector
from lipsync.media.faces.selection import FaceSelection
from lipsync.pipeline.frames import Frame
from lipsync.pipeline.progress import StageTimer
from lipsync.pipeline.timeline import FPS

__all__ = [
    "AudioWindows",
    "ChunkLatents",
    "FaceTrack",
    "decode_faces",
    "denoise",
    "encode_latents",
    "engine_errors",
    "faces_to_pixels",
    "paste_faces",
]


# --- detect / align ------------------------------------------------------------------------------------------


class FaceTrack:
    """Detection and alignment for the source frames, with the per-frame transform remembered.

    The reference aligns every source frame once, in order (the nose-bias smoothing runs across consecutive
    frames), and reuses those transforms when ping-pong replays a frame. We do the same without keeping the
    crops: the first time a source frame is seen it is detected and aligned; later it is only re-warped with
    the stored matrix (bit-identical crop, no detector call). A lost face resets the smoothing, so it starts
    afresh when the face returns (the reference has no such case: it fails the whole job).
    """

    def __init__(
        self,
        detector: FaceDetector,
        aligner: FaceAligner,
        num_source_frames: int,
        *,
        on_no_face: str = "passthrough",
        timer: StageTimer | None = None,
        selection: FaceSelection | None = None,
    ) -> None:
        self.detector = detector
        #: The ``face`` option's choice (which face of each source frame); None: the largest (reference).
        self.selection = selection
        self.aligner = aligner
        self.on_no_face = on_no_face
        self.timer = timer or StageTimer()
        self._matrices = np.zeros((num_source_frames, 2, 3), dtype=np.float32)
        self._has_face = np.zeros(num_source_frames, dtype=bool)
        self._next_new = 0  # source frames 0.._next_new-1 have been seen (the first pass goes in order)
        self.faces_found = 0
        self.aligner.reset()

    @property
    def frames_seen(self) -> int:
        return self._next_new

    def align(self, frames: Sequence[Frame], source_indices: Sequence[int]) -> list[AlignedFace | None]:
        """Aligned faces for *frames* (the source frames at *source_indices*); None where there is no face."""
        out: list[AlignedFace | None] = []
        for frame, src in zip(frames, source_indices, strict=True):
            if src < self._next_new:
                out.append(self._rewarp(frame, src))
            elif src == self._next_new:
                out.append(self._first_visit(frame, src))
            else:  # pragma: no cover - the timeline never skips ahead on its first pass
                raise RuntimeError(f"source frame {src} reached before frame {self._next_new}")
        return out

    def _first_visit(self, frame: Frame, src: int) -> AlignedFace | None:
        self._next_new += 1
        with self.timer("detect"):
            face = (
                self.detector.detect(frame)
                if self.selection is None
                else self.selection.face(src, frame, self.detector)
            )
        if face is None:
            if self.on_no_face == "fail":
                raise NoFaceDetected(
                    f"No face was found in the video at frame {src} ({src / FPS:.2f} s). Use a video with a "
                    "clearly visible face in every frame, or on_no_face='passthrough' to copy such frames "
                    "unchanged.",
                    frame_index=src,
                    timestamp_s=src / FPS,
                    field="video",
                )
            self.aligner.reset()
            return None
        with self.timer("align"):
            aligned = self.aligner.align(frame, face)
        self._matrices[src] = aligned.matrix
        self._has_face[src] = True
        self.faces_found += 1
        return aligned

    def _rewarp(self, frame: Frame, src: int) -> AlignedFace | None:
        if not self._has_face[src]:
            return None
        with self.timer("align"):
            matrix = self._matrices[src]
            crop = self.aligner.warp(frame, matrix)
            r = self.aligner.resolution
            face = cv2.resize(crop, (r, r), interpolation=cv2.INTER_LANCZOS4)
            w, h = self.aligner.crop_wh
            return AlignedFace(
                face_rgb=face,
                matrix=matrix.copy(),
                box=(0, 0, w, h),
                resolution=r,
                frame_hw=(int(frame.shape[0]), int(frame.shape[1])),
            )


# --- audio ---------------------------------------------------------------------------------------------------


class AudioWindows:
    """The per-output-frame Whisper windows, cut on demand from the whole-file features.

    ``windows[indices]`` equals ``lipsync.engine.audio.frame_windows(features, num_frames)[indices]``
    (``(k, 10*S, C)``: rows ``2i-4 .. 2i+5`` clamped to the file, time-major / layer-minor), but nothing is
    materialised for the whole output: the full table is 5x the size of the features (77 kB per output frame
    for Whisper tiny), so a long video would hold it for nothing; a chunk needs 16 rows at a time.
    """

    def __init__(self, features: torch.Tensor, num_frames: int, fps: float = FPS) -> None:
        if features.ndim != 3 or features.shape[0] == 0:
            raise ValueError(f"expected features of shape (L > 0, layers, C), got {tuple(features.shape)}")
        self.features = features
        self.num_frames = int(num_frames)
        self.fps = fps
        self._offsets = torch.arange(
            -2 * AUDIO_FEAT_LENGTH[0], 2 * (AUDIO_FEAT_LENGTH[1] + 1), dtype=torch.int64
        )

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, index: int | slice | Sequence[int]) -> torch.Tensor:
        if isinstance(index, int):
            return self[[index]][0]
        frames = list(range(self.num_frames))[index] if isinstance(index, slice) else list(index)
        if any(not 0 <= i < self.num_frames for i in frames):
            raise IndexError(f"audio window index outside 0..{self.num_frames - 1}: {frames}")
        # int(i * 50 / fps) in float64, as the reference computes it in Python floats.
        centres = torch.floor(torch.tensor(frames, dtype=torch.float64) * FEATURE_RATE / self.fps).to(
            torch.int64
        )
        rows = (centres[:, None] + self._offsets[None, :]).clamp_(0, self.features.shape[0] - 1)
        return self.features[rows.to(self.features.device)].reshape(len(frames), -1, self.features.shape[-1])


# --- model stages --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkLatents:
    """One chunk's conditioning (batch 1) plus the pixels paste-back needs.

    ``pixel_values (f, 3, R, R)`` float32 in [-1, 1]; ``mask_latents (1, 1, f, h, w)``;
    ``masked_image_latents``/``ref_latents (1, 4, f, h, w)`` in the VAE's dtype and device.
    """

    pixel_values: torch.Tensor
    mask_latents: torch.Tensor
    masked_image_latents: torch.Tensor
    ref_latents: torch.Tensor

    @property
    def num_frames(self) -> int:
        return int(self.pixel_values.shape[0])


@contextmanager
def engine_errors(stage: str) -> Iterator[None]:
    """Turn torch failures (out of memory, kernel errors) into :class:`EngineError` naming the stage."""
    try:
        yield
    except EngineError:
        raise
    except RuntimeError as exc:  # torch.OutOfMemoryError is a RuntimeError too
        raise EngineError(f"the model failed during {stage}: {exc}") from exc


def faces_to_pixels(faces: Sequence[Frame], device: torch.device | None = None) -> torch.Tensor:
    """(R, R, 3) uint8 crops -> ``(f, 3, R, R)`` float32 in [-1, 1] on *device* (the reference's ``/255``,
    normalise). The crops cross to the device once, as uint8; the arithmetic runs there."""
    stacked = torch.from_numpy(np.stack([np.asarray(f) for f in faces]))
    if device is not None:
        stacked = stacked.to(device)
    return (stacked.permute(0, 3, 1, 2) / 255.0 - 0.5) / 0.5


def mask_tensor(mask: NDArray[Any]) -> torch.Tensor:
    """The (R, R) float64 keep-mask as ``(1, R, R)`` float64 (broadcasts over channels like the reference's)."""
    return torch.from_numpy(np.array(mask, dtype=np.float64))[None]  # a writable copy


def encode_latents(
    vae: VAE, pixel_values: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None
) -> ChunkLatents:
    """Masked-image latents, then reference latents (this order consumes the RNG as the reference does)."""
    f, _, r, _ = pixel_values.shape
    down = vae.downsample_factor
    with engine_errors("VAE encoding"):
        masked = pixel_values * mask  # float32 x float64 -> float64, as in the reference
        masked_latents = vae.encode(masked.to(vae.dtype), generator)
        ref_latents = vae.encode(pixel_values.to(vae.dtype), generator)
    mask_f = mask[0:1].expand(f, 1, r, r)
    mask_latents = F.interpolate(mask_f, size=(r // down, r // down))  # "nearest", the reference's default
    return ChunkLatents(
        pixel_values=pixel_values,
        mask_latents=_to_clip(mask_latents.to(device=vae.device, dtype=vae.dtype)),
        masked_image_latents=_to_clip(masked_latents),
        ref_latents=_to_clip(ref_latents),
    )


def _to_clip(x: torch.Tensor) -> torch.Tensor:
    """``(f, c, h, w)`` -> ``(1, c, f, h, w)``."""
    return x.permute(1, 0, 2, 3).unsqueeze(0)


def denoise(
    unet: LatentSyncUNet,
    latents: ChunkLatents,
    audio_embeds: torch.Tensor,
    init_noise: torch.Tensor,
    config: SamplerConfig,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """DDIM + CFG for one chunk; *init_noise* is the video's single ``(1, 4, 1, h, w)`` draw."""
    f = latents.num_frames
    with engine_errors("sampling"):
        return sample_chunk(
            unet,
            mask_latents=latents.mask_latents,
            masked_image_latents=latents.masked_image_latents,
            ref_latents=latents.ref_latents,
            audio_embeds=audio_embeds,
            init_latents=init_noise.repeat(1, 1, f, 1, 1),
            config=config,
            callback=callback,
        )


def decode_faces(vae: VAE, sampled: torch.Tensor, latents: ChunkLatents, mask: torch.Tensor) -> torch.Tensor:
    """Latents ``(1, 4, f, h, w)`` -> faces ``(f, 3, R, R)`` float32 on the CPU, in [-1, 1] (not clamped), with
    the pixels outside the mouth mask taken from the input crop (``paste_surrounding_pixels_back``)."""
    with engine_errors("VAE decoding"):
        decoded = vae.decode(sampled[0].permute(1, 0, 2, 3))
        keep_generated = (1 - mask).to(device=decoded.device, dtype=decoded.dtype)
        pixels = latents.pixel_values.to(device=decoded.device, dtype=decoded.dtype)
        combined = decoded * keep_generated + pixels * (1 - keep_generated)
    return combined.float().cpu()


def paste_faces(frames: Sequence[Frame], faces: torch.Tensor, aligned: Sequence[AlignedFace]) -> list[Frame]:
    """Inverse-warp each generated face into its frame (new arrays; the inputs are left untouched)."""
    return [paste_back(frame, face, a) for frame, face, a in zip(frames, faces, aligned, strict=True)]
