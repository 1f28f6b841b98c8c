"""Opening media files with PyAV and turning its exceptions into the project's typed errors.

Every message names the file's role (``"video"`` or ``"audio"``, also set as the error's ``field``)
and says what the user can do about it. Paths are passed to FFmpeg as-is (no shell), so spaces,
quotes and non-ASCII names work.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import av.container

from lipsync.errors import MediaError, UnreadableMedia

__all__ = ["PathLike", "describe_path", "media_errors", "open_input", "unreadable"]

PathLike = str | os.PathLike[str]

_ROLE_HINT = {
    "video": "Upload a video file (for example MP4 with H.264 or HEVC) that plays in a media player.",
    "audio": "Upload an audio file (WAV, MP3, M4A/AAC, OGG, FLAC) or a video with a sound track.",
}


def describe_path(path: PathLike) -> str:
    """The file name users recognise (not the full server path, which may hold a job directory)."""
    return Path(os.fspath(path)).name or os.fspath(path)


def _role_label(field: str | None) -> str:
    return f"{field} file" if field else "media file"


def _unreadable(path: PathLike, field: str | None, reason: str) -> UnreadableMedia:
    hint = _ROLE_HINT.get(field or "", "Check that the file is a complete, playable media file.")
    return UnreadableMedia(
        f"The {_role_label(field)} '{describe_path(path)}' could not be read: {reason}. {hint}", field=field
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, av.error.FileNotFoundError | FileNotFoundError):
        return "the file does not exist"
    if isinstance(exc, av.error.PermissionError | PermissionError):
        return "permission denied"
    if isinstance(exc, av.error.IsADirectoryError | IsADirectoryError):
        return "it is a directory, not a file"
    if isinstance(exc, av.error.DecoderNotFoundError):
        return "its codec is not supported"
    if isinstance(exc, av.error.InvalidDataError):
        return "it is not a media file, or it is corrupt or truncated"
    if isinstance(exc, av.error.EOFError):
        return "the file ends unexpectedly (truncated)"
    text = getattr(exc, "strerror", None) or str(exc)
    return f"FFmpeg reported: {text}"


@contextmanager
def media_errors(path: PathLike, field: str | None) -> Iterator[None]:
    """Translate PyAV/FFmpeg and OS errors raised inside the block into :class:`UnreadableMedia`."""
    try:
        yield
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError) as exc:
        raise _unreadable(path, field, _reason(exc)) from exc


@contextmanager
def open_input(path: PathLike, field: str | None) -> Iterator[av.container.InputContainer]:
    """``av.open`` for reading, closing the container afterwards; errors become typed errors."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise _unreadable(path, field, "the file does not exist")
    if os.path.isdir(p):
        raise _unreadable(path, field, "it is a directory, not a file")
    if os.path.getsize(p) == 0:
        raise _unreadable(path, field, "the file is empty (0 bytes)")
    with media_errors(path, field):
        container: Any = av.open(p, mode="r")
    try:
        with media_errors(path, field):
            yield container
    finally:
        container.close()


def unreadable(path: PathLike, field: str | None, reason: str) -> UnreadableMedia:
    """Build an :class:`UnreadableMedia` with the standard wording (for checks outside PyAV)."""
    return _unreadable(path, field, reason)
