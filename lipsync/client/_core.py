"""The I/O-free half of both clients: building requests, reading responses, and deciding retries.

``Client`` and ``AsyncClient`` differ only in how they send a request and sleep; everything they decide
(what to send, whether to retry and how long to wait, what an answer means) lives here, once.
"""

from __future__ import annotations

import base64
import binascii
import io
import mimetypes
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final, Literal, TypedDict
from urllib.parse import unquote, urljoin, urlsplit

import httpx
import pydantic

from contracts import (
    FaceChoice,
    LipsyncRequest,
    LoopMode,
    ModelVersion,
    OnNoFace,
    Prediction,
    RunOptions,
    TaskErrorCode,
    UploadTicket,
    describe_validation_error,
    is_data_uri,
    parse_data_uri,
    result_url,
)
from lipsync.client._backoff import Clock, RetryPolicy, parse_retry_after
from lipsync.client._exceptions import (
    APIError,
    AuthenticationError,
    ClientError,
    JobFailed,
    JobTimeout,
    NotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
    ValidationError,
)
from lipsync.errors import InputError

__all__ = [
    "CHUNK_SIZE",
    "Deadline",
    "MediaInput",
    "RetryKind",
    "RetryState",
    "SubmitOptions",
    "UploadSource",
    "UploadSourceInput",
    "check_finished",
    "decode_inline_output",
    "download_target",
    "error_from_response",
    "is_remote",
    "next_poll_delay",
    "parse_prediction",
    "parse_ticket",
    "parse_upload_result",
    "request_options",
    "resolve_url",
    "same_origin",
    "submit_body",
]

CHUNK_SIZE: Final = 1 << 20

#: A media argument: a URL / ``data:`` URI string is sent as is; a path object is uploaded first.
MediaInput = str | os.PathLike[str]
#: What ``upload()`` accepts.
UploadSourceInput = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


class SubmitOptions(TypedDict, total=False):
    """The optional request fields as keywords (``contracts.RunOptions``' fields plus the two delivery
    flags); only the ones passed are sent. A typing aid only: ``LipsyncRequest`` validates them, and a test
    keeps these keys and types equal to its fields.

    Leaving them out keeps the body exactly ``{"audio", "video"}``, which is all the hosted WaveSpeed model
    accepts; our server applies the reference defaults (seed 1247, guidance 1.5, 20 steps, pingpong).
    """

    seed: int
    guidance_scale: float
    inference_steps: int
    loop_mode: LoopMode
    model_version: ModelVersion
    on_no_face: OnNoFace
    deep_cache: bool
    face: FaceChoice
    enable_sync_mode: bool
    enable_base64_output: bool


# -- requests -------------------------------------------------------------------------------------------------


#: Stands in for the media while the options are checked alone (a valid ``data:`` URI, never sent).
_NO_MEDIA: Final = "data:,-"


