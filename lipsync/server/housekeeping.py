"""Bounding what storage holds beyond jobs: expired uploads, the per-key upload quota, orphan inputs.

Jobs and their files are purged with the job (``JobStore.purge``). Three kinds of objects have no job row
to go with, and are looked after here when the storage can list itself (``ListableStorage``; local files
and S3 — a storage that cannot list keeps them, as before):

- uploads (``uploads/<owner>/<id>/<name>``) expire with their download link: once ``url_ttl_s`` has passed
  since they were stored (a link is never older than the object it names) plus ``job_timeout_s``, so a
  job submitted with a link still valid can finish with it;
- a key's stored uploads count against ``upload_quota_bytes`` (checked when an upload is announced or
  received);
- ``inputs/<job>/`` folders whose job does not exist (a submit interrupted between storing a ``data:`` URI
  and inserting the job) are removed once older than ``ORPHAN_GRACE_S``.
"""

from __future__ import annotations

from collections import defaultdict

from lipsync.server.interfaces import JobStore, ListableStorage, Storage

__all__ = ["ORPHAN_GRACE_S", "purge_expired_uploads", "sweep_orphan_inputs", "upload_usage"]

#: An input folder without a job is left alone this long (its submit may still be inserting the job).
ORPHAN_GRACE_S = 3600.0


def _folder(key: str, depth: int) -> str:
    return "/".join(key.split("/")[:depth])


async def purge_expired_uploads(storage: Storage, *, before: float) -> list[str]:
    """Delete uploads stored before *before*; returns the upload folders removed."""
    if not isinstance(storage, ListableStorage):
        return []
    newest: dict[str, float] = defaultdict(float)
    for obj in await storage.list_objects("uploads"):
        folder = _folder(obj.key, 3)  # uploads/<owner>/<id>
        newest[folder] = max(newest[folder], obj.modified)
    expired = sorted(folder for folder, modified in newest.items() if modified < before)
    for folder in expired:
        await storage.delete_prefix(folder)
    return expired


async def upload_usage(storage: Storage, owner: str) -> int | None:
    """Bytes of uploads *owner* has stored, or None when the storage cannot tell."""
    if not isinstance(storage, ListableStorage):
        return None
    return sum(obj.size for obj in await storage.list_objects(f"uploads/{owner}"))


async def sweep_orphan_inputs(storage: Storage, store: JobStore, *, before: float) -> list[str]:
    """Delete ``inputs/<job>`` folders last written before *before* whose job is unknown to *store*."""
    if not isinstance(storage, ListableStorage):
        return []
    newest: dict[str, float] = defaultdict(float)
    for obj in await storage.list_objects("inputs"):
        folder = _folder(obj.key, 2)  # inputs/<job>
        newest[folder] = max(newest[folder], obj.modified)
    removed: list[str] = []
    for folder, modified in sorted(newest.items()):
        if modified < before and await store.get(folder.split("/", 1)[1]) is None:
            await storage.delete_prefix(folder)
            removed.append(folder)
    return removed
