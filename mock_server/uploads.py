"""Uploaded media held in memory (ticket + PUT, or the legacy multipart upload), bounded in total bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["Upload", "UploadStore", "media_path", "put_path"]


def put_path(upload_id: str) -> str:
    """The ticket's PUT target (like a presigned URL: no API key)."""
    return f"/storage/uploads/{upload_id}"


def media_path(upload_id: str, filename: str) -> str:
    """Where the uploaded bytes are served (the ``download_url``)."""
    from urllib.parse import quote

    return f"/storage/media/{upload_id}/{quote(filename)}"


@dataclass
class Upload:
    id: str
    filename: str
    declared_size: int | None
    content_type: str | None
    data: bytes | None = None


class UploadStore:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Upload] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def add(self, upload: Upload) -> None:
        with self._lock:
            self._items[upload.id] = upload
            self._bytes += len(upload.data or b"")
            self._evict()

    def put(self, upload_id: str, data: bytes) -> Upload | None:
        with self._lock:
            upload = self._items.get(upload_id)
            if upload is None:
                return None
            self._bytes += len(data) - len(upload.data or b"")
            upload.data = data
            self._items.move_to_end(upload_id)
            self._evict(keep=upload_id)
            return upload

    def get(self, upload_id: str) -> Upload | None:
        return self._items.get(upload_id)

    def _evict(self, keep: str | None = None) -> None:
        while self._bytes > self.max_bytes and len(self._items) > 1:
            oldest_id = next(iter(self._items))
            if oldest_id == keep:
                break
            oldest = self._items.pop(oldest_id)
            self._bytes -= len(oldest.data or b"")

    @property
    def total_bytes(self) -> int:
        return self._bytes
