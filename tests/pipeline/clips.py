"""Short test inputs cut from the real clips in ../shared/media, and the checks the end-to-end tests share.

Full 1080x1920 frames are expensive on a 2-core CI machine, so most tests use a 480x640 window around the
speaker's face at full scale (a realistic face size for the detector, a fraction of the pixels). Everything
is written with PyAV, in the test's tmp dir.
"""

from __future__ import annotations

import wave
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from lipsync.media.align import FaceAligner
from lipsync.media.faces import FaceDetector
from tests.media.media_factory import paint_index


@dataclass(frozen=True)
class Speaker:
    video: str
    audio: str
    #: (x, y) of a 480x640 window holding the face, and of one holding no face (body / background).
    face_window: tuple[int, int]
    empty_window: tuple[int, int]


SPEAKERS = {
    "demo1": Speaker("demo1_video.mp4", "demo1_audio.wav", (366, 413), (300, 1280)),
    "demo2": Speaker("demo2_video.mp4", "demo2_audio.wav", (321, 157), (300, 1200)),
}
WINDOW = (480, 640)  # width, height


def decode_frames(path: Path, count: int | None = None, start: int = 0) -> Iterator[np.ndarray]:
    """RGB frames of *path* in decode order (the shared clips are constant 25 fps)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i < start:
                continue
            if count is not None and i >= start + count:
                return
            yield frame.to_ndarray(format="rgb24")


def write_clip(
    path: Path,
    frames: Iterable[np.ndarray],
    *,
    fps: int = 25,
    audio: np.ndarray | None = None,
    crf: int = 12,
) -> Path:
    """H.264 MP4 at a constant *fps* (exact timestamps), optional AAC track (16 kHz mono float32)."""
    tb = Fraction(1, fps * 512)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=16000)
            astream.layout = "mono"
        first = True
        for i, rgb in enumerate(frames):
            if first:
                stream.height, stream.width = rgb.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.time_base = tb
                stream.codec_context.time_base = tb
                stream.options = {"crf": str(crf), "preset": "veryfast"}
                first = False
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i * 512
            frame.time_base = tb
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if astream is not None and audio is not None:
            af = av.AudioFrame.from_ndarray(
                audio.astype(np.float32).reshape(1, -1), format="flt", layout="mono"
            )
            af.sample_rate = 16000
            af.pts = 0
            for packet in [*astream.encode(af), *astream.encode()]:
                container.mux(packet)
    return path


def face_clip(
    media_dir: Path,
    dst: Path,
    *,
    speaker: str = "demo1",
    frames: int = 20,
    start: int = 0,
    no_face: Sequence[int] = (),
    fps: int = 25,
    full_frame: bool = False,
    marked: bool = False,
) -> Path:
    """A short clip of the speaker: a 480x640 window around the face (or the full 1080x1920 frame).

    Frames listed in *no_face* show a face-free window of the same video instead. With ``fps=30`` the
    25-fps source is resampled to 30 fps by nearest-earlier frame selection (a genuine 30-fps file).
    ``marked`` paints each written frame's index into the top strip (``media_factory.read_index`` reads it
    back), so a test can tell which input frame an output frame shows.
    """
    s = SPEAKERS[speaker]
    src = list(decode_frames(media_dir / s.video, count=frames + 1, start=start))
    w, h = WINDOW
    hidden = set(no_face)

    def window(frame: np.ndarray, xy: tuple[int, int]) -> np.ndarray:
        if full_frame:
            return frame
        x, y = xy
        return frame[y : y + h, x : x + w]

    def picked() -> Iterator[np.ndarray]:
        n_out = frames if fps == 25 else int(frames * fps / 25)
        for j in range(n_out):
            i = min(int(j * 25 / fps), len(src) - 1)
            if i in hidden:
                frame = window(src[i], s.empty_window) if not full_frame else _blank_face(src[i])
            else:
                frame = window(src[i], s.face_window)
            yield paint_index(frame, j) if marked else frame

    return write_clip(dst, picked(), fps=fps)


def _blank_face(frame: np.ndarray) -> np.ndarray:
    # A full frame without a face: the lower (face-free) half mirrored over the upper one.
    out = frame.copy()
    half = frame.shape[0] // 2
    out[:half] = frame[half : 2 * half][::-1]
    return out


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == 16000 and w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(samples, -1, 32767 / 32768) * 32768).astype("<i2").tobytes())
    return path


def speech(
    media_dir: Path, dst: Path, seconds: float, *, speaker: str = "demo1", start_s: float = 0.5
) -> Path:
    """*seconds* of the speaker's speech track as a 16-bit 16 kHz WAV."""
    samples = read_wav(media_dir / SPEAKERS[speaker].audio)
    a = int(start_s * 16000)
    return write_wav(dst, samples[a : a + round(seconds * 16000)])


# --- checks ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputInfo:
    width: int
    height: int
    fps: float
    frames: int
    video_codec: str
    audio_codec: str | None
    audio_duration_s: float


def output_info(path: Path) -> OutputInfo:
    """Decode the whole output (proving it plays) without keeping frames, and report its stream facts."""
    with av.open(str(path)) as container:
        v = container.streams.video[0]
        v.thread_type = "AUTO"
        frames = sum(1 for _ in container.decode(v))
        width, height = v.codec_context.width, v.codec_context.height
        fps, codec = float(v.average_rate or 0), v.codec_context.name
        audio_codec = container.streams.audio[0].codec_context.name if container.streams.audio else None
    samples = rate = 0
    if audio_codec is not None:
        with av.open(str(path)) as container:
            for af in container.decode(container.streams.audio[0]):
                samples += af.samples
                rate = af.sample_rate
    return OutputInfo(
        width=width,
        height=height,
        fps=fps,
        frames=frames,
        video_codec=codec,
        audio_codec=audio_codec,
        audio_duration_s=samples / rate if rate else 0.0,
    )


def inspect_output(path: Path) -> tuple[OutputInfo, list[np.ndarray]]:
    """Stream facts and all decoded frames (short outputs only: frames are kept in memory)."""
    return output_info(path), list(decode_frames(path))


def face_region(
    frame: np.ndarray, detector: FaceDetector, resolution: int, margin: int = 24
) -> np.ndarray | None:
    """Boolean mask of the area paste-back may touch: the aligned crop's box in the frame, plus a margin
    (for the nose-bias smoothing, which shifts the crop by a few pixels between frames). None: no face."""
    face = detector.detect(frame)
    if face is None:
        return None
    aligned = FaceAligner(resolution, smooth=False).align(frame, face)
    w, h = aligned.crop_size
    full = np.vstack([aligned.matrix.astype(np.float64), [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2]
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], dtype=np.float64) @ inv.T
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + margin
    mask = np.zeros(frame.shape[:2], dtype=bool)
    mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
    return mask


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    diff = a.astype(np.float64) - b.astype(np.float64)
    if where is not None:
        diff = diff[where]
    mse = float(np.mean(diff**2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
