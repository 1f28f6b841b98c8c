"""Storage keys: the only names under which bytes are stored, and the check that keeps them inside storage.

A key is a relative POSIX path of safe segments (``[A-Za-z0-9._-]``, not starting with a dot), so no key
can name ``..``, an absolute path, a hidden file or a backslash path on any backend.
"""

from __future__ import annotations

import re
import uuid

__all__ = ["InvalidKey", "check_key", "input_key", "output_key", "safe_filename", "upload_key"]

_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class InvalidKey(ValueError):
    """A key that could escape storage or is otherwise malformed."""


def check_key(key: str) -> str:
    """Return *key* unchanged if it is safe, else raise InvalidKey."""
    if not key or len(key) > 1024:
        raise InvalidKey("empty or overlong key")
    for segment in key.split("/"):
        if not _SEGMENT.match(segment):
            raise InvalidKey(f"unsafe key segment {segment!r}")
    return key


def safe_filename(name: str, *, default: str = "upload") -> str:
    """A client-supplied file name reduced to one safe segment (keeps the extension when it can)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).strip("._")[:120]
    return cleaned or default


def input_key(job_id: str, field: str, ext: str = "") -> str:
    return check_key(f"inputs/{job_id}/{field}{ext}")


def output_key(job_id: str) -> str:
    return check_key(f"outputs/{job_id}/output.mp4")


def upload_key(owner: str, filename: str) -> str:
    return check_key(f"uploads/{owner}/{uuid.uuid4().hex}/{safe_filename(filename)}")