def request_options(options: RunOptions | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The optional body fields: those set in *options*, then *fields*. Checked now, with the request
    contract, so that a bad option fails before any upload (InputError naming the field)."""
    merged = {
        **(options.run_options().model_dump(mode="json", exclude_unset=True) if options else {}),
        **fields,
    }
    try:
        LipsyncRequest.model_validate({**merged, "audio": _NO_MEDIA, "video": _NO_MEDIA})
    except pydantic.ValidationError as exc:
        message, field = describe_validation_error(exc)
        raise InputError(message, field=field) from None
    return merged


def submit_body(video: str, audio: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate locally with the shared contract (the server would answer 400 anyway) and build the body."""
    try:
        request = LipsyncRequest.model_validate({"audio": audio, "video": video, **options})
    except pydantic.ValidationError as exc:
        message, field = describe_validation_error(exc)
        for name, value in (("video", video), ("audio", audio)):
            if field == name and not is_remote(value) and Path(value).exists():
                message += f"; {value!r} is a local file: pass pathlib.Path({value!r}) to upload it first"
        raise InputError(message, field=field) from None
    return request.model_dump(mode="json", exclude_unset=True)


def is_remote(value: str) -> bool:
    """True for what the server can fetch itself: http(s) URLs and ``data:`` URIs."""
    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    return scheme in ("http", "https", "data")


def same_origin(url: str, base_url: str) -> bool:
    """Whether ``url`` is served by the API itself (only then may it see the API key)."""
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


# -- responses ------------------------------------------------------------------------------------------------

_REQUEST_ID_HEADERS: Final = ("x-request-id", "x-wavespeed-request-id", "request-id", "x-amzn-requestid")


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def error_from_response(
    response: httpx.Response,
    *,
    job_id: str | None = None,
    has_api_key: bool = True,
    retry_after: float | None,
) -> APIError:
    """The exception for a non-2xx answer, carrying the envelope's code and message when there is one."""
    status = response.status_code
    body = _json_or_text(response)
    code: int | None = None
    message = ""
    if isinstance(body, dict):
        raw_code = body.get("code")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
        # WaveSpeed uses "message"; its webhook/base64 400 uses "error"; FastAPI's own errors use "detail".
        for key in ("message", "error", "detail"):
            if body.get(key):
                message = str(body[key])
                break
    elif isinstance(body, str):
        message = body.strip()[:500]
    message = message or (response.reason_phrase or "error")
    request_id = next((response.headers[h] for h in _REQUEST_ID_HEADERS if h in response.headers), None)
    kwargs: dict[str, Any] = {"request_id": request_id, "job_id": job_id}
    if status == 429:
        return RateLimitError(status, code, message, body, retry_after=retry_after, **kwargs)
    if status in (401, 403):
        if not has_api_key:
            message += " (no API key configured: pass api_key= or set LIPSYNC_API_KEY / WAVESPEED_API_KEY)"
        return AuthenticationError(status, code, message, body, **kwargs)
    if status == 404:
        return NotFoundError(status, code, message, body, **kwargs)
    if status in (400, 422):
        return ValidationError(status, code, message, body, **kwargs)
    if status >= 500:
        return ServerError(status, code, message, body, **kwargs)
    return APIError(status, code, message, body, **kwargs)


def _envelope_data(response: httpx.Response, what: str) -> dict[str, Any]:
    body = _json_or_text(response)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        shown = body if isinstance(body, str) else repr(body)
        raise APIError(
            response.status_code, None, f"malformed {what} response (no data object): {shown[:200]}", body
        )
    return data


#: Statuses the real WaveSpeed service can report that our contract does not emit, and the task code
#: each one gets when folded into ``failed`` (the official SDK treats all three as terminal failures).
_FOREIGN_TERMINAL: Final = {
    "cancelled": int(TaskErrorCode.TASK_FAILED),
    "timeout": int(TaskErrorCode.TIMEOUT),
    "deleted": int(TaskErrorCode.TASK_FAILED),
}


def parse_prediction(response: httpx.Response, base_url: str) -> Prediction:
    """``data`` of a submit/result/cancel response as a :class:`Prediction`.

    Lenient where the official SDK is (it reads only ``id``, ``status``, ``outputs`` and ``error``), so the
    client works against the hosted service and minimal servers too: a missing ``urls``/``created_at`` is
    filled in, ``cancelled``/``timeout``/``deleted`` become ``failed`` (original kept in
    ``wavespeed_status``), and any other unknown status means "still running", as the SDK treats it.
    """
    data = dict(_envelope_data(response, "prediction"))
    if isinstance(data.get("id"), str) and data["id"]:
        if not isinstance(data.get("urls"), dict) or not data["urls"].get("get"):
            data["urls"] = {"get": result_url(base_url, data["id"])}
        data.setdefault("created_at", "")
    status = data.get("status")
    if isinstance(status, str) and status not in ("created", "processing", "completed", "failed"):
        data["wavespeed_status"] = status
        if status in _FOREIGN_TERMINAL:
            data["status"] = "failed"
            data["error"] = data.get("error") or f"prediction {status}"
            if data.get("code") is None:
                data["code"] = _FOREIGN_TERMINAL[status]
        else:
            data["status"] = "processing"
    try:
        return Prediction.model_validate(data)
    except pydantic.ValidationError as exc:
        message, _ = describe_validation_error(exc)
        raise APIError(response.status_code, None, f"malformed prediction: {message}", data) from None


def check_finished(prediction: Prediction) -> bool:
    """True when completed, False while running; raises :class:`JobFailed` for a failed prediction."""
    if prediction.status == "completed":
        return True
    if prediction.status == "failed":
        raise JobFailed(prediction.id, prediction.code, prediction.error, prediction=prediction)
    return False


def parse_ticket(response: httpx.Response) -> UploadTicket:
    """The ticket of ``POST /media/uploads``, checked as strictly as the official SDK checks it."""
    body = _json_or_text(response)
    if not isinstance(body, dict) or body.get("code") != 200:
        message = body.get("message") if isinstance(body, dict) else None
        raise APIError(response.status_code, None, f"upload failed: {message or 'ticket not granted'}", body)
    data = _envelope_data(response, "upload ticket")
    try:
        ticket = UploadTicket.model_validate(data)
    except pydantic.ValidationError as exc:
        message, _ = describe_validation_error(exc)
        raise APIError(
            response.status_code, 200, f"upload failed: invalid upload instruction: {message}", body
        ) from None
    if not ticket.upload.url or not ticket.download_url:
        raise APIError(response.status_code, 200, "upload failed: invalid upload instruction", body)
    return ticket


def parse_upload_result(response: httpx.Response) -> str:
    """``data.download_url`` of the legacy ``POST /media/upload/binary``."""
    data = _envelope_data(response, "upload")
    url = data.get("download_url")
    if not isinstance(url, str) or not url:
        raise APIError(response.status_code, None, "upload failed: no download_url in response", data)
    return url


# -- retries and deadlines ------------------------------------------------------------------------------------

#: ``idempotent``: safe to resend on 429, 5xx and any transport error (GET, PUT, cancel, uploads).
#: ``submit``: a POST that may have landed, so only resent when it certainly was not processed: a 429
#: (rejected) or a connection that failed before the request went out.
RetryKind = Literal["idempotent", "submit"]

#: httpx errors raised before a single byte of the request was sent.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class RetryState:
    """The retry decisions for one logical request; the caller sends, sleeps and resends."""

    def __init__(
        self,
        policy: RetryPolicy,
        kind: RetryKind,
        clock: Clock,
        *,
        deadline: Deadline | None = None,
        job_id: str | None = None,
    ) -> None:
        self.job_id = job_id
        self.policy = policy
        self.kind = kind
        self.clock = clock
        self.deadline = deadline
        self.retries = 0
        self.last_retry_after: float | None = None

    def after_response(self, response: httpx.Response) -> float | None:
        """Seconds to wait before resending, or None to hand this response to the caller."""
        status = response.status_code
        self.last_retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock.time())
        if status not in self.policy.retry_statuses:
            return None
        if self.kind == "submit" and status != 429:
            return None
        if self.last_retry_after is not None and self.last_retry_after > self.policy.max_retry_after:
            return None
        return self._next_delay(self.last_retry_after)

    def after_error(self, exc: httpx.TransportError, what: str) -> float:
        """Seconds to wait before resending; raises :class:`TransportError` when giving up."""
        if isinstance(exc, httpx.UnsupportedProtocol):
            raise TransportError(f"{what}: {exc}", job_id=self.job_id) from exc
        if self.kind == "submit" and not isinstance(exc, _NOT_SENT):
            raise TransportError(
                f"{what}: {type(exc).__name__}: {exc}; not retried because the request may have reached the "
                "server (check get() or the history before submitting again)",
                job_id=self.job_id,
            ) from exc
        delay = self._next_delay(None)
        if delay is None:
            tries = self.retries + 1
            raise TransportError(
                f"{what}: {type(exc).__name__}: {exc} (after {tries} attempts)", job_id=self.job_id
            ) from exc
        return delay

    def _next_delay(self, retry_after: float | None) -> float | None:
        if self.retries >= self.policy.max_retries:
            return None
        delay = retry_after if retry_after is not None else self.policy.backoff(self.retries)
        if self.deadline is not None:
            remaining = self.deadline.remaining()
            # Retrying past the caller's deadline is pointless: hand back the error we have now.
            if remaining is not None and delay >= remaining:
                return None
        self.retries += 1
        return delay


