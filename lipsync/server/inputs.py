"""Turning a job's ``video``/``audio`` references into checked media in storage (before it is queued).

Submit only records what the request named (``stash_sources``): an http(s) URL as it is, a ``data:`` URI
as its text in storage (under ``inputs/<job>/source/``, so a job survives a restart before its inputs
were resolved, and the store's rows stay small). ``resolve_inputs`` then runs in the background of the
API process (see ``resolver.py``), one of:

- a ``data:`` URI: decoded (size-capped) and stored;
- a download link of this server (an upload's ``download_url``, recognised by its valid signature, on
  any host name): used in place, with no HTTP request, so uploads work on a loopback-only server;
- any other http(s) URL: downloaded by the Fetcher (SSRF guard, size and time caps) and stored.

Every input is then checked to be media of the right kind (``media_check``). A problem is an
``InputProblem`` naming the field, with WaveSpeed's task code: 1402 when the media could not be obtained
(unreachable, refused by the SSRF guard, too large, too slow), 1401 when the bytes are not usable media of
that kind. The job then ends ``failed`` with it and is never queued.
"""

from __future__ import annotations

import asyncio
import mimetypes
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from contracts import LipsyncRequest, Paths, data_uri_size, is_data_uri, parse_data_uri
from lipsync.errors import LipsyncError, MediaFetchError
from lipsync.server.interfaces import Fetcher, JobRecord, Storage
from lipsync.server.keys import check_key, input_key
from lipsync.server.media_check import MediaField, media_problem
from lipsync.server.settings import ServerSettings
from lipsync.server.signing import DOWNLOAD_PREFIX, UrlSigner

__all__ = [
    "STORED",
    "InputDeps",
    "InputProblem",
    "ProbeCache",
    "carries_data_uri",
    "oversize_data_uri",
    "resolve_inputs",
    "source_prefix",
    "stash_sources",
]

#: ``JobRecord.sources`` value prefix of a ``data:`` URI kept in storage at submit.
STORED = "stored:"

FIELDS: tuple[MediaField, ...] = ("video", "audio")


class InputProblem(Exception):
    """An input that cannot be used; ``error`` (``<type>: input '<field>': <reason>``) and ``code`` are
    what the failed job reports."""

    def __init__(self, field: str, cause: LipsyncError) -> None:
        self.field = field
        self.cause = cause
        self.code = cause.wavespeed_code
        self.error = f"{cause.error_type}: input '{field}': {cause.message}"
        super().__init__(self.error)


@dataclass(frozen=True)
class InputDeps:
    """What resolving inputs needs (the API's backends, or a Modal sweep's)."""

    settings: ServerSettings
    storage: Storage
    fetcher: Fetcher
    signer: UrlSigner


def source_prefix(job_id: str) -> str:
    """Where a job's ``data:`` URIs are kept until its inputs are resolved."""
    return f"inputs/{job_id}/source"


def carries_data_uri(request: LipsyncRequest) -> bool:
    """Whether an input of *request* is a ``data:`` URI (stored at submit, unlike a URL)."""
    return any(is_data_uri(getattr(request, field)) for field in FIELDS)


def oversize_data_uri(request: LipsyncRequest, limit: int) -> str | None:
    """The 400 message for a ``data:`` URI carrying more than *limit* bytes (counted, not decoded), or None."""
    for field in FIELDS:
        ref: str = getattr(request, field)
        if is_data_uri(ref) and (size := data_uri_size(ref)) > limit:
            return (
                f"Invalid parameter '{field}': the data: URI carries {size} bytes, more than the {limit} byte "
                f"limit for one input; upload the file instead (POST {Paths.UPLOAD_TICKET})"
            )
    return None


async def stash_sources(storage: Storage, job_id: str, request: LipsyncRequest) -> dict[str, str]:
    """The job's ``sources``: URLs as they are; ``data:`` URIs written to storage (one write, no decoding)."""
    sources: dict[str, str] = {}
    for field in FIELDS:
        ref: str = getattr(request, field)
        if is_data_uri(ref):
            key = check_key(f"{source_prefix(job_id)}/{field}")
            await storage.put_bytes(key, ref.encode("utf-8", "surrogatepass"))
            ref = STORED + key
        sources[field] = ref
    return sources


def _extension(mime: str | None, url: str) -> str:
    if mime:
        ext = mimetypes.guess_extension(mime.split(";", 1)[0].strip())
        if ext:
            return ext
    suffix = Path(urlsplit(url).path).suffix.lower()
    return suffix if suffix.isascii() and 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ""


def _unreachable(field: str, reason: str) -> InputProblem:
    return InputProblem(field, MediaFetchError(reason))


async def _check(deps: InputDeps, path: Path, field: MediaField) -> None:
    if not deps.settings.check_media:
        return
    problem = await asyncio.to_thread(media_problem, path, field)
    if problem is not None:
        raise InputProblem(field, problem)


class _Scratch:
    """A temporary directory created on first use (uploads and local files need none)."""

    def __init__(self) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def path(self) -> Path:
        if self._tmp is None:
            # A cancelled resolution may leave a download thread writing here while the directory goes.
            self._tmp = tempfile.TemporaryDirectory(prefix="lipsync-in-", ignore_cleanup_errors=True)
        return Path(self._tmp.name)

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


