"""What a media file holds (:func:`probe`) and the checks a job applies before any work starts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
import av.video.stream

from lipsync.errors import EmptyMedia, MediaTooLong, NoAudioStream, NoVideoStream, ResolutionError
from lipsync.media.container import PathLike, describe_path, open_input, unreadable
from lipsync.media.fps import OUTPUT_FPS
from lipsync.media.orientation import display_matrix, orientation_from_matrix

__all__ = ["MediaInfo", "MediaLimits", "Role", "check_limits", "probe"]

Role = Literal["video", "audio"]


@dataclass(frozen=True)
class MediaLimits:
    """Limits a job enforces on its inputs (all configurable; ``None`` disables a limit).

    The side limits apply to the displayed (upright) picture. 64 px is far below anything with a
    usable face; 4096 px covers 4K portrait and landscape (3840x2160 / 2160x3840).
    """

    max_duration_s: float | None = None
    min_side: int | None = 64
    max_side: int | None = 4096


@dataclass(frozen=True)
class MediaInfo:
    """Summary of a media file. Video fields are 0 / ``None`` when there is no video stream."""

    duration_s: float  # the role's stream when probed with a role, else the whole container
    width: int  # displayed (after rotation)
    height: int
    fps: float  # average frame rate of the video stream
    has_video: bool
    has_audio: bool
    video_codec: str | None
    rotation: int  # counter-clockwise degrees from the display matrix (0, 90, 180, 270)
    num_frames_25: int  # estimated number of frames after the 25 fps conversion
    # extras
    num_frames: int = 0  # frames in the video stream as the container reports them (0 if unknown)
    video_duration_s: float = 0.0
    audio_duration_s: float = 0.0
    audio_codec: str | None = None
    audio_sample_rate: int = 0
    audio_channels: int = 0
    container_format: str = ""


def _seconds(value: int | None, time_base: Fraction | None) -> float:
    if value is None or time_base is None:
        return 0.0
    return float(value * time_base)


def probe(path: PathLike, *, role: Role | None = None, limits: MediaLimits | None = None) -> MediaInfo:
    """Describe *path*. With a *role*, also check it can serve as that job input.

    ``role="video"`` requires a decodable video stream with frames, within *limits*;
    ``role="audio"`` requires an audio stream with a non-zero duration. Errors carry ``field=role``.
    Decodes one video frame (to read the display matrix and prove the codec works).
    """
    field = role
    with open_input(path, field) as container:
        vstreams = list(container.streams.video)
        astreams = list(container.streams.audio)
        container_duration = (container.duration or 0) / 1_000_000
        width = height = rotation = num_frames = 0
        fps = video_duration = 0.0
        video_codec: str | None = None
        if vstreams:
            vs = vstreams[0]
            video_codec = vs.codec_context.name
            fps = float(vs.average_rate) if vs.average_rate else 0.0
            num_frames = int(vs.frames or 0)
            video_duration = _seconds(vs.duration, vs.time_base) or container_duration
            _check_complete(path, field, vs, os.path.getsize(os.fspath(path)))
            vs.thread_type = "AUTO"
            first = next(iter(container.decode(vs)), None)
            if first is None:
                if role == "video":
                    raise EmptyMedia(
                        f"The video file '{describe_path(path)}' has a video stream but no decodable "
                        "frames. Upload a video that plays and is at least one frame long.",
                        field=field,
                    )
            else:
                orient = orientation_from_matrix(display_matrix(first))
                rotation = orient.rotation
                width, height = (
                    (first.height, first.width) if orient.swaps_axes else (first.width, first.height)
                )
        audio_codec: str | None = None
        audio_rate = audio_channels = 0
        audio_duration = 0.0
        if astreams:
            a = astreams[0]
            audio_codec = a.codec_context.name
            audio_rate = int(a.rate or 0)
            audio_channels = int(a.channels or 0)
            audio_duration = _seconds(a.duration, a.time_base) or container_duration
        fmt = container.format.name

    if role == "video":
        duration = video_duration
    elif role == "audio":
        duration = audio_duration
    else:
        duration = container_duration or max(video_duration, audio_duration)
    info = MediaInfo(
        duration_s=duration,
        width=width,
        height=height,
        fps=fps,
        has_video=bool(vstreams) and width > 0,
        has_audio=bool(astreams),
        video_codec=video_codec,
        rotation=rotation,
        num_frames_25=_estimate_frames_25(video_duration, num_frames, fps) if vstreams else 0,
        num_frames=num_frames,
        video_duration_s=video_duration,
        audio_duration_s=audio_duration,
        audio_codec=audio_codec,
        audio_sample_rate=audio_rate,
        audio_channels=audio_channels,
        container_format=fmt,
    )
    if role is not None:
        check_limits(path, info, role, limits or MediaLimits())
    return info


def _check_complete(
    path: PathLike, field: str | None, stream: av.video.stream.VideoStream, size: int
) -> None:
    """Catch MP4s cut short whose index (moov at the front) still lists the missing samples."""
    entries = stream.index_entries
    if not entries:
        return
    end = max(e.pos + e.size for e in entries)
    if end > size:
        raise unreadable(
            path,
            field,
            f"the file is truncated ({size} bytes, but its index refers to data up to byte {end})",
        )


def _estimate_frames_25(duration_s: float, num_frames: int, fps: float) -> int:
    if num_frames and abs(fps - OUTPUT_FPS) < 1e-6:
        return num_frames  # already 25 fps: ffmpeg keeps every frame once
    return max(round(duration_s * OUTPUT_FPS), 1 if num_frames else 0)


def check_limits(path: PathLike, info: MediaInfo, role: Role, limits: MediaLimits) -> None:
    """Raise the typed error for the first limit *info* breaks as the *role* input."""
    name = describe_path(path)
    if role == "video":
        if not info.has_video:
            what = "an audio-only file" if info.has_audio else "a file without a video stream"
            raise NoVideoStream(
                f"The video file '{name}' is {what}. The video input needs a video with a visible face; "
                "send sound files as the audio input.",
                field=role,
            )
        _check_resolution(name, info, limits)
    else:
        if not info.has_audio:
            raise NoAudioStream(
                f"The audio file '{name}' has no audio stream. Upload speech audio (WAV, MP3, M4A, ...) "
                "or a video that has a sound track.",
                field=role,
            )
        if info.audio_duration_s <= 0:
            raise EmptyMedia(
                f"The audio file '{name}' is empty (0 seconds of sound). Upload audio with speech in it.",
                field=role,
            )
    if limits.max_duration_s is not None and info.duration_s > limits.max_duration_s:
        raise MediaTooLong(
            f"The {role} file '{name}' is {info.duration_s:.1f} s long; the limit is "
            f"{limits.max_duration_s:g} s. Trim it or split the job.",
            field=role,
        )


def _check_resolution(name: str, info: MediaInfo, limits: MediaLimits) -> None:
    short, long = sorted((info.width, info.height))
    if limits.min_side is not None and short < limits.min_side:
        raise ResolutionError(
            f"The video file '{name}' is {info.width}x{info.height}; each side must be at least "
            f"{limits.min_side} px.",
            field="video",
        )
    if limits.max_side is not None and long > limits.max_side:
        raise ResolutionError(
            f"The video file '{name}' is {info.width}x{info.height}; sides above {limits.max_side} px are "
            "not supported. Downscale it (e.g. to 1080p) and try again.",
            field="video",
        )
