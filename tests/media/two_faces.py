"""Two real speakers in one picture, made from the shared clips: the inputs of the face-choice tests.

Each side shows a 480x640 window around one speaker's face (tests/pipeline/clips.py), scaled; the sound is
the original track of one of the two videos (the voice of that speaker).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from lipsync.media.io import load_audio_16k
from tests.pipeline.clips import SPEAKERS, WINDOW, decode_frames

HEIGHT = 640
FPS = 25


def _window(frame: np.ndarray, speaker: str) -> np.ndarray:
    x, y = SPEAKERS[speaker].face_window
    w, h = WINDOW
    return frame[y : y + h, x : x + w]


def side_by_side(
    media_dir: Path,
    frames: int,
    *,
    scales: tuple[float, float] = (1.0, 0.8),
    swap_at: int | None = None,
    order: tuple[str, str] = ("demo1", "demo2"),
    start: int = 0,
) -> Iterator[np.ndarray]:
    """*order[0]* (demo1) on the left, *order[1]* on the right, at *scales* of their 480x640 windows, from
    frame *start*; from frame *swap_at* on the two scales are exchanged (the larger face becomes smaller)."""
    w, h = WINDOW
    left = decode_frames(media_dir / SPEAKERS[order[0]].video, count=frames, start=start)
    right = decode_frames(media_dir / SPEAKERS[order[1]].video, count=frames, start=start)
    for i, (a, b) in enumerate(zip(left, right, strict=False)):
        sa, sb = scales if swap_at is None or i < swap_at else scales[::-1]
        canvas = np.zeros((HEIGHT, 2 * w, 3), np.uint8)
        for side, (frame, speaker, scale) in enumerate(((a, order[0], sa), (b, order[1], sb))):
            win = cv2.resize(
                _window(frame, speaker), (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA
            )
            y0 = (HEIGHT - win.shape[0]) // 2
            x0 = side * w + (w - win.shape[1]) // 2
            canvas[y0 : y0 + win.shape[0], x0 : x0 + win.shape[1]] = win
        yield canvas


def original_voice(media_dir: Path, speaker: str, frames: int, start: int = 0) -> np.ndarray:
    """*frames* video frames' worth of *speaker*'s original sound track from frame *start*, 16 kHz mono."""
    audio = load_audio_16k(media_dir / SPEAKERS[speaker].video)
    hop = 16000 // FPS
    return audio[start * hop : (start + frames) * hop]
