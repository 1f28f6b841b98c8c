"""The asyncio/trio client (same API as :class:`Client`, awaitable)."""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self, Unpack

import anyio
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

__all__ = ["AsyncClient"]

#: Called with every prediction ``wait()`` observes; may be a plain function or a coroutine function.
AsyncProgressCallback = Callable[[Prediction], object]


class AsyncClient(BaseClient):
    """Awaitable twin of :class:`lipsync.client.Client` (same arguments, same methods, same errors).

    ``sleep`` is an async callable (default ``anyio.sleep``), so it runs on asyncio and trio alike.
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
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
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
        self._http = http_client or httpx.AsyncClient(
            transport=transport, timeout=self.timeout, follow_redirects=True
        )
        self._sleep = sleep or anyio.sleep

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection pool (only if this client created it)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- the API ----------------------------------------------------------------------------------------------

    async def submit(
        self,
        video: MediaInput,
        audio: MediaInput,
        options: RunOptions | None = None,
        *,
        webhook: str | None = None,
        **fields: Unpack[SubmitOptions],
    ) -> Prediction:
        """See :meth:`lipsync.client.Client.submit`."""
        chosen = request_options(options, fields)  # before any upload: a bad option must not cost one
        body = submit_body(await self._media(video), await self._media(audio), chosen)
        response = await self._send(
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

    async def get(self, job: JobRef) -> Prediction:
        """See :meth:`lipsync.client.Client.get`."""
        return (await self._get(self._job_id(job), deadline=None))[0]

    async def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        max_poll_interval: float | None = None,
        on_progress: AsyncProgressCallback | None = None,
    ) -> Prediction:
        """See :meth:`lipsync.client.Client.wait`."""
        job_id = self._job_id(job)
        deadline = Deadline(job_id, timeout, self.clock)
        schedule = self._schedule(poll_interval, max_poll_interval)
        current = job if isinstance(job, Prediction) else None
        hint: float | None = None
        if current is not None:
            # We already know this state (typically a fresh submit): report it and wait before the first poll.
            await _notify(on_progress, current)
            if check_finished(current):
                return current
            await self._sleep(next_poll_delay(deadline, current, hint, schedule))
        while True:
            current, hint = await self._get(job_id, deadline=deadline)
            await _notify(on_progress, current)
            if check_finished(current):
                return current
            await self._sleep(next_poll_delay(deadline, current, hint, schedule))

    async def run(
        self,
        video: MediaInput,
        audio: MediaInput,
        options: RunOptions | None = None,
        *,
        webhook: str | None = None,
        timeout: float | None = None,
        poll_interval: float | None = None,
        on_progress: AsyncProgressCallback | None = None,
        **fields: Unpack[SubmitOptions],
    ) -> Prediction:
        """See :meth:`lipsync.client.Client.run`."""
        prediction = await self.submit(video, audio, options, webhook=webhook, **fields)
        return await self.wait(
            prediction, timeout=timeout, poll_interval=poll_interval, on_progress=on_progress
        )

    async def cancel(self, job: JobRef) -> Prediction:
        """See :meth:`lipsync.client.Client.cancel`."""
        job_id = self._job_id(job)
        response = await self._send(
            lambda: self._http.build_request(
                "POST", self._url(Paths.CANCEL.format(id=job_id)), headers=self._api_headers()
            ),
            kind="idempotent",
            what="cancel",
            job_id=job_id,
        )
        return parse_prediction(response, self.base_url)

    async def upload(
        self, source: UploadSourceInput, filename: str | None = None, content_type: str | None = None
    ) -> str:
        """See :meth:`lipsync.client.Client.upload`."""
        src = UploadSource.of(source, filename, content_type)
        response = await self._send(
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
            return await self._upload_binary(src)
        ticket = parse_ticket(response)
        put_url = self._absolute(ticket.upload.url)
        headers = dict(ticket.upload.headers)
        if src.data is None:
            headers["Content-Length"] = str(src.size)
        await self._send(
            lambda: self._http.build_request(
                "PUT",
                put_url,
                headers=headers,
                content=src.data if src.data is not None else _file_chunks(src),
            ),
            kind="idempotent",
            what="upload PUT",
        )
        return self._absolute(ticket.download_url)

    async def download(
        self, source: str | Prediction, dest: str | os.PathLike[str], *, index: int = 0
    ) -> Path:
        """See :meth:`lipsync.client.Client.download`."""
        output = self._output_of(source, index)
        job_id = source.id if isinstance(source, Prediction) else None
        is_url = output.split(":", 1)[0].lower() in ("http", "https") or output.startswith("/")
        target = download_target(dest, output if is_url else None)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        try:
            if not is_url:
                await anyio.Path(part).write_bytes(decode_inline_output(output))
            else:
                url = self._absolute(output)
                response = await self._send(
                    lambda: self._http.build_request("GET", url, headers=self._download_headers(url)),
                    kind="idempotent",
                    what="download",
                    job_id=job_id,
                    stream=True,
                )
                try:
                    async with await anyio.open_file(part, "wb") as fh:
                        async for chunk in response.aiter_bytes(CHUNK_SIZE):
                            await fh.write(chunk)
                except httpx.HTTPError as exc:
                    raise TransportError(f"download of {url} broke off: {exc}", job_id=job_id) from exc
                finally:
                    await response.aclose()
            part.replace(target)
        finally:
            part.unlink(missing_ok=True)
        return target

    # -- internals --------------------------------------------------------------------------------------------

    async def _media(self, value: MediaInput) -> str:
        return value if isinstance(value, str) else await self.upload(value)

    async def _get(self, job_id: str, *, deadline: Deadline | None) -> tuple[Prediction, float | None]:
        response = await self._send(
            lambda: self._http.build_request(
                "GET", self._url(self._result_path(job_id)), headers=self._api_headers()
            ),
            kind="idempotent",
            what="get result",
            job_id=job_id,
            deadline=deadline,
        )
        return parse_prediction(response, self.base_url), self._retry_after(response)

    async def _upload_binary(self, src: UploadSource) -> str:
        with src.open() as fh:
            files = {"file": (src.filename, fh, src.content_type or "application/octet-stream")}
            response = await self._send(
                lambda: self._http.build_request(
                    "POST", self._url(Paths.UPLOAD_BINARY), files=files, headers=self._api_headers()
                ),
                kind="idempotent",
                what="upload (legacy binary)",
            )
        return self._absolute(parse_upload_result(response))

    async def _send(
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
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                await self._sleep(state.after_error(exc, what))
                continue
            except httpx.HTTPError as exc:
                raise TransportError(f"{what}: {type(exc).__name__}: {exc}", job_id=job_id) from exc
            delay = state.after_response(response)
            if delay is None:
                if response.is_success or response.status_code in accept:
                    return response
                if stream:
                    await response.aread()
                raise error_from_response(
                    response,
                    job_id=job_id,
                    has_api_key=bool(self.api_key),
                    retry_after=state.last_retry_after,
                )
            await response.aclose()
            await self._sleep(delay)


async def _notify(on_progress: AsyncProgressCallback | None, prediction: Prediction) -> None:
    if on_progress is not None:
        result = on_progress(prediction)
        if inspect.isawaitable(result):
            await result


async def _file_chunks(src: UploadSource) -> AsyncIterator[bytes]:
    """The file's bytes read off the event loop (a fresh iterator per attempt, so a retried PUT resends)."""
    assert src.path is not None
    async with await anyio.open_file(src.path, "rb") as fh:
        while chunk := await fh.read(CHUNK_SIZE):
            yield chunk
