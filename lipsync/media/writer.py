"""Write the result once: H.264 (libx264, CRF 18, yuv420p) at 25 fps with the audio muxed as AAC.

The reference writes a CRF-13 temporary file with imageio, then re-encodes it at CRF 18 while muxing
a 16-bit WAV (two lossy generations, four files). Here frames go straight from RGB to the final MP4:

* colour: RGB -> yuv420p with the BT.601 matrix and no colour tags, exactly what ffmpeg does for
  imageio's rgb24 pipe. Frames decoded by :mod:`lipsync.media.video` (also BT.601) therefore round
  trip to the source's own YUV values outside the face.
* audio: the float32 16 kHz mono samples are encoded as AAC-LC at 16 kHz mono with FFmpeg's AAC
  encoder in the reference's ``-c:a aac -q:a 0`` mode (the same packets the ffmpeg CLI writes from the
  reference's 16-bit WAV), interleaved with the video as it is written.
* duration follows the audio: frames past ``ceil(len(audio) / sample_rate * fps)`` are dropped, and if
  fewer frames arrive the last one is held to that length.
* odd sizes: yuv420p needs even width and height. An odd side is padded by one pixel that repeats the
  last row/column (nothing of the picture is lost); ``encoded_width``/``encoded_height`` say so.
* the file appears atomically: it is written next to the target and renamed on a successful
  :meth:`VideoWriter.close`; a failed or aborted write leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from lipsync.media.container import PathLike

__all__ = ["DEFAULT_CRF", "DEFAULT_PRESET", "VideoWriter"]

DEFAULT_CRF = 18
#: libx264's own default, as in the reference's ffmpeg command. Faster presets trade file size
#: (not quality: CRF fixes that) for speed; see docs/media.md for measured numbers.
DEFAULT_PRESET = "medium"


class VideoWriter:
    """Context manager writing RGB uint8 frames (H, W, 3) and optional audio to an MP4 file.

    ::

        with VideoWriter("out.mp4", 1080, 1920, audio=samples_16k) as w:
            for frame in frames:
                w.write(frame)
    """

    def __init__(
        self,
        path: PathLike,
        width: int,
        height: int,
        *,
        fps: int = 25,
        crf: int = DEFAULT_CRF,
        audio: NDArray[np.float32] | None = None,
        sample_rate: int = 16000,
        preset: str = DEFAULT_PRESET,
        threads: int = 0,
        faststart: bool = True,
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"width and height must be positive, got {width}x{height}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be within 0..51, got {crf}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(os.fspath(path))
        self.width, self.height, self.fps = width, height, fps
        self.encoded_width = width + (width % 2)
        self.encoded_height = height + (height % 2)
        self.frames_written = 0
        self.frames_dropped = 0
        self.frames_held = 0
        self._closed = False

        self._audio: NDArray[np.float32] | None = None
        self._audio_pos = 0
        self._sample_rate = sample_rate
        self.max_frames: int | None = None
        if audio is not None:
            samples = np.asarray(audio, dtype=np.float32)
            if samples.ndim != 1:
                raise ValueError(f"audio must be mono (1-D), got shape {samples.shape}")
            if samples.size == 0:
                raise ValueError("audio is empty")
            self._audio = np.ascontiguousarray(samples)
            self.max_frames = math.ceil(samples.size * fps / sample_rate)

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".partial.mp4", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        options = {"movflags": "+faststart"} if faststart else {}
        try:
            self._container: Any = av.open(str(self._tmp), mode="w", format="mp4", options=options)
            self._video: Any = self._container.add_stream("libx264", rate=fps)
            self._video.width = self.encoded_width
            self._video.height = self.encoded_height
            self._video.pix_fmt = "yuv420p"
            self._video.options = {"crf": str(crf), "preset": preset}
            self._video.codec_context.thread_count = threads
            self._astream: Any = None
            if self._audio is not None:
                self._astream = self._container.add_stream("aac", rate=sample_rate)
                self._astream.layout = "mono"
                # the reference's "-c:a aac -q:a 0": FFmpeg's AAC encoder in its default VBR quality
                # (about 58 kb/s for 16 kHz speech); packets match the ffmpeg CLI's
                self._astream.codec_context.qscale = True
                self._astream.codec_context.global_quality = 0
        except BaseException:
            self.abort()
            raise
        self._last: av.VideoFrame | None = None

    # -- context manager --------------------------------------------------------------------------

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- writing ----------------------------------------------------------------------------------

    def write(self, frame_rgb: NDArray[np.uint8]) -> None:
        """Encode one RGB uint8 frame of the size given to the constructor."""
        if self._closed:
            raise RuntimeError("write() after close()")
        if frame_rgb.shape != (self.height, self.width, 3) or frame_rgb.dtype != np.uint8:
            raise ValueError(
                f"expected a ({self.height}, {self.width}, 3) uint8 frame, got {frame_rgb.shape} {frame_rgb.dtype}"
            )
        if self.max_frames is not None and self.frames_written >= self.max_frames:
            self.frames_dropped += 1  # past the end of the audio: the output follows the audio
            return
        image = frame_rgb
        if (self.encoded_width, self.encoded_height) != (self.width, self.height):
            pad = ((0, self.encoded_height - self.height), (0, self.encoded_width - self.width), (0, 0))
            image = np.pad(frame_rgb, pad, mode="edge")
        rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        # BT.601 + bicubic chroma filter: bit-identical to ffmpeg's own rgb24 -> yuv420p conversion
        yuv = rgb.reformat(format="yuv420p", dst_colorspace="ITU601", interpolation="BICUBIC", threads=0)
        self._encode_video(yuv)
        self._last = yuv

    def _encode_video(self, frame: av.VideoFrame) -> None:
        frame.pts = self.frames_written
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1
        self._encode_audio_until(math.ceil(self.frames_written * self._sample_rate / self.fps))

    def _encode_audio_until(self, sample: int | None) -> None:
        """Feed audio up to *sample* (None: all of it) so the muxer can interleave as we go."""
        if self._audio is None:
            return
        end = self._audio.size if sample is None else min(sample, self._audio.size)
        if end <= self._audio_pos:
            return
        chunk = self._audio[self._audio_pos : end].reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
        frame.sample_rate = self._sample_rate
        frame.pts = self._audio_pos
        for packet in self._astream.encode(frame):
            self._container.mux(packet)
        self._audio_pos = end

    def close(self) -> None:
        """Finish the file: hold the last frame up to the audio's length, flush, mux, rename."""
        if self._closed:
            return
        try:
            if self.frames_written == 0:
                raise ValueError(f"no frames were written to {self.path.name}")
            if self.max_frames is not None and self._last is not None:
                while self.frames_written < self.max_frames:
                    held = av.VideoFrame.from_ndarray(self._last.to_ndarray(), format="yuv420p")
                    self._encode_video(held)
                    self.frames_held += 1
            for packet in self._video.encode(None):
                self._container.mux(packet)
            if self._astream is not None:
                self._encode_audio_until(None)
                for packet in self._astream.encode(None):
                    self._container.mux(packet)
            self._container.close()
            self._closed = True
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop without producing the output file (removes the partial file)."""
        self._closed = True
        container = getattr(self, "_container", None)
        if container is not None:
            with contextlib.suppress(Exception):  # best effort: we are already failing
                container.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink(missing_ok=True)