class Deadline:
    """The overall limit of one ``wait()`` call."""

    def __init__(self, job_id: str, timeout: float | None, clock: Clock) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 or None, got {timeout}")
        self.job_id = job_id
        self.timeout = timeout
        self.clock = clock
        self.started = clock.monotonic()

    def elapsed(self) -> float:
        return self.clock.monotonic() - self.started

    def remaining(self) -> float | None:
        return None if self.timeout is None else self.timeout - self.elapsed()

    def expired(self, last: Prediction | None) -> JobTimeout:
        return JobTimeout(self.job_id, self.elapsed(), prediction=last)


def next_poll_delay(
    deadline: Deadline, current: Prediction, hint: float | None, schedule: Iterator[float]
) -> float:
    """How long ``wait()`` sleeps before the next poll; raises :class:`JobTimeout` once the deadline passed.

    The server's ``Retry-After`` hint wins over the schedule; the last sleep is shortened so that one final
    poll happens exactly at the deadline.
    """
    delay = hint if hint is not None else next(schedule)
    remaining = deadline.remaining()
    if remaining is None:
        return delay
    if remaining <= 0:
        raise deadline.expired(current)
    return min(delay, remaining)


# -- uploads and downloads ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadSource:
    """Bytes to upload, re-openable so a retried PUT can send them again."""

    filename: str
    size: int
    content_type: str | None
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def of(cls, source: UploadSourceInput, filename: str | None, content_type: str | None) -> UploadSource:
        path: Path | None = None
        data: bytes | None = None
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if not path.is_file():
                raise InputError(f"no such file to upload: {str(path)!r}", field="file")
            size = path.stat().st_size
            name = filename or path.name
        elif isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            size = len(data)
            name = filename or "upload"
        else:
            # A file object: read it once (the official SDK does the same for streams, up to 200 MB).
            data = source.read()
            size = len(data)
            raw_name = getattr(source, "name", None)
            name = filename or (Path(raw_name).name if isinstance(raw_name, str) else "upload")
        guessed = content_type or mimetypes.guess_type(name)[0]
        return cls(filename=name, size=size, content_type=guessed, path=path, data=data)

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        if self.path is not None:
            with self.path.open("rb") as fh:
                yield fh
        else:
            yield io.BytesIO(self.data or b"")

    def chunks(self) -> Iterator[bytes]:
        with self.open() as fh:
            while chunk := fh.read(CHUNK_SIZE):
                yield chunk


def download_target(dest: str | os.PathLike[str], url: str | None) -> Path:
    """The file to write: ``dest`` itself, or a name taken from the URL when ``dest`` is a directory."""
    path = Path(dest)
    if path.is_dir():
        name = PurePosixPath(unquote(urlsplit(url).path)).name if url else ""
        path = path / (name or "output.mp4")
    return path


def decode_inline_output(output: str) -> bytes:
    """The bytes of a non-URL output: a ``data:`` URI, or the raw base64 of ``enable_base64_output``."""
    if is_data_uri(output):
        try:
            return parse_data_uri(output)[1]
        except ValueError as exc:
            raise ClientError(f"cannot decode output data: URI: {exc}") from None
    try:
        return base64.b64decode(output, validate=True)
    except (binascii.Error, ValueError):
        raise ClientError(f"output is neither a URL nor base64: {output[:60]!r}") from None


def resolve_url(url: str, base_url: str) -> str:
    """Absolute form of a URL the server returned (relative ones are relative to the API root)."""
    return urljoin(base_url + "/", url)
