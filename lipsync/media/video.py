"""Streaming video decode at 25 fps: the frames the reference's ``ffmpeg -r 25`` re-encode would keep.

Two passes over the file, neither holding frames:

1. :func:`plan_frames_25fps` demuxes the video packets (no decoding) and runs ffmpeg's CFR video sync
   (:mod:`lipsync.media.fps`) over their timestamps, giving for every 25 fps output frame the
   timestamp of the input frame it shows. This is cheap (milliseconds for a minute of 1080p) and also
   answers :func:`count_frames_25fps`.
2. :func:`iter_frames_25fps` decodes (with FFmpeg's frame threads) and yields RGB arrays for the
   planned frames only; input frames that the conversion drops are never converted to RGB. A start
   offset seeks to the keyframe before the first needed frame, so ping-pong/reverse passes can
   re-decode a window instead of keeping frames in memory.

RGB conversion uses the BT.601 matrix whatever the stream's colour tags say, because the reference
reads frames with OpenCV, which does the same: frames here are bit-identical to ``cv2.VideoCapture``
on the same file. Frames are turned upright from the display matrix as ffmpeg's autorotate does.
"""

from __future__ import annotations

import bisect
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import av.container
import av.video.stream
import numpy as np
from numpy.typing import NDArray

from lipsync.errors import EmptyMedia, NoVideoStream
from lipsync.media.container import PathLike, describe_path, media_errors, open_input, unreadable
from lipsync.media.fps import FfmpegCompat, select_frames_25fps
from lipsync.media.orientation import IDENTITY, Orientation, display_matrix, orientation_from_matrix

__all__ = ["FramePlan", "count_frames_25fps", "iter_frames_25fps", "plan_frames_25fps", "to_rgb"]


@dataclass(frozen=True)
class FramePlan:
    """Which input frame each 25 fps output frame shows.

    ``input_pts`` holds every input frame's timestamp (stream time base) in presentation order;
    ``selection[k]`` is the index into it for output frame ``k``.
    """

    input_pts: NDArray[np.int64]
    selection: NDArray[np.int64]
    time_base: Fraction
    #: True when the demuxer gave no usable timestamps and frames are matched by decode order.
    ordinal: bool = False
    #: The container has a seek index (MP4/MOV, Matroska/WebM cues): windows may seek. Without one
    #: (MPEG-TS, raw streams) a seek is a guess that can land between keyframes, so windows decode
    #: from the start instead.
    seekable: bool = True

    def __len__(self) -> int:
        return int(self.selection.shape[0])

    @property
    def num_input_frames(self) -> int:
        return int(self.input_pts.shape[0])

    def source_time_s(self, output_index: int) -> float:
        """Timestamp (s, in the input's timeline) of the input frame shown at *output_index*."""
        return float(int(self.input_pts[self.selection[output_index]]) * self.time_base)


def _video_stream(
    container: av.container.InputContainer, path: PathLike, field: str
) -> av.video.stream.VideoStream:
    if not container.streams.video:
        what = "an audio-only file" if container.streams.audio else "a file without a video stream"
        raise NoVideoStream(
            f"The {field} file '{describe_path(path)}' is {what}. The video input needs a video with a "
            "visible face; send sound files as the audio input.",
            field=field,
        )
    return container.streams.video[0]


