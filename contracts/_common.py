"""Shared constants and small helpers (model id, route templates, timestamps)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum
from typing import Final, Literal

__all__ = [
    "API_PREFIX",
    "DEFAULT_BASE_URL",
    "MODEL_ID",
    "TERMINAL_STATUSES",
    "Paths",
    "PredictionStatus",
    "TaskErrorCode",
    "result_url",
    "utc_now_iso",
]

#: The WaveSpeed model this project serves (and the only one the API accepts).
MODEL_ID: Final = "bytedance/lipsync/audio-to-video"
DEFAULT_BASE_URL: Final = "https://api.wavespeed.ai"
API_PREFIX: Final = "/api/v3"

#: The only statuses we ever emit. The SDK keeps polling on anything else, and the Go SDK treats only
#: completed/failed as terminal, so cancellation is reported as ``failed`` with code 1405.
PredictionStatus = Literal["created", "processing", "completed", "failed"]
TERMINAL_STATUSES: Final[frozenset[str]] = frozenset({"completed", "failed"})


class Paths:
    """Route templates, relative to the base URL (one place, so client, mock and server agree)."""

    SUBMIT: Final = f"{API_PREFIX}/{MODEL_ID}"
    RESULT: Final = f"{API_PREFIX}/predictions/{{id}}/result"
    PREDICTION: Final = f"{API_PREFIX}/predictions/{{id}}"
    CANCEL: Final = f"{API_PREFIX}/predictions/{{id}}/cancel"  # extension: WaveSpeed has no cancel
    HISTORY: Final = f"{API_PREFIX}/predictions"
    DELETE: Final = f"{API_PREFIX}/predictions/delete"
    UPLOAD_TICKET: Final = f"{API_PREFIX}/media/uploads"
    UPLOAD_BINARY: Final = f"{API_PREFIX}/media/upload/binary"
    WEBHOOK_SECRET: Final = f"{API_PREFIX}/webhook/secret"
    BALANCE: Final = f"{API_PREFIX}/balance"


class TaskErrorCode(IntEnum):
    """WaveSpeed task-level error codes (``data.code`` of a failed prediction; 0 = success)."""

    SUCCESS = 0
    CONTENT_MODERATION = 1200
    MISSING_PARAMETER = 1400
    INVALID_PARAMETER = 1401
    MEDIA_ACCESS_FAILED = 1402
    TASK_EXECUTION_FAILED = 1403
    TASK_FAILED = 1405
    INTERNAL_ERROR = 5000
    SERVICE_UNAVAILABLE = 5003
    TIMEOUT = 5004


def result_url(base_url: str, prediction_id: str) -> str:
    """The ``urls.get`` value: always the ``/result`` route, as every WaveSpeed SDK polls it."""
    return base_url.rstrip("/") + Paths.RESULT.format(id=prediction_id)


def utc_now_iso(now: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z`` suffix, as WaveSpeed writes ``created_at``."""
    ts = (now or datetime.now(UTC)).astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
