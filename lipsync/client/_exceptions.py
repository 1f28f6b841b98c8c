"""Errors raised by ``lipsync.client``; every one is a :class:`lipsync.errors.LipsyncError`.

    LipsyncError                  lipsync.errors: base of every error the project raises on purpose
    ├── InputError                lipsync.errors: an argument was rejected before anything was sent
    └── ClientError               talking to a lip-sync API went wrong
        ├── APIError              the server answered with an error (status_code, code, message, body, request_id)
        │   ├── ValidationError       400/422: the request was rejected; the message names the field
        │   ├── AuthenticationError   401/403: missing, wrong or unauthorised API key
        │   ├── NotFoundError         404: unknown prediction id (or a route the server lacks)
        │   ├── RateLimitError        429: too many requests; ``retry_after`` seconds when the server said
        │   └── ServerError           5xx: the server failed; usually transient
        ├── TransportError        no usable HTTP response: DNS, refused connection, timeout, broken stream
        ├── JobFailed             the prediction ended with status "failed" (job_id, code, message)
        └── JobTimeout            ``wait()`` gave up before the prediction finished (job_id, waited_s)

Retries happen before any of these is raised: an error you catch is final for that call.
Each class has a distinct ``exit_code`` (used by ``lipsync submit``) and ``error_type`` slug.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lipsync.errors import LipsyncError

if TYPE_CHECKING:  # pragma: no cover
    from contracts import Prediction

__all__ = [
    "APIError",
    "AuthenticationError",
    "ClientError",
    "JobFailed",
    "JobTimeout",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "ValidationError",
]


class ClientError(LipsyncError):
    """Base of the client's errors."""

    error_type = "client_error"
    exit_code = 1


class APIError(ClientError):
    """The server answered with an HTTP error.

    ``code`` is the envelope's ``code`` when the body had one (WaveSpeed mirrors the HTTP status there),
    ``message`` the envelope's ``message`` (or the raw body text), ``body`` the parsed JSON or text.
    """

    error_type = "api_error"
    exit_code = 7

    def __init__(
        self,
        status_code: int,
        code: int | None,
        message: str,
        body: Any = None,
        *,
        request_id: str | None = None,
        job_id: str | None = None,
    ) -> None:
        super().__init__(message, job_id=job_id)
        self.status_code = status_code
        self.code = code
        self.body = body
        self.request_id = request_id

    def __str__(self) -> str:
        text = f"HTTP {self.status_code}: {super().__str__()}"
        if self.request_id:
            text += f" (request: {self.request_id})"
        return text


class ValidationError(APIError):
    """400 (or FastAPI's 422): the server rejected the request; fixable by the caller."""

    wavespeed_code = 1401
    error_type = "invalid_request"
    exit_code = 2


class AuthenticationError(APIError):
    """401/403: the API key is missing, wrong, or not allowed to do this."""

    error_type = "authentication_failed"
    exit_code = 8


class NotFoundError(APIError):
    """404: no such prediction (WaveSpeed keeps predictions for 7 days) or no such route."""

    error_type = "not_found"
    exit_code = 9


class RateLimitError(APIError):
    """429 after the retries ran out, or with a ``Retry-After`` too long to sleep through."""

    error_type = "rate_limited"
    exit_code = 10

    def __init__(
        self,
        status_code: int,
        code: int | None,
        message: str,
        body: Any = None,
        *,
        request_id: str | None = None,
        job_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status_code, code, message, body, request_id=request_id, job_id=job_id)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx after the retries ran out (or on a submit, which is never retried on 5xx: it may have landed)."""

    wavespeed_code = 5000
    error_type = "server_error"
    exit_code = 11


class TransportError(ClientError):
    """No usable response: the connection failed, timed out or broke. ``__cause__`` is the httpx error."""

    wavespeed_code = 5003
    error_type = "transport_error"
    exit_code = 12


#: Exit codes of failed jobs whose task code says the caller can fix it (same as lipsync.errors).
_JOB_EXIT_CODES = {1400: 2, 1401: 2, 1402: 3}


class JobFailed(ClientError):
    """The prediction finished with status ``failed``; ``code`` is its task error code (e.g. 1402)."""

    error_type = "job_failed"
    exit_code = 6

    def __init__(
        self, job_id: str, code: int | None, message: str, *, prediction: Prediction | None = None
    ) -> None:
        super().__init__(message or "prediction failed", job_id=job_id)
        self.job_id: str = job_id
        self.code = code
        self.prediction = prediction
        if code is not None:
            self.wavespeed_code = code
            self.exit_code = _JOB_EXIT_CODES.get(code, JobFailed.exit_code)

    def __str__(self) -> str:
        prefix = f"[{self.code}] " if self.code is not None else ""
        return prefix + super().__str__()


class JobTimeout(ClientError):
    """``wait()`` reached its ``timeout`` while the prediction was still running (it keeps running)."""

    wavespeed_code = 5004
    error_type = "wait_timeout"
    exit_code = 124  # as timeout(1)

    def __init__(self, job_id: str, waited_s: float, *, prediction: Prediction | None = None) -> None:
        status = f", last status {prediction.status!r}" if prediction is not None else ""
        super().__init__(f"prediction still running after {waited_s:.1f} s{status}", job_id=job_id)
        self.job_id: str = job_id
        self.waited_s = waited_s
        self.prediction = prediction
