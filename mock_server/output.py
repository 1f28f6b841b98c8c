"""The output video a completed mock job serves: a real, playable MP4 (H.264 + AAC) made here with PyAV.

No binary blob is checked in: the file is encoded on first use (a few tens of milliseconds) and cached in
memory for the life of the process. It is small (64x64, 10 frames at 25 fps, 0.4 s of a 440 Hz tone) so a
client's download-and-probe path runs for real in CI without costing time.
"""

from __future__ import annotations

import functools
import io
from fractions import Fraction

__all__ = ["SAMPLE_AUDIO_RATE", "SAMPLE_FPS", "SAMPLE_FRAMES", "SAMPLE_SIZE", "sample_mp4"]

SAMPLE_SIZE = 64
SAMPLE_FPS = 25
SAMPLE_FRAMES = 10
SAMPLE_AUDIO_RATE = 16_000


@functools.cache
def sample_mp4() -> bytes:
    """The MP4 bytes (encoded once per process)."""
    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=SAMPLE_FPS)
        video.width = video.height = SAMPLE_SIZE
        video.pix_fmt = "yuv420p"
        # Deterministic, single-threaded x264 so the bytes are identical from run to run and machine to machine.
        video.options = {"preset": "ultrafast", "tune": "zerolatency", "threads": "1"}
        video.codec_context.thread_count = 1
        audio = container.add_stream("aac", rate=SAMPLE_AUDIO_RATE)
        audio.layout = "mono"

        ramp = np.linspace(0, 255, SAMPLE_SIZE, dtype=np.uint8)
        for i in range(SAMPLE_FRAMES):
            # A diagonal gradient that scrolls, so consecutive frames differ (a real, non-trivial video).
            img = (ramp[None, :] // 2 + ramp[:, None] // 2 + i * 12).astype(np.uint8)
            rgb = np.stack([img, np.roll(img, i, axis=1), 255 - img], axis=-1)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, SAMPLE_FPS)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)

        n = SAMPLE_AUDIO_RATE * SAMPLE_FRAMES // SAMPLE_FPS
        t = np.arange(n, dtype=np.float32) / SAMPLE_AUDIO_RATE
        tone = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
        chunk = 1024  # AAC frame size
        for start in range(0, n, chunk):
            samples = tone[start : start + chunk]
            aframe = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
            aframe.sample_rate = SAMPLE_AUDIO_RATE
            aframe.pts = start
            aframe.time_base = Fraction(1, SAMPLE_AUDIO_RATE)
            for packet in audio.encode(aframe):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return buf.getvalue()
