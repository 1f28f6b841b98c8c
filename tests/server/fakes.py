"""Fakes at the server's edges: engines, a fetcher, a webhook recorder, and small real media made with PyAV.

Engine factories are module-level (picklable) so ``ProcessRunner`` can send them to worker processes.
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from contracts import RunOptions
from lipsync.errors import MediaFetchError, NoFaceDetected
from lipsync.server.interfaces import FetchResult


def make_mp4(frames: int = 10, size: int = 64, *, with_audio: bool = True) -> bytes:
    """A small, valid MP4 (MPEG-4 Part 2 video at 25 fps, AAC audio) made in memory."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        video = out.add_stream("mpeg4", rate=25)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        audio = out.add_stream("aac", rate=16000) if with_audio else None
        for i in range(frames):
            img = np.full((size, size, 3), (i * 20) % 255, dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if audio is not None:
            samples = int(16000 * frames / 25)
            tone = (0.1 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 16000)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = 0
            frame.time_base = Fraction(1, 16000)
            for packet in audio.encode(frame):
                out.mux(packet)
            for packet in audio.encode():
                out.mux(packet)
    return buf.getvalue()


def make_wav(seconds: float = 0.4) -> bytes:
    """A small PCM WAV (16 kHz mono)."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=16000)
        n = int(16000 * seconds)
        pcm = (3000 * np.sin(np.arange(n) * 2 * np.pi * 220 / 16000)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


_OUTPUT = make_mp4(frames=5, size=32)


@dataclass(frozen=True)
class FakeResult:
    """The part of ``lipsync.RunResult`` the server reads: which face was synced (``RunResult.face``)."""

    face: Any


class FakeEngine:
    """Writes a real small MP4, after reporting progress; optionally waits on a gate or fails.

    ``gate``: a threading.Event the run waits for (calling progress meanwhile, as the pipeline does per step).
    ``error``: raised instead of writing. ``ignore_cancel``: swallow nothing but never call progress.
    ``face``: returned as the result's face report (``RunResult.face``); without it the run returns None.
    """

    def __init__(
        self,
        *,
        gate: threading.Event | None = None,
        error: Exception | None = None,
        steps: int = 3,
        face: Any = None,
    ) -> None:
        self.gate = gate
        self.error = error
        self.steps = steps
        self.face = face
        self.calls: list[dict[str, Any]] = []
        self.started = threading.Event()

    def run(
        self,
        video_path: str | Path,
        audio_path: str | Path,
        out_path: str | Path,
        options: RunOptions,
        progress: Any = None,
    ) -> FakeResult | None:
        assert Path(video_path).is_file() and Path(audio_path).is_file()
        self.calls.append({"video": Path(video_path).read_bytes()[:16], **options.model_dump()})
        self.started.set()
        for step in range(self.steps):
            if progress is not None:
                progress(step / self.steps)
        if self.gate is not None:
            while not self.gate.wait(0.01):
                if progress is not None:
                    progress(0.5)
        if self.error is not None:
            raise self.error
        Path(out_path).write_bytes(_OUTPUT)
        return None if self.face is None else FakeResult(self.face)


# ---- picklable factories for worker processes -----------------------------------------------------------


def ok_engine(device: str) -> FakeEngine:
    return FakeEngine()


class _TimedEngine(FakeEngine):
    """Takes *seconds* per job (reporting progress), like a model would; for poll-heavy load tests."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def run(
        self, video_path: Any, audio_path: Any, out_path: Any, options: RunOptions, progress: Any = None
    ) -> FakeResult | None:
        deadline = time.monotonic() + self.seconds
        while (left := deadline - time.monotonic()) > 0:
            if progress is not None:
                progress(1 - left / self.seconds)
            time.sleep(min(left, 0.05))
        return super().run(video_path, audio_path, out_path, options, progress)


def timed_engine(device: str) -> FakeEngine:
    return _TimedEngine(float(os.environ.get("LIPSYNC_FAKE_ENGINE_SECONDS", "0.2")))


def no_face_engine(device: str) -> FakeEngine:
    return FakeEngine(error=NoFaceDetected("no face in the video", frame_index=0, timestamp_s=0.0))


class CrashingEngine:
    """Kills its worker process (as a segfault or the OOM killer would) while running a job."""

    def __init__(self, marker_dir: Path | None, crashes: int) -> None:
        self.marker_dir = marker_dir
        self.crashes = crashes

    def run(
        self, video_path: Any, audio_path: Any, out_path: Any, options: RunOptions, progress: Any = None
    ) -> None:
        count = 0
        if self.marker_dir is not None:
            count = len(list(self.marker_dir.glob("crash-*")))
            (self.marker_dir / f"crash-{count}-{os.getpid()}").touch()
        if count < self.crashes:
            os._exit(3)
        Path(out_path).write_bytes(_OUTPUT)


class CrashingEngineFactory:
    def __init__(self, marker_dir: Path, crashes: int) -> None:
        self.marker_dir = marker_dir
        self.crashes = crashes

    def __call__(self, device: str) -> CrashingEngine:
        return CrashingEngine(self.marker_dir, self.crashes)


class GatedEngine:
    """Waits until a file exists (cross-process gate), reporting progress meanwhile; writes marker files."""

    def __init__(self, gate_dir: Path) -> None:
        self.gate_dir = gate_dir

    def run(
        self, video_path: Any, audio_path: Any, out_path: Any, options: RunOptions, progress: Any = None
    ) -> None:
        (self.gate_dir / f"started-{os.getpid()}").touch()
        deadline = time.monotonic() + 120
        while not (self.gate_dir / "release").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("gate never opened")
            if progress is not None:
                progress(0.5)
            time.sleep(0.02)
        Path(out_path).write_bytes(_OUTPUT)


class GatedEngineFactory:
    def __init__(self, gate_dir: Path) -> None:
        self.gate_dir = gate_dir

    def __call__(self, device: str) -> GatedEngine:
        return GatedEngine(self.gate_dir)


# ---- fetcher and webhooks ---------------------------------------------------------------------------------


class FakeFetcher:
    """Serves canned bytes per URL (default: media by extension); records calls."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = files or {}
        self.calls: list[str] = []
        self._video = make_mp4()
        self._audio = make_wav()

    async def fetch(self, url: str, dest: Path) -> FetchResult:
        self.calls.append(url)
        if url in self.files:
            data = self.files[url]
        elif "missing" in url:
            raise MediaFetchError("the media server answered status 404")
        elif url.lower().endswith((".wav", ".mp3", ".m4a", ".aac")):
            data = self._audio
        else:
            data = self._video
        await asyncio.to_thread(dest.write_bytes, data)
        return FetchResult(size=len(data), content_type=None, final_url=url)


class GatedFetcher(FakeFetcher):
    """A FakeFetcher whose downloads wait for ``gate`` (set ``waiting`` once one is held there)."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        super().__init__(files)
        self.gate = threading.Event()
        self.waiting = threading.Event()

    async def fetch(self, url: str, dest: Path) -> FetchResult:
        self.waiting.set()
        while not self.gate.is_set():  # bounded by whoever holds the gate (tests set it, or stop the app)
            await asyncio.sleep(0.01)
        return await super().fetch(url, dest)


class RecordingWebhooks:
    """A WebhookSender that records deliveries and signals each one."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.event = asyncio.Event()

    async def send(self, url: str, body: bytes, *, webhook_id: str, secret: str) -> bool:
        self.sent.append({"url": url, "body": body, "webhook_id": webhook_id, "secret": secret})
        self.event.set()
        return True
