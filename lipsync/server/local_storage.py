"""The embedded Storage: files under one directory.

Keys are checked (``keys.check_key``) and the resolved path must stay under the root, so no key, however
it was obtained, reaches outside it. Writes go to a temporary file in the same directory and are renamed
into place (atomic on POSIX): a reader sees the old object or the new one, never half of one, and writing
the same key twice (a retried job) is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

from lipsync.server.interfaces import StoredObject
from lipsync.server.keys import InvalidKey, check_key

__all__ = ["LocalStorage"]


class LocalStorage:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        """The file for *key*; InvalidKey if the key is unsafe or would resolve outside the root."""
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidKey(f"key {key!r} escapes storage")
        return path

    def _atomic_write(self, key: str, write: Callable[[BinaryIO], object]) -> int:
        dest = self.path_of(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest.stat().st_size

    async def put_file(self, key: str, src: Path) -> int:
        def copy(fh: BinaryIO) -> None:
            with open(src, "rb") as source:
                shutil.copyfileobj(source, fh)

        return await asyncio.to_thread(self._atomic_write, key, copy)

    async def put_bytes(self, key: str, data: bytes) -> int:
        return await asyncio.to_thread(self._atomic_write, key, lambda fh: fh.write(data))

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> int:
        dest = self.path_of(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        total = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in chunks:
                    total += len(chunk)
                    if total > max_bytes:
                        raise ValueError(f"larger than {max_bytes} bytes")
                    fh.write(chunk)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return total

    async def size(self, key: str) -> int | None:
        path = self.path_of(key)
        return path.stat().st_size if path.is_file() else None

    async def read_head(self, key: str, n: int) -> bytes:
        with open(self.path_of(key), "rb") as fh:
            return fh.read(n)

    async def iter_bytes(self, key: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        with open(self.path_of(key), "rb") as fh:
            while chunk := await asyncio.to_thread(fh.read, chunk_size):
                yield chunk

    async def local_path(self, key: str, scratch: Path) -> Path:
        path = self.path_of(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return path

    async def delete_prefix(self, prefix: str) -> None:
        target = self.path_of(prefix.rstrip("/"))
        if target.is_dir():
            await asyncio.to_thread(shutil.rmtree, target, True)
        else:
            target.unlink(missing_ok=True)

    def presigned_url(self, key: str, *, expires_s: int) -> str | None:
        return None

    async def list_objects(self, prefix: str) -> list[StoredObject]:
        def run() -> list[StoredObject]:
            base = self.path_of(prefix.rstrip("/"))
            found: list[StoredObject] = []
            for dirpath, _dirs, files in os.walk(base):  # os.walk does not follow symlinked folders
                for name in files:
                    path = Path(dirpath) / name
                    if name.startswith(".") or path.is_symlink():  # writes in flight, planted links
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        stat = path.stat()
                        key = path.relative_to(self.root).as_posix()
                        found.append(StoredObject(key, stat.st_size, stat.st_mtime))
            return found

        return await asyncio.to_thread(run)