class ProbeCache:
    """Media-check results of this server's own uploads, keyed by (key, size, field): one upload is often
    the input of many jobs, and re-probing it each time would dominate the cost of resolving them. (The
    engine validates its inputs again when it runs, so a stale entry cannot cause a wrong result.)"""

    def __init__(self, size: int = 4096) -> None:
        self._entries: OrderedDict[tuple[str, int, str], LipsyncError | None] = OrderedDict()
        self._size = size

    async def check(self, deps: InputDeps, key: str, size: int, field: MediaField, scratch: _Scratch) -> None:
        entry = (key, size, field)
        if entry not in self._entries:
            problem: LipsyncError | None = None
            try:
                # ``scratch.path`` only here: a hit creates (and later deletes) no directory. Under a
                # submit-heavy load that mkdtemp + rmtree on the event loop was ~14 % of the API process.
                await _check(deps, await deps.storage.local_path(key, scratch.path), field)
            except InputProblem as exc:
                problem = exc.cause
            self._entries[entry] = problem
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        self._entries.move_to_end(entry)
        if (problem := self._entries[entry]) is not None:
            raise InputProblem(field, problem)


_PROBES = ProbeCache()


async def _from_data_uri(
    deps: InputDeps, job_id: str, field: MediaField, stored_key: str, scratch: _Scratch
) -> str:
    try:
        path = await deps.storage.local_path(stored_key, scratch.path)
    except FileNotFoundError:
        raise _unreachable(field, "the data: URI sent with the request is no longer stored") from None
    raw = await asyncio.to_thread(path.read_bytes)
    try:
        mime, data = await asyncio.to_thread(parse_data_uri, raw.decode("utf-8", "surrogatepass"))
    except ValueError as exc:  # validated at submit; kept for files written by older versions
        raise _unreachable(field, str(exc)) from None
    limit = deps.settings.max_input_bytes
    if len(data) > limit:
        raise _unreachable(field, f"larger than the {limit} byte limit")
    local = scratch.path / field
    await asyncio.to_thread(local.write_bytes, data)
    await _check(deps, local, field)
    key = input_key(job_id, field, _extension(mime, ""))
    await deps.storage.put_file(key, local)
    return key


async def _resolve_one(
    deps: InputDeps, job: JobRecord, field: MediaField, ref: str, scratch: _Scratch
) -> str:
    """The storage key of one checked input."""
    if ref.startswith(STORED):
        return await _from_data_uri(deps, job.id, field, ref[len(STORED) :], scratch)

    # Our own links are judged as of the submit: a job resumed after a restart still uses them.
    own = deps.signer.parse_download_url(ref, now=job.created_at)
    if own is not None:
        size = await deps.storage.size(own.key)
        if size is None:
            raise _unreachable(field, "the uploaded file no longer exists")
        await _PROBES.check(deps, own.key, size, field, scratch)
        return own.key
    parts = urlsplit(ref)
    if parts.path.startswith(DOWNLOAD_PREFIX) and parts.netloc == urlsplit(job.base_url).netloc:
        raise _unreachable(field, "this server's download link is invalid or has expired")

    local = scratch.path / field
    try:
        fetched = await deps.fetcher.fetch(ref, local)
    except MediaFetchError as exc:
        raise _unreachable(field, f"could not fetch the URL: {exc.message}") from None
    await _check(deps, local, field)
    key = input_key(job.id, field, _extension(fetched.content_type, fetched.final_url))
    await deps.storage.put_file(key, local)
    return key


async def _bounded(deps: InputDeps, job: JobRecord, field: MediaField, scratch: _Scratch) -> str:
    limit = deps.settings.resolve_timeout_s
    try:
        async with asyncio.timeout(limit):
            return await _resolve_one(deps, job, field, job.sources[field], scratch)
    except TimeoutError:
        raise _unreachable(field, f"getting and checking it took longer than {limit:g} s") from None


async def resolve_inputs(deps: InputDeps, job: JobRecord) -> tuple[dict[str, str], int]:
    """Storage keys of both inputs of *job* (from ``job.sources``) and the milliseconds it took.

    Raises InputProblem (the first field's, when both fail). Each input is capped at
    ``resolve_timeout_s``; two downloads run in parallel, anything else in turn.
    """
    started = time.monotonic()
    scratch = _Scratch()
    now = job.created_at
    remote = [
        not ref.startswith(STORED) and deps.signer.parse_download_url(ref, now=now) is None
        for ref in (job.sources[f] for f in FIELDS)
    ]
    results: list[str | BaseException] = []
    try:
        if all(remote):  # two downloads: in parallel
            results = list(
                await asyncio.gather(
                    *(_bounded(deps, job, field, scratch) for field in FIELDS), return_exceptions=True
                )
            )
        else:
            for field in FIELDS:
                try:
                    results.append(await _bounded(deps, job, field, scratch))
                except Exception as exc:
                    results.append(exc)
    finally:
        # Inline, not in a thread: a second cancel (a client's, then the server's shutdown) could drop a
        # queued thread job, and unlinking at most two files is quick.
        scratch.cleanup()
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise next((f for f in failures if isinstance(f, InputProblem)), failures[0])
    keys: dict[str, str] = {f: r for f, r in zip(FIELDS, results, strict=True) if isinstance(r, str)}
    return keys, round((time.monotonic() - started) * 1000)
