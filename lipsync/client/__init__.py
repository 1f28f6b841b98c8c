"""Typed HTTP client for WaveSpeed's ``bytedance/lipsync/audio-to-video`` API and compatible servers.

    from lipsync.client import Client

    with Client() as client:                       # LIPSYNC_BASE_URL / LIPSYNC_API_KEY / WAVESPEED_API_KEY
        video = client.upload("face.mp4")
        audio = client.upload("speech.wav")
        result = client.run(video, audio, on_progress=print)
        client.download(result, "out.mp4")

The same code works against WaveSpeed, ``lipsync serve``, a Modal deployment and the mock: only the base
URL changes. Torch-free: importing this pulls in httpx and pydantic only.
"""

from __future__ import annotations

from lipsync.client._async_client import AsyncClient
from lipsync.client._backoff import Clock, PollSchedule, RetryPolicy, SystemClock, parse_retry_after
from lipsync.client._client import Client, ProgressCallback
from lipsync.client._config import (
    API_KEY_ENV_VARS,
    BASE_URL_ENV_VAR,
    DEFAULT_TIMEOUT,
    NOT_GIVEN,
    NotGiven,
)
from lipsync.client._core import MediaInput, SubmitOptions, UploadSourceInput, request_options
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
from lipsync.errors import InputError, LipsyncError

__all__ = [
    "API_KEY_ENV_VARS",
    "BASE_URL_ENV_VAR",
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ClientError",
    "Clock",
    "InputError",
    "JobFailed",
    "JobTimeout",
    "LipsyncError",
    "MediaInput",
    "NotFoundError",
    "NotGiven",
    "PollSchedule",
    "ProgressCallback",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "SubmitOptions",
    "SystemClock",
    "TransportError",
    "UploadSourceInput",
    "ValidationError",
    "parse_retry_after",
    "request_options",
]
