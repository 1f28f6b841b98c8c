"""The blocking client."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self, Unpack

import httpx

from contracts import Paths, Prediction, RunOptions
from lipsync.client._backoff import Clock, PollSchedule, RetryPolicy
from lipsync.client._base import BaseClient, JobRef
from lipsync.client._config import NOT_GIVEN, NotGiven
from lipsync.client._core import (
    CHUNK_SIZE,
    Deadline,
    MediaInput,
    RetryKind,
    RetryState,
    SubmitOptions,
    UploadSource,
    UploadSourceInput,
    check_finished,
    decode_inline_output,
    download_target,
    error_from_response,
    next_poll_delay,
    parse_prediction,
    parse_ticket,
    parse_upload_result,
    request_options,
    submit_body,
)
from lipsync.client._exceptions import TransportError

__all__ = ["Client"]

#: Called with every prediction ``wait()`` observes (status, ``progress`` when the server reports it).
ProgressCallback = Callable[[Prediction], object]


class Client(BaseClient):
    """Blocking client for WaveSpeed's ``bytedance/lipsync/audio-to-video`` API and compatible servers.

    The same code talks to WaveSpeed, ``lipsync serve``, a Modal deployment or the mock; only ``base_url``
    changes. Arguments left out come from the environment (``LIPSYNC_BASE_URL``, ``LIPSYNC_API_KEY``, then
    ``WAVESPEED_API_KEY``); ``None`` means "no key" / "the default URL" without reading the environment.

    Seams for tests and embedding: ``transport`` (e.g. ``httpx.MockTransport`` or respx) or a ready
    ``http_client`` (not closed by us); ``sleep`` and ``clock`` (so retries and polling never really wait);
    ``env`` (instead of ``os.environ``).
    """

    def __init__(
        self,
        base_url: str | NotGiven | None = NOT_GIVEN,
        api_key: str | NotGiven | None = NOT_GIVEN,
        *,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry: RetryPolicy | None = None,
        poll: PollSchedule | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            poll=poll,
            clock=clock,
            env=env,
        )
        if http_client is not None and transport is not None:
            raise ValueError("pass either transport= or http_client=, not both")
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            transport=transport, timeout=self.timeout, follow_redirects=True
        )
        self._sleep = sleep or time.sleep

    # -- lifecycle --------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool (only if this client created it)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the API ----------------------------------------------------------------------------------------------

    def submit(
        self,
        video: MediaInput,
        audio: MediaInput,
        options: RunOptions | None = None,
        *,
        webhook: str | None = None,
        **fields: Unpack[SubmitOptions],
    ) -> Prediction:
        """``POST /api/v3/bytedance/lipsync/audio-to-video``; returns the new prediction (status ``created``).

        ``video``/``audio`` are URLs or ``data:`` URIs; a ``pathlib.Path`` is uploaded first. ``options`` (a
        ``contracts.RunOptions``, its set fields) and the keyword ``fields`` (RunOptions' fields and the
        delivery flags, applied on top) are the optional request fields, sent only when given, and checked
        before any upload; ``webhook`` is the ``?webhook=`` callback URL. With
        ``enable_sync_mode=True`` the answer is the finished prediction, or a ``processing`` one with code
        5004 when the server's sync wait ran out (then call :meth:`wait`).

        Never resent after an ambiguous failure (the job may exist already); resent only on 429 and on
        connection errors raised before the request went out.
        """
        chosen = request_options(options, fields)  # before any upload: a bad option must not cost one
        body = submit_body(self._media(video), self._media(audio), chosen)
        response = self._send(
            lambda: self._http.build_request(
                "POST",
                self._url(Paths.SUBMIT),
                json=body,
                params=self._submit_params(webhook),
                headers=self._api_headers(),
                timeout=self._submit_timeout(body),
            ),
            kind="submit",
            what="submit",
        )
        return parse_prediction(response, self.base_url)

    def get(self, job: JobRef) -> Prediction:
        """``GET /api/v3/predictions/{id}/result`` (retried on 429, 5xx and transport errors)."""
        return self._get(self._job_id(job), deadline=None)[0]

    def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        max_poll_interval: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Prediction:
        """Poll until the prediction completes and return it.

        Raises :class:`JobFailed` when it fails and :class:`JobTimeout` when ``timeout`` seconds pass first
        (one last poll happens at the deadline). Polls start ``poll_interval`` apart and slow down to
        ``max_poll_interval``; a ``Retry-After`` on a poll response sets the next delay. ``on_progress`` sees
        every prediction observed, including its ``progress`` (0..1) when the server reports one.
        """
        job_id = self._job_id(job)
        deadline = Deadline(job_id, timeout, self.clock)
        schedule = self._schedule(poll_interval, max_poll_interval)
        current = job if isinstance(job, Prediction) else None
        hint: float | None = None
        if current is not None:
            # We already know this state (typically a fresh submit): report it and wait before the first poll.
            if on_progress is not None:
                on_progress(current)
            if check_finished(current):
                return current
            self._sleep(next_poll_delay(deadline, current, hint, schedule))
        while True:
            current, hint = self._get(job_id, deadline=deadline)
            if on_progress is not None:
                on_progress(current)
            if check_finished(current):
                return current
            self._sleep(next_poll_delay(deadline, current, hint, schedule))

    def run(
        self,
        video: MediaInput,
        audio: MediaInput,
        options: RunOptions | None = None,
        *,
        webhook: str | None = None,
        timeout: float | None = None,
        poll_interval: float | None = None,
        on_progress: ProgressCallback | None = None,
        **fields: Unpack[SubmitOptions],
    ) -> Prediction:
        """:meth:`submit` then :meth:`wait`; returns the completed prediction (``outputs[0]`` is the video)."""
        prediction = self.submit(video, audio, options, webhook=webhook, **fields)
        return self.wait(prediction, timeout=timeout, poll_interval=poll_interval, on_progress=on_progress)

    def cancel(self, job: JobRef) -> Prediction:
        """``POST /api/v3/predictions/{id}/cancel`` (our extension; WaveSpeed answers 404 -> NotFoundError)."""
        job_id = self._job_id(job)
        response = self._send(
            lambda: self._http.build_request(
                "POST", self._url(Paths.CANCEL.format(id=job_id)), headers=self._api_headers()
            ),
            kind="idempotent",
            what="cancel",
            job_id=job_id,
        )
        return parse_prediction(response, self.base_url)

    def upload(
        self, source: UploadSourceInput, filename: str | None = None, content_type: str | None = None
    ) -> str:
        """Upload a file (path, bytes or binary file object) and return the URL to submit.

        Uses the ticket flow (``POST /api/v3/media/uploads``, then ``PUT`` to the URL it returns, with only the
        ticket's headers: a presigned URL must never see the API key); falls back to the legacy multipart
        ``POST /api/v3/media/upload/binary`` when the server has no ticket route (404/405).
        """
        src = UploadSource.of(source, filename, content_type)
        response = self._send(
            lambda: self._http.build_request(
                "POST",
                self._url(Paths.UPLOAD_TICKET),
                json=self._ticket_body(src),
                headers=self._api_headers(),
            ),
            kind="idempotent",
            what="upload ticket",
            accept=(404, 405),
        )
        if response.status_code in (404, 405):
            return self._upload_binary(src)
        ticket = parse_ticket(response)
        put_url = self._absolute(ticket.upload.url)
        headers = dict(ticket.upload.headers)
        if src.data is None:
            # A generator body would go out chunked; presigned storage URLs want a Content-Length.
            headers["Content-Length"] = str(src.size)
        self._send(
            lambda: self._http.build_request(
                "PUT", put_url, headers=headers, content=src.data if src.data is not None else src.chunks()
            ),
            kind="idempotent",
            what="upload PUT",
        )
        return self._absolute(ticket.download_url)

    def download(self, source: str | Prediction, dest: str | os.PathLike[str], *, index: int = 0) -> Path:
        """Save an output (a prediction's ``outputs[index]``, or a URL) to ``dest`` and return the path.

        Streams to ``<dest>.part`` and renames at the end, so ``dest`` never holds half a video. ``dest`` may
        be a directory (the URL's file name is used). Inline outputs (``data:`` URIs, or the raw base64 of
        ``enable_base64_output``) are decoded. The API key is sent only to the API's own origin.
        """
        output = self._output_of(source, index)
        job_id = source.id if isinstance(source, Prediction) else None
        is_url = output.split(":", 1)[0].lower() in ("http", "https") or output.startswith("/")
        target = download_target(dest, output if is_url else None)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        try:
            if not is_url:
                part.write_bytes(decode_inline_output(output))
            else:
                url = self._absolute(output)
                response = self._send(
                    lambda: self._http.build_request("GET", url, headers=self._download_headers(url)),
                    kind="idempotent",
                    what="download",
                    job_id=job_id,
                    stream=True,
                )
                try:
                    with part.open("wb") as fh:
                        for chunk in response.iter_bytes(CHUNK_SIZE):
                            fh.write(chunk)
                except httpx.HTTPError as exc:
                    raise TransportError(f"download of {url} broke off: {exc}", job_id=job_id) from exc
                finally:
                    response.close()
            part.replace(target)
        finally:
            part.unlink(missing_ok=True)
        return target

    # -- internals --------------------------------------------------------------------------------------------

    def _media(self, value: MediaInput) -> str:
        return value if isinstance(value, str) else self.upload(value)

    def _get(self, job_id: str, *, deadline: Deadline | None) -> tuple[Prediction, float | None]:
        """One result request; also returns the server's ``Retry-After`` hint for the next poll."""
        response = self._send(
            lambda: self._http.build_request(
                "GET", self._url(self._result_path(job_id)), headers=self._api_headers()
            ),
            kind="idempotent",
            what="get result",
            job_id=job_id,
            deadline=deadline,
        )
        return parse_prediction(response, self.base_url), self._retry_after(response)

    def _upload_binary(self, src: UploadSource) -> str:
        with src.open() as fh:
            files = {"file": (src.filename, fh, src.content_type or "application/octet-stream")}
            response = self._send(
                lambda: self._http.build_request(
                    "POST", self._url(Paths.UPLOAD_BINARY), files=files, headers=self._api_headers()
                ),
                kind="idempotent",
                what="upload (legacy binary)",
            )
        return self._absolute(parse_upload_result(response))

    def _send(
        self,
        make_request: Callable[[], httpx.Request],
        *,
        kind: RetryKind,
        what: str,
        job_id: str | None = None,
        deadline: Deadline | None = None,
        accept: Collection[int] = (),
        stream: bool = False,
    ) -> httpx.Response:
        """Send with retries; returns a 2xx (or ``accept``-ed) response, raises the matching error otherwise."""
        state = RetryState(self.retry, kind, self.clock, deadline=deadline, job_id=job_id)
        while True:
            request = make_request()
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                self._sleep(state.after_error(exc, what))
                continue
            except httpx.HTTPError as exc:  # e.g. too many redirects: resending would not help
                raise TransportError(f"{what}: {type(exc).__name__}: {exc}", job_id=job_id) from exc
            delay = state.after_response(response)
            if delay is None:
                if response.is_success or response.status_code in accept:
                    return response
                if stream:
                    response.read()
                raise error_from_response(
                    response,
                    job_id=job_id,
                    has_api_key=bool(self.api_key),
                    retry_after=state.last_retry_after,
                )
            response.close()
            self._sleep(delay)
