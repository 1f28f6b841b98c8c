"""Generate test media variants from the shared clips (written into a tmp dir by the tests themselves).

Every variant is built with PyAV, never ffmpeg, so the tests run where only the Python wheels exist:

- ``marked_clip``: frames of a shared clip, downscaled, with the *source frame index* painted into the
  top strip as a 12-bit block code (``paint_index`` / ``read_index``), written with explicit timestamps.
  Reading the code back from a decoded frame says exactly which input frame a 25-fps output tick picked,
  which is what the ffmpeg ``-r 25`` selection tests compare.
- ``cfr_pts`` / ``vfr_pts``: timestamp patterns (constant 30 fps, irregular phone-like VFR with a stall).
- broken inputs: ``truncated_copy``, ``audio_only_copy``, ``text_named_mp4``, ``empty_wav``,
  ``video_without_audio``; and ``encode_audio`` for mp3/m4a/ogg/flac/opus variants of a WAV.
"""

from __future__ import annotations

import wave
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BITS = 12
BLOCK = 16  # px; big flat blocks survive CRF-18 H.264 round trips untouched in value (> or < 128)


def paint_index(frame: np.ndarray, index: int) -> np.ndarray:
    """Return a copy of *frame* (H, W, 3 uint8, W >= BITS*BLOCK) with *index* as a block code on top."""
    if not 0 <= index < 2**BITS:
        raise ValueError(f"index {index} does not fit in {BITS} bits")
    out = frame.copy()
    for bit in range(BITS):
        value = 255 if (index >> bit) & 1 else 0
        out[0:BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = value
    return out


def read_index(frame: np.ndarray) -> int:
    """Inverse of :func:`paint_index`; reads block centres so chroma bleed at edges does not matter."""
    index = 0
    c = BLOCK // 2
    for bit in range(BITS):
        patch = frame[c - 3 : c + 3, bit * BLOCK + c - 3 : bit * BLOCK + c + 3]
        if float(patch.mean()) > 127.5:
            index |= 1 << bit
    return index


def source_frames(video: Path, count: int, width: int, height: int) -> Iterator[np.ndarray]:
    """The first *count* frames of a (shared) clip, scaled to width x height, as RGB arrays."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for produced, frame in enumerate(container.decode(stream), start=1):
            yield frame.to_ndarray(format="rgb24", width=width, height=height)
            if produced == count:
                return
    raise ValueError(f"{video} has fewer than {count} frames")


def cfr_pts(count: int, fps: int, time_base: Fraction) -> list[int]:
    """Timestamps of *count* frames at a constant *fps*, in *time_base* units (exact when tb divides)."""
    step = Fraction(1, fps) / time_base
    return [int(step * i) for i in range(count)]


def vfr_pts(count: int, time_base: Fraction) -> list[int]:
    """A phone-like variable frame rate: ~30 fps with jitter, a 60-fps burst and a 0.3 s stall.

    Deterministic (no RNG) so the expected selection is reproducible. Intervals in milliseconds.
    """
    pattern_ms = [33, 34, 33, 29, 38, 33, 33, 45, 21, 33]
    intervals: list[Fraction] = []
    for i in range(count - 1):
        if 20 <= i < 30:
            ms = 16 if i % 2 else 17  # 60 fps burst
        elif i == 40:
            ms = 300  # a stall: the camera dropped frames
        else:
            ms = pattern_ms[i % len(pattern_ms)]
        intervals.append(Fraction(ms, 1000))
    pts = [0]
    t = Fraction(0)
    for dt in intervals:
        t += dt
        pts.append(round(t / time_base))
    return pts


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    pts: Sequence[int],
    time_base: Fraction,
    *,
    codec: str = "libx264",
    rate: int = 30,
    audio: np.ndarray | None = None,
    audio_rate: int = 16000,
    rotation: int = 0,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB frames with the exact timestamps *pts* (in *time_base*) into *path*.

    *audio* (float32 mono) is muxed as AAC when given. *rotation* (counter-clockwise degrees, PyAV's
    convention) is stored as a display matrix, the way phones store portrait video.
    """
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        first = True
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=audio_rate)
            astream.layout = "mono"
        for frame_rgb, ts in zip(frames, pts, strict=True):
            if first:
                stream.height, stream.width = frame_rgb.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.time_base = time_base
                stream.codec_context.time_base = time_base
                stream.options = {"crf": "10", "preset": "ultrafast", **(options or {})}
                if rotation:
                    stream.set_display_rotation(rotation)
                first = False
            frame = av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")
            frame.pts = ts
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if astream is not None and audio is not None:
            _encode_audio_into(container, astream, audio, audio_rate)
    return path


