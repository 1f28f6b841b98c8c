"""Is this file media of the kind its field needs? Checked before a job is queued, on every input.

Two steps: a cheap look at the first bytes (HTML error pages, JSON and other text are refused with a clear
message), then a PyAV open that must find a video stream for ``video`` and an audio stream for ``audio``
(headers only: nothing is decoded). PyAV is imported on first use; it does not pull in torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from lipsync.errors import EmptyMedia, MediaError, NoAudioStream, NoVideoStream, UnreadableMedia

__all__ = ["MediaField", "media_problem"]

MediaField = Literal["video", "audio"]

_TEXT_STARTS = (b"<", b"{", b"[", b"\xef\xbb\xbf")


def _looks_like_text(head: bytes) -> bool:
    stripped = head.lstrip()
    if stripped.startswith(_TEXT_STARTS):
        return True
    if not head:
        return False
    printable = sum(1 for b in head if b in (9, 10, 13) or 32 <= b < 127)
    return printable / len(head) > 0.97


def media_problem(path: Path, field: MediaField) -> MediaError | None:
    """Why *path* cannot serve as the *field* input (an error to report, not raised), or None if it can.
    Blocking: run it in a thread."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return EmptyMedia("the file is empty")
    if _looks_like_text(head):
        return UnreadableMedia("not a media file (it looks like text or an HTML/JSON page)")
    import av

    try:
        with av.open(str(path), mode="r") as container:
            kinds = {stream.type for stream in container.streams}
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        return UnreadableMedia(f"not a readable media file ({type(exc).__name__})")
    if field == "video" and "video" not in kinds:
        return NoVideoStream("the file has no video stream")
    if field == "audio" and "audio" not in kinds:
        return NoAudioStream("the file has no audio stream")
    return None
