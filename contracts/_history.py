"""History, delete and webhook-secret shapes (WaveSpeed's optional endpoints)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from contracts._common import PredictionStatus
from contracts._prediction import Prediction
from contracts._scalars import JsonInt

__all__ = ["DeleteRequest", "DeleteResult", "HistoryPage", "HistoryRequest", "WebhookSecret"]


#: RFC 3339 ``date-time`` (what the schema's ``format`` promises), checked before the calendar is.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")


def _check_date_time(value: str) -> str:
    if _RFC3339.fullmatch(value) is None:
        raise ValueError("not an RFC 3339 date-time such as 2025-01-31T12:00:00Z")
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("not a valid date-time (check the day, month and hour)") from None
    return value


#: A creation-time bound of the history filter: RFC 3339 with a ``Z`` or an offset.
DateTimeText = Annotated[
    str, Field(json_schema_extra={"format": "date-time"}), AfterValidator(_check_date_time)
]


class HistoryRequest(BaseModel):
    """Body of ``POST /api/v3/predictions``."""

    model_config = ConfigDict(extra="forbid")

    page: JsonInt = Field(default=1, ge=1)
    page_size: JsonInt = Field(default=20, ge=1, le=100)
    created_after: DateTimeText | None = Field(
        default=None, description="Only predictions created at or after"
    )
    created_before: DateTimeText | None = Field(default=None, description="Only predictions created before")
    model: str | None = None
    status: PredictionStatus | None = None


class HistoryPage(BaseModel):
    model_config = ConfigDict(extra="allow")

    page: int
    items: list[Prediction]
    total: int | None = Field(default=None, description="Extension: number of matching predictions")


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, max_length=1000)


class DeleteResult(BaseModel):
    deleted_count: int


class WebhookSecret(BaseModel):
    secret: str
