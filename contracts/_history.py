"""History, delete and webhook-secret shapes (WaveSpeed's optional endpoints)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contracts._common import PredictionStatus
from contracts._prediction import Prediction

__all__ = ["DeleteRequest", "DeleteResult", "HistoryPage", "HistoryRequest", "WebhookSecret"]


class HistoryRequest(BaseModel):
    """Body of ``POST /api/v3/predictions``."""

    model_config = ConfigDict(extra="forbid")

    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=20, ge=1, le=100)
    created_after: str | None = None
    created_before: str | None = None
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
