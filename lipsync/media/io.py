"""Media I/O with PyAV: the one import the pipeline needs.

``probe`` / ``MediaInfo`` / ``MediaLimits``   what a file holds, and the job's input checks
``iter_frames_25fps`` / ``count_frames_25fps`` streaming 25 fps RGB frames (ffmpeg ``-r 25`` selection)
``plan_frames_25fps`` / ``FramePlan``          the selection itself, reusable across passes
``load_audio_16k``                            float32 mono 16 kHz, as the reference's ffmpeg s16le path
``VideoWriter``                               H.264/AAC MP4 writer (CRF 18, yuv420p, 25 fps)

See docs/media.md for the details and measured speeds.
"""

from __future__ import annotations

from lipsync.media.audio import SAMPLE_RATE, load_audio_16k
from lipsync.media.fps import OUTPUT_FPS, FfmpegCompat
from lipsync.media.probe import MediaInfo, MediaLimits, Role, check_limits, probe
from lipsync.media.video import FramePlan, count_frames_25fps, iter_frames_25fps, plan_frames_25fps
from lipsync.media.writer import DEFAULT_CRF, DEFAULT_PRESET, VideoWriter

__all__ = [
    "DEFAULT_CRF",
    "DEFAULT_PRESET",
    "OUTPUT_FPS",
    "SAMPLE_RATE",
    "FfmpegCompat",
    "FramePlan",
    "MediaInfo",
    "MediaLimits",
    "Role",
    "VideoWriter",
    "check_limits",
    "count_frames_25fps",
    "iter_frames_25fps",
    "load_audio_16k",
    "plan_frames_25fps",
    "probe",
]
