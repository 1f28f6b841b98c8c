"""``Storage`` on a mounted ``modal.Volume``: the local directory storage plus commit/reload discipline.

A Volume is a directory in every container that mounts it, but a write becomes visible elsewhere only
after the writer commits and the reader reloads. So:

- every write (an upload, a fetched input, a job's output, a deletion) is committed before the call
  returns: the API queues a job only after its inputs are committed, and a GPU worker reports a job
  completed only after its output is committed;
- a read of a key that is not here yet reloads once and looks again (keys are written once per job, so a
  key that exists is current and needs no reload).

``reload()`` (and ``commit()``, which reloads too) fails while this container has a file of the Volume
open, and an API container serves many requests at once. A read/write gate keeps them apart: file access
holds it shared, commit/reload hold it exclusive (waiting, bounded, for open files to close). Nothing slow
happens inside the gate: uploads are spooled to a local temporary file and downloads served from a local
copy, and the copies ``local_path`` hands out live in the caller's scratch directory, never on the Volume.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from lipsync.server.local_storage import LocalStorage
from lipsync.server.modal_backends.handles import VolumeHandle, in_thread

__all__ = ["VolumeGate", "VolumeStorage"]


class VolumeGate:
    """Many readers/writers of files, or one commit/reload; a waiting commit/reload goes first."""

    def __init__(self, *, exclusive_timeout_s: float = 120.0) -> None:
        self.exclusive_timeout_s = exclusive_timeout_s
        self._cond = asyncio.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._exclusive and not self._waiting)
            self._shared += 1
        try:
            yield
        finally:
            async with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._cond:
            self._waiting += 1
            try:
                async with asyncio.timeout(self.exclusive_timeout_s):
                    await self._cond.wait_for(lambda: not self._exclusive and not self._shared)
            finally:
                self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            async with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class VolumeStorage:
    """Objects as files under *root* (a Volume mount), committed after writes, reloaded on a miss."""

    def __init__(self, root: str | Path, volume: VolumeHandle, *, gate: VolumeGate | None = None) -> None:
        self.files = LocalStorage(root)
        self.volume = volume
        self.gate = gate or VolumeGate()

    @property
    def root(self) -> Path:
        return self.files.root

    async def commit(self) -> None:
        async with self.gate.exclusive():
            await in_thread(self.volume.commit)

    async def _present(self, key: str) -> bool:
        """Whether *key* exists here, reloading once if it does not (it may have been committed elsewhere)."""
        if await self.files.size(key) is not None:
            return True
        async with self.gate.exclusive():
            if await self.files.size(key) is not None:  # another request's reload brought it meanwhile
                return True
            await in_thread(self.volume.reload)
        return await self.files.size(key) is not None

    async def _require(self, key: str) -> None:
        if not await self._present(key):
            raise FileNotFoundError(key)

    # ---- Storage ----------------------------------------------------------------------------------------

    async def put_file(self, key: str, src: Path) -> int:
        async with self.gate.shared():
            size = await self.files.put_file(key, src)
        await self.commit()
        return size

    async def put_bytes(self, key: str, data: bytes) -> int:
        async with self.gate.shared():
            size = await self.files.put_bytes(key, data)
        await self.commit()
        return size

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> int:
        """Spooled to a local temporary file first: a slow client must not hold a Volume file open."""
        self.files.path_of(key)
        with tempfile.TemporaryDirectory(prefix="lipsync-up-") as tmp:
            spool = Path(tmp) / "body"
            total = 0
            with open(spool, "wb") as fh:
                async for chunk in chunks:
                    total += len(chunk)
                    if total > max_bytes:
                        raise ValueError(f"larger than {max_bytes} bytes")
                    await asyncio.to_thread(fh.write, chunk)
            return await self.put_file(key, spool)

    async def size(self, key: str) -> int | None:
        self.files.path_of(key)  # refuse unsafe keys before touching the Volume
        if not await self._present(key):
            return None
        return await self.files.size(key)

    async def read_head(self, key: str, n: int) -> bytes:
        await self._require(key)
        async with self.gate.shared():
            return await self.files.read_head(key, n)

    async def iter_bytes(self, key: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Served from a local copy: a slow download must not hold a Volume file open."""
        with tempfile.TemporaryDirectory(prefix="lipsync-dl-") as tmp:
            copy = await self.local_path(key, Path(tmp))
            with open(copy, "rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, chunk_size):
                    yield chunk

    async def local_path(self, key: str, scratch: Path) -> Path:
        """A copy in *scratch*: nothing outside this class keeps a Volume file open (reload would fail)."""
        await self._require(key)
        dest = scratch / key.replace("/", "_")
        dest.parent.mkdir(parents=True, exist_ok=True)
        async with self.gate.shared():
            await asyncio.to_thread(shutil.copyfile, self.files.path_of(key), dest)
        return dest

    async def delete_prefix(self, prefix: str) -> None:
        async with self.gate.shared():
            await self.files.delete_prefix(prefix)
        await self.commit()

    def presigned_url(self, key: str, *, expires_s: int) -> str | None:
        return None
