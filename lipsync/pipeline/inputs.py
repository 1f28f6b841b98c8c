"""``check_inputs``: everything about the two input files that can be known before any model runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lipsync.engine.audio import duration_frames
from lipsync.errors import EmptyMedia, InputError
from lipsync.media.io import FramePlan, MediaInfo, MediaLimits, load_audio_16k, plan_frames_25fps, probe

__all__ = ["CheckedInputs", "Waveform", "check_inputs"]

#: 16-kHz mono audio samples.
Waveform = NDArray[np.float32]


@dataclass(frozen=True)
class CheckedInputs:
    """The probed inputs: the video's 25-fps frame plan and size, and the decoded 16-kHz audio."""

    video: Path
    audio: Path
    video_info: MediaInfo
    audio_info: MediaInfo
    frame_plan: FramePlan
    waveform: Waveform
    #: Output frames the reference derives from the audio (``floor(L/2) + 2``).
    audio_frames: int

    @property
    def num_video_frames(self) -> int:
        return len(self.frame_plan)

    @property
    def width(self) -> int:
        return self.video_info.width

    @property
    def height(self) -> int:
        return self.video_info.height


def check_inputs(
    video: str | os.PathLike[str],
    audio: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    limits: MediaLimits | None = None,
) -> CheckedInputs:
    """Probe both files and decode the audio; raise the typed error (``field`` "video"/"audio") on any problem.

    Cheap next to inference (a demux pass over the video, one decoded frame, the audio decode), so a job
    fails in seconds instead of halfway through denoising.
    """
    limits = limits or MediaLimits()
    video_path, audio_path = Path(os.fspath(video)), Path(os.fspath(audio))
    if out is not None:
        _check_output(Path(os.fspath(out)), video_path, audio_path)
    video_info = probe(video_path, role="video", limits=limits)
    audio_info = probe(audio_path, role="audio", limits=limits)
    plan = plan_frames_25fps(video_path, field="video")
    waveform = load_audio_16k(audio_path, max_duration_s=limits.max_duration_s, field="audio")
    frames = duration_frames(int(waveform.shape[0]))
    if frames == 0:
        raise EmptyMedia(
            f"The audio file '{audio_path.name}' is too short ({waveform.shape[0] / 16000 * 1000:.0f} ms) to "
            "drive even one video frame. Upload audio with speech in it.",
            field="audio",
        )
    return CheckedInputs(
        video=video_path,
        audio=audio_path,
        video_info=video_info,
        audio_info=audio_info,
        frame_plan=plan,
        waveform=waveform,
        audio_frames=frames,
    )


def _check_output(out: Path, video: Path, audio: Path) -> None:
    if out.suffix.lower() != ".mp4":
        raise InputError(f"the output must be an .mp4 file, got '{out.name}'", field="out")
    if out.is_dir():
        raise InputError(f"the output '{out}' is a directory", field="out")
    for name, path in (("video", video), ("audio", audio)):
        if path.exists() and out.exists() and out.resolve() == path.resolve():
            raise InputError(f"the output '{out}' would overwrite the {name} input", field="out")