def _encode_audio_into(container, astream, audio: np.ndarray, rate: int) -> None:  # type: ignore[no-untyped-def]
    samples = np.ascontiguousarray(audio, dtype=np.float32).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
    frame.sample_rate = rate
    frame.pts = 0
    for packet in astream.encode(frame):
        container.mux(packet)
    for packet in astream.encode():
        container.mux(packet)


def marked_clip(
    source: Path | Sequence[np.ndarray],
    dst: Path,
    pts: Sequence[int],
    time_base: Fraction,
    *,
    width: int = 216,
    height: int = 384,
    rate: int = 30,
    audio: np.ndarray | None = None,
    rotation: int = 0,
    options: dict[str, str] | None = None,
) -> Path:
    """Frames of a clip (a path, downscaled, or RGB frames) stamped with their index, with timestamps *pts*."""
    frames = (
        source_frames(source, len(pts), width, height) if isinstance(source, Path) else source[: len(pts)]
    )
    stamped = (paint_index(f, i) for i, f in enumerate(frames))
    return write_video(
        dst, stamped, pts, time_base, rate=rate, audio=audio, rotation=rotation, options=options
    )


def demuxed_timing(path: Path) -> tuple[list[Fraction], list[Fraction]]:
    """(start, duration) in seconds of every video frame as the container stores them, relative to the
    file's start time (what ffmpeg sees), in presentation order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        offset = Fraction(container.start_time or 0, 1_000_000)
        packets = sorted((p.pts, p.duration) for p in container.demux(stream) if p.size)
    return [p * tb - offset for p, _ in packets], [d * tb for _, d in packets]


def read_wav_mono(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as float32 in [-1, 1) (int16 / 32768) and its sample rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError("expected 16-bit PCM")
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        channels = w.getnchannels()
        rate = w.getframerate()
    data = raw.reshape(-1, channels).astype(np.float32).mean(axis=1) / 32768.0
    return data.astype(np.float32), rate


def encode_audio(src_wav: Path, dst: Path, codec: str, *, rate: int | None = None) -> Path:
    """Re-encode a WAV into another format (the container follows *dst*'s extension)."""
    samples, src_rate = read_wav_mono(src_wav)
    out_rate = rate or src_rate
    with av.open(str(dst), "w") as container:
        stream = container.add_stream(codec, rate=out_rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = src_rate
        frame.pts = 0
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=out_rate)
        for rframe in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(rframe):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return dst


def truncated_copy(src: Path, dst: Path, keep_fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep_fraction)])
    return dst


def audio_only_copy(src_video: Path, dst: Path) -> Path:
    """Remux the audio track of a video into its own file (stream copy, no re-encode)."""
    with av.open(str(src_video)) as inp, av.open(str(dst), "w") as out:
        ain = inp.streams.audio[0]
        aout = out.add_stream_from_template(ain)
        for packet in inp.demux(ain):
            if packet.dts is None:
                continue
            packet.stream = aout
            out.mux(packet)
    return dst


def video_without_audio(src_video: Path, dst: Path, frames: int = 10) -> Path:
    """Remux the first *frames* video packets of a clip, dropping its audio track."""
    with av.open(str(src_video)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        n = 0
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            out.mux(packet)
            n += 1
            if n >= frames:
                break
    return dst


def faststart_copy(src_video: Path, dst: Path) -> Path:
    """Remux a video with its index (moov) in front of the data, as web-optimised MP4s are."""
    with av.open(str(src_video)) as inp, av.open(str(dst), "w", options={"movflags": "+faststart"}) as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            out.mux(packet)
    return dst


def text_named_mp4(dst: Path) -> Path:
    dst.write_text("this is not a video, just text that someone named .mp4\n" * 20)
    return dst


def empty_wav(dst: Path, rate: int = 16000) -> Path:
    """A valid WAV header with zero samples."""
    with wave.open(str(dst), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"")
    return dst
