"""Storage in an S3-compatible bucket (AWS S3, MinIO, R2, ...) through boto3 (the ``s3`` extra).

Objects live under ``<prefix><key>``. Downloads are S3 presigned GET URLs, so output bytes never pass
through the API process. boto3 is synchronous: every call runs in a worker thread. A single PUT replaces an
object atomically, which makes writes idempotent.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lipsync.server.interfaces import StoredObject
from lipsync.server.keys import check_key

__all__ = ["S3Storage"]


class S3Storage:
    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        client: Any | None = None,
    ) -> None:
        """*client*: a ready boto3 S3 client (else one is built from the environment's AWS settings)."""
        if client is None:
            try:
                import boto3
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise RuntimeError("S3 storage needs boto3: pip install 'lipsync-api[s3]'") from exc
            client = boto3.client("s3", endpoint_url=endpoint_url)
        self._s3 = client
        self.bucket = bucket
        self.prefix = prefix

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def put_file(self, key: str, src: Path) -> int:
        name = self._name(key)
        await asyncio.to_thread(self._s3.upload_file, str(src), self.bucket, name)
        return Path(src).stat().st_size

    async def put_bytes(self, key: str, data: bytes) -> int:
        name = self._name(key)
        await asyncio.to_thread(self._s3.put_object, Bucket=self.bucket, Key=name, Body=data)
        return len(data)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> int:
        # Spool to disk first: the size cap must hold before anything becomes visible in the bucket.
        with tempfile.NamedTemporaryFile(prefix="lipsync-up-") as tmp:
            total = 0
            async for chunk in chunks:
                total += len(chunk)
                if total > max_bytes:
                    raise ValueError(f"larger than {max_bytes} bytes")
                tmp.write(chunk)
            tmp.flush()
            await self.put_file(key, Path(tmp.name))
        return total

    async def size(self, key: str) -> int | None:
        name = self._name(key)
        try:
            head = await asyncio.to_thread(self._s3.head_object, Bucket=self.bucket, Key=name)
        except Exception as exc:
            if _is_not_found(exc):
                return None
            raise
        return int(head["ContentLength"])

    async def read_head(self, key: str, n: int) -> bytes:
        name = self._name(key)
        try:
            obj = await asyncio.to_thread(
                self._s3.get_object, Bucket=self.bucket, Key=name, Range=f"bytes=0-{max(n, 1) - 1}"
            )
        except Exception as exc:
            if _is_not_found(exc):
                raise FileNotFoundError(key) from None
            raise
        data: bytes = await asyncio.to_thread(obj["Body"].read)
        return data

    async def iter_bytes(self, key: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        name = self._name(key)
        try:
            obj = await asyncio.to_thread(self._s3.get_object, Bucket=self.bucket, Key=name)
        except Exception as exc:
            if _is_not_found(exc):
                raise FileNotFoundError(key) from None
            raise
        body = obj["Body"]
        while chunk := await asyncio.to_thread(body.read, chunk_size):
            yield chunk

    async def local_path(self, key: str, scratch: Path) -> Path:
        dest = scratch / check_key(key).replace("/", "_")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            await asyncio.to_thread(self._s3.download_file, self.bucket, self._name(key), str(dest))
        except Exception as exc:
            if _is_not_found(exc):
                raise FileNotFoundError(key) from None
            raise
        return dest

    async def delete_prefix(self, prefix: str) -> None:
        full = self.prefix + check_key(prefix.rstrip("/")) + "/"

        def run() -> None:
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if objects:
                    self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})

        await asyncio.to_thread(run)

    def presigned_url(self, key: str, *, expires_s: int) -> str | None:
        url: str = self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._name(key)}, ExpiresIn=expires_s
        )
        return url


def _is_not_found(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")

    async def list_objects(self, prefix: str) -> list[StoredObject]:
        full = self.prefix + check_key(prefix.rstrip("/")) + "/"

        def run() -> list[StoredObject]:
            found: list[StoredObject] = []
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    key = str(item["Key"])[len(self.prefix) :]
                    found.append(StoredObject(key, int(item["Size"]), item["LastModified"].timestamp()))
            return found

        return await asyncio.to_thread(run)
