"""State and request building shared by :class:`Client` and :class:`AsyncClient` (no I/O here)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from contracts import Paths, Prediction
from lipsync import __version__
from lipsync.client._backoff import Clock, PollSchedule, RetryPolicy, SystemClock, parse_retry_after
from lipsync.client._config import (
    NOT_GIVEN,
    USER_AGENT,
    NotGiven,
    environ,
    resolve_api_key,
    resolve_base_url,
    resolve_timeout,
)
from lipsync.client._core import UploadSource, resolve_url, same_origin
from lipsync.client._exceptions import ClientError

__all__ = ["BaseClient", "JobRef"]

#: Methods taking a prediction accept its id or the object itself.
JobRef = str | Prediction


class BaseClient:
    """Configuration common to both clients. See :class:`lipsync.client.Client` for the arguments."""

    def __init__(
        self,
        base_url: str | NotGiven | None = NOT_GIVEN,
        api_key: str | NotGiven | None = NOT_GIVEN,
        *,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry: RetryPolicy | None = None,
        poll: PollSchedule | None = None,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = environ() if env is None else env
        self.base_url = resolve_base_url(base_url, env)
        self.api_key = resolve_api_key(api_key, env)
        self.timeout = resolve_timeout(timeout)
        policy = retry or RetryPolicy()
        if not isinstance(max_retries, NotGiven):
            policy = RetryPolicy(
                max_retries=max_retries,
                initial_delay=policy.initial_delay,
                multiplier=policy.multiplier,
                max_delay=policy.max_delay,
                jitter=policy.jitter,
                max_retry_after=policy.max_retry_after,
                retry_statuses=policy.retry_statuses,
                random=policy.random,
            )
        self.retry = policy
        self.poll = poll or PollSchedule()
        self.clock: Clock = clock or SystemClock()

    def __repr__(self) -> str:
        key = "set" if self.api_key else "none"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key})"

    # -- request building ---------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _api_headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "X-Client-Name": "lipsync-python",
            "X-Client-Version": __version__,
        }
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _download_headers(self, url: str) -> dict[str, str]:
        """The API key goes only to the API's own origin, never to a CDN or a presigned storage URL."""
        headers = {"User-Agent": USER_AGENT}
        if self.api_key and same_origin(url, self.base_url):
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _submit_params(self, webhook: str | None) -> dict[str, str]:
        return {"webhook": webhook} if webhook else {}

    def _submit_timeout(self, body: Mapping[str, Any]) -> httpx.Timeout:
        # Sync mode holds the connection until the job ends (WaveSpeed gives up after ~90 s with code 5004);
        # like the official SDK, do not cut that wait short with the ordinary read timeout.
        if body.get("enable_sync_mode"):
            return httpx.Timeout(
                connect=self.timeout.connect, read=None, write=self.timeout.write, pool=self.timeout.pool
            )
        return self.timeout

    def _schedule(self, poll_interval: float | None, max_poll_interval: float | None) -> Iterator[float]:
        initial = self.poll.initial if poll_interval is None else poll_interval
        top = max(initial, self.poll.maximum if max_poll_interval is None else max_poll_interval)
        return PollSchedule(initial=initial, multiplier=self.poll.multiplier, maximum=top).delays()

    def _retry_after(self, response: httpx.Response) -> float | None:
        """The server's hint for when to ask again (honoured between polls too, not just on 429/503)."""
        return parse_retry_after(response.headers.get("Retry-After"), self.clock.time())

    @staticmethod
    def _job_id(job: JobRef) -> str:
        job_id = job.id if isinstance(job, Prediction) else job
        if not job_id or "/" in job_id:
            raise ValueError(f"not a prediction id: {job_id!r}")
        return job_id

    def _result_path(self, job_id: str) -> str:
        return Paths.RESULT.format(id=job_id)

    def _ticket_body(self, src: UploadSource) -> dict[str, Any]:
        body: dict[str, Any] = {"filename": src.filename, "size": src.size}
        if src.content_type:
            body["content_type"] = src.content_type
        return body

    def _absolute(self, url: str) -> str:
        return resolve_url(url, self.base_url)

    @staticmethod
    def _output_of(source: str | Prediction, index: int) -> str:
        if isinstance(source, str):
            return source
        if source.status != "completed" or len(source.outputs) <= index:
            raise ClientError(
                f"prediction has no output #{index} (status {source.status!r}, {len(source.outputs)} outputs)",
                job_id=source.id,
            )
        return source.outputs[index]
