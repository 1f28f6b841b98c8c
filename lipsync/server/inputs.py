"""Turning a request's ``video``/``audio`` references into checked media in storage, before queueing.

Three kinds of reference:
- a ``data:`` URI: decoded (size-capped) and stored;
- a download link of this server (an upload's ``download_url``, recognised by its valid signature, on
  any host name): used in place, with no HTTP request, so uploads work on a loopback-only server;
- any other http(s) URL: downloaded by the Fetcher (SSRF guard, size and time caps) and stored.

Every input is then checked to be media of the right kind (``media_check``); a problem is an
``InputProblem`` naming the field, which the route answers with HTTP 400. Both inputs are resolved
concurrently; when one fails, whatever the other stored is removed.
"""

from __future__ import annotations

import asyncio
import mimetypes
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlsplit

from contracts import LipsyncRequest, parse_data_uri
from lipsync.errors import MediaFetchError
from lipsync.server.keys import input_key
from lipsync.server.media_check import MediaField, media_problem
from lipsync.server.signing import DOWNLOAD_PREFIX
from lipsync.server.state import ServerState

__all__ = ["InputProblem", "resolve_inputs"]


class InputProblem(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"Invalid parameter '{field}': {message}")
        self.field = field
        self.message = message


def _extension(mime: str | None, url: str) -> str:
    if mime:
        ext = mimetypes.guess_extension(mime.split(";", 1)[0].strip())
        if ext:
            return ext
    suffix = Path(urlsplit(url).path).suffix.lower()
    return suffix if suffix.isascii() and 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ""


async def _check(state: ServerState, path: Path, field: MediaField) -> None:
    if not state.settings.check_media:
        return
    problem = await asyncio.to_thread(media_problem, path, field)
    if problem is not None:
        raise InputProblem(field, problem)


class ProbeCache:
    """Media-check results of this server's own uploads, keyed by (key, size, field): one upload is often
    the input of many jobs, and re-probing it each time would dominate the cost of a submit. (The engine
    validates its inputs again when it runs, so a stale entry cannot cause a wrong result.)"""

    def __init__(self, size: int = 4096) -> None:
        self._entries: OrderedDict[tuple[str, int, str], str | None] = OrderedDict()
        self._size = size

    async def check(self, state: ServerState, key: str, size: int, field: MediaField, scratch: Path) -> None:
        entry = (key, size, field)
        if entry not in self._entries:
            problem: str | None = None
            try:
                await _check(state, await state.storage.local_path(key, scratch), field)
            except InputProblem as exc:
                problem = exc.message
            self._entries[entry] = problem
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        self._entries.move_to_end(entry)
        if (problem := self._entries[entry]) is not None:
            raise InputProblem(field, problem)


_PROBES = ProbeCache()


class _Scratch:
    """A temporary directory created on first use (most submits never need one)."""

    def __init__(self) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def path(self) -> Path:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="lipsync-in-")
        return Path(self._tmp.name)

    @property
    def used(self) -> bool:
        return self._tmp is not None

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


async def _resolve_one(
    state: ServerState, job_id: str, field: MediaField, ref: str, base_url: str, scratch: _Scratch
) -> tuple[str, bool]:
    """Returns (storage key, whether it was stored for this job)."""
    settings = state.settings
    if ref[:5].lower() == "data:":
        try:
            mime, data = parse_data_uri(ref)
        except ValueError as exc:
            raise InputProblem(field, str(exc)) from None
        if len(data) > settings.max_input_bytes:
            raise InputProblem(field, f"larger than the {settings.max_input_bytes} byte limit")
        local = scratch.path / field
        await asyncio.to_thread(local.write_bytes, data)
        await _check(state, local, field)
        key = input_key(job_id, field, _extension(mime, ""))
        await state.storage.put_file(key, local)
        return key, True

    own = state.signer.parse_download_url(ref, now=state.clock.now())
    if own is not None:
        size = await state.storage.size(own.key)
        if size is None:
            raise InputProblem(field, "the uploaded file no longer exists")
        await _PROBES.check(state, own.key, size, field, scratch.path)
        return own.key, False
    parts = urlsplit(ref)
    if parts.path.startswith(DOWNLOAD_PREFIX) and parts.netloc == urlsplit(base_url).netloc:
        raise InputProblem(field, "this server's download link is invalid or has expired")

    local = scratch.path / field
    try:
        fetched = await state.fetcher.fetch(ref, local)
    except MediaFetchError as exc:
        raise InputProblem(field, f"could not fetch the URL: {exc.message}") from None
    await _check(state, local, field)
    key = input_key(job_id, field, _extension(fetched.content_type, fetched.final_url))
    await state.storage.put_file(key, local)
    return key, True


async def resolve_inputs(
    state: ServerState, job_id: str, request: LipsyncRequest, base_url: str
) -> tuple[dict[str, str], int]:
    """Storage keys of both inputs and the milliseconds it took; raises InputProblem."""
    started = time.monotonic()
    scratch = _Scratch()
    refs: tuple[tuple[MediaField, str], ...] = (("video", request.video), ("audio", request.audio))
    now = state.clock.now()
    remote = [
        ref[:5].lower() != "data:" and state.signer.parse_download_url(ref, now=now) is None
        for _, ref in refs
    ]
    results: list[tuple[str, bool] | BaseException] = []
    try:
        if all(remote):  # two downloads: in parallel
            results = list(
                await asyncio.gather(
                    *(_resolve_one(state, job_id, field, ref, base_url, scratch) for field, ref in refs),
                    return_exceptions=True,
                )
            )
        else:
            # Local work only (uploads, data URIs) or one download: in turn. A gather would hand each
            # part back to the event loop and wait a full round of every other request in between.
            for field, ref in refs:
                try:
                    results.append(await _resolve_one(state, job_id, field, ref, base_url, scratch))
                except Exception as exc:
                    results.append(exc)
    finally:
        if scratch.used:
            await asyncio.to_thread(scratch.cleanup)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        if any(isinstance(r, tuple) and r[1] for r in results):
            await state.storage.delete_prefix(f"inputs/{job_id}")
        problem = next((f for f in failures if isinstance(f, InputProblem)), failures[0])
        raise problem
    keys: dict[str, str] = {}
    for (field, _ref), result in zip(refs, results, strict=True):
        assert isinstance(result, tuple)
        keys[field] = result[0]
    return keys, round((time.monotonic() - started) * 1000)