def _scan_timestamps(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> tuple[list[tuple[int, int]], bool]:
    """(pts, duration) of every displayed input frame, sorted by pts; and whether they were synthesised."""
    time_base = _time_base(stream)
    frames: list[tuple[int, int]] = []
    missing = False
    for packet in container.demux(stream):
        if packet.size == 0 or packet.is_discard:
            continue  # the flush packet, or edit-list samples the decoder will drop
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None:
            missing = True
        frames.append((ts if ts is not None else -1, int(packet.duration or 0)))
    if missing:
        # No container timestamps (raw elementary streams): assume the stream's nominal rate, in order.
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        step = max(round(1 / (rate * time_base)), 1)
        return [(i * step, step) for i in range(len(frames))], True
    frames.sort()
    return frames, False


def _time_base(stream: av.video.stream.VideoStream) -> Fraction:
    if stream.time_base is None:  # never for a demuxed stream; keeps the arithmetic below total
        raise ValueError("video stream without a time base")
    return stream.time_base


def plan_frames_25fps(path: PathLike, *, compat: FfmpegCompat = "ffmpeg7", field: str = "video") -> FramePlan:
    """Compute the 25 fps frame selection of *path* from its timestamps (demux only, no decoding)."""
    with open_input(path, field) as container:
        stream = _video_stream(container, path, field)
        expected = int(stream.frames or 0)
        seekable = len(stream.index_entries or ()) > 0
        frames, ordinal = _scan_timestamps(container, stream)
        if expected and len(frames) < expected:
            raise unreadable(
                path,
                field,
                f"the file is truncated (its index lists {expected} frames, {len(frames)} are present)",
            )
        if not frames:
            raise EmptyMedia(
                f"The {field} file '{describe_path(path)}' contains no video frames.", field=field
            )
        selection = select_frames_25fps(
            frames,
            _time_base(stream),
            start_time_us=int(container.start_time or 0),
            single_stream_input=len(container.streams) == 1,
            compat=compat,
            average_rate=stream.average_rate,
            guessed_rate=stream.guessed_rate,
        )
        return FramePlan(
            input_pts=np.fromiter((p for p, _ in frames), dtype=np.int64, count=len(frames)),
            selection=selection,
            time_base=_time_base(stream),
            ordinal=ordinal,
            seekable=seekable,
        )


def count_frames_25fps(path: PathLike, *, compat: FfmpegCompat = "ffmpeg7", field: str = "video") -> int:
    """Number of frames ``ffmpeg -i path -r 25`` would write (exact; demuxes, does not decode)."""
    return len(plan_frames_25fps(path, compat=compat, field=field))


def to_rgb(frame: av.VideoFrame, orientation: Orientation = IDENTITY) -> NDArray[np.uint8]:
    """Decoded frame -> upright RGB uint8 (H, W, 3), BT.601 like OpenCV; a fresh contiguous array."""
    rgb: NDArray[np.uint8] = frame.reformat(
        format="rgb24", src_colorspace="ITU601", interpolation="BICUBIC", threads=0
    ).to_ndarray()  # type: ignore[assignment]
    return np.ascontiguousarray(orientation(rgb))


def iter_frames_25fps(
    path: PathLike,
    *,
    start_frame: int = 0,
    max_frames: int | None = None,
    compat: FfmpegCompat = "ffmpeg7",
    plan: FramePlan | None = None,
    field: str = "video",
) -> Iterator[NDArray[np.uint8]]:
    """Yield the 25 fps frames ``start_frame .. start_frame + max_frames - 1`` of *path* as RGB uint8.

    Memory stays constant (one decoded frame plus FFmpeg's decoder buffers). Every yielded array is
    a new array the caller may modify. Pass *plan* (from :func:`plan_frames_25fps`) to skip the
    timestamp scan when a file is read several times.
    """
    if start_frame < 0:
        raise ValueError(f"start_frame must be >= 0, not {start_frame}")
    if max_frames is not None and max_frames < 0:
        raise ValueError(f"max_frames must be >= 0, not {max_frames}")
    plan = plan if plan is not None else plan_frames_25fps(path, compat=compat, field=field)
    end = len(plan) if max_frames is None else min(len(plan), start_frame + max_frames)
    if start_frame >= end:
        return
    wanted = plan.selection[start_frame:end]
    first_input = int(wanted[0])
    if plan.seekable and not plan.ordinal:
        # Seek to the keyframe before the first needed frame. With open GOPs (HEVC CRA) the frames just
        # before a keyframe cannot be decoded from it, so a seek can land too late: step further back.
        back = 0
        while first_input - back > 0:
            seek_to = int(plan.input_pts[first_input - back])
            emitted = yield from _decode_window(path, plan, wanted, start_frame, seek_to=seek_to, field=field)
            if emitted is not None:
                return
            back = max(30, 4 * back)
    yield from _decode_window(path, plan, wanted, start_frame, seek_to=None, field=field)


def _decode_window(
    path: PathLike,
    plan: FramePlan,
    wanted: NDArray[np.int64],
    start_frame: int,
    *,
    seek_to: int | None,
    field: str,
) -> Generator[NDArray[np.uint8], None, int | None]:
    """Decode and yield the planned frames, after seeking to the keyframe at or before *seek_to* (pts).

    Returns None, having yielded nothing, when the seek landed after the first needed frame.
    """
    pts_list = plan.input_pts.tolist()
    n_out = int(wanted.shape[0])
    with open_input(path, field) as container:
        stream = _video_stream(container, path, field)
        stream.thread_type = "AUTO"  # frame + slice threads: the hot path for 1080p HEVC
        if seek_to is not None:
            container.seek(seek_to, stream=stream, backward=True, any_frame=False)
        orientation: Orientation | None = None
        j = 0  # next position in `wanted`
        prev: av.VideoFrame | None = None  # last decoded frame (for inputs the decoder never produced)
        ordinal = -1
        with media_errors(path, field):
            for frame in container.decode(stream):
                ordinal += 1
                if plan.ordinal:
                    idx = ordinal
                else:
                    if frame.pts is None:
                        continue
                    idx = bisect.bisect_left(pts_list, frame.pts)
                    if idx >= len(pts_list) or pts_list[idx] != frame.pts:
                        continue  # a frame the demux scan did not list (should not happen)
                if orientation is None:
                    orientation = orientation_from_matrix(display_matrix(frame))
                    if seek_to is not None and idx > int(wanted[0]):
                        return None  # the seek landed after the frame we need: caller retries
                while j < n_out and int(wanted[j]) < idx:
                    # The planned input frame was never decoded (the decoder dropped it): hold the
                    # previous picture, as a player would.
                    j += 1
                    yield to_rgb(prev if prev is not None else frame, orientation)
                repeats = 0
                while j + repeats < n_out and int(wanted[j + repeats]) == idx:
                    repeats += 1
                if repeats:
                    rgb = to_rgb(frame, orientation)
                    for _ in range(repeats - 1):
                        j += 1
                        yield rgb.copy()  # the same input frame shown again: each yield is its own array
                    j += 1
                    yield rgb
                if j >= n_out:
                    return n_out
                prev = frame
        if seek_to is not None and orientation is None:
            return None  # nothing decodable after the seek point: caller backs up
        if j < n_out:
            raise unreadable(
                path,
                field,
                f"decoding stopped early (25 fps frame {start_frame + j} of {len(plan)} could not be "
                "decoded); the file is corrupt or truncated",
            )
    return n_out
