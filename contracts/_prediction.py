"""The prediction object exactly as WaveSpeed returns it, plus non-breaking extensions.

Extensions (``progress``, finer ``timings``, ``face``) are optional and omitted from the JSON when unset, so a
WaveSpeed response parses and re-serialises unchanged and strict clients never see unknown nulls.
Unknown fields from the real service (``executionTime``, ``input``) are kept (``extra="allow"``).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from contracts._common import MODEL_ID, PredictionStatus, result_url, utc_now_iso
from contracts._faces import FaceReport
from contracts._omit import OmitNone

__all__ = ["Prediction", "PredictionUrls", "Timings"]


class PredictionUrls(BaseModel):
    model_config = ConfigDict(extra="allow")

    get: str


class Timings(OmitNone):
    """``inference`` is WaveSpeed's (milliseconds). The rest are our extensions, also in milliseconds."""

    model_config = ConfigDict(extra="allow")
    _omit_if_none: ClassVar[frozenset[str]] = frozenset({"queue", "download", "preprocess", "total"})

    inference: int = Field(default=0, ge=0)
    queue: int | None = Field(default=None, ge=0, description="Extension: time waiting for a worker")
    download: int | None = Field(default=None, ge=0, description="Extension: fetching the input media")
    preprocess: int | None = Field(default=None, ge=0, description="Extension: decode + face alignment")
    total: int | None = Field(default=None, ge=0, description="Extension: submit to completion")


class Prediction(OmitNone):
    """``data`` of a submit/result response, and the bare body of a webhook callback."""

    model_config = ConfigDict(extra="allow")
    _omit_if_none: ClassVar[frozenset[str]] = frozenset({"code", "progress", "face"})

    id: str
    model: str = MODEL_ID
    outputs: list[str] = Field(default_factory=list)
    urls: PredictionUrls
    has_nsfw_contents: list[bool] = Field(default_factory=list)
    status: PredictionStatus
    created_at: str = Field(description="ISO-8601 UTC timestamp, e.g. 2023-04-01T12:34:56.789Z")
    error: str = ""
    timings: Timings = Field(default_factory=Timings)
    code: int | None = Field(
        default=None, description="Task error code of a failed (or sync-timed-out) task; see TaskErrorCode"
    )
    progress: float | None = Field(default=None, ge=0.0, le=1.0, description="Extension: 0..1 while running")
    face: FaceReport | None = Field(
        default=None,
        description=(
            "Extension: which face a completed prediction synced and how it was chosen; present when the "
            "request chose one (its face option was a point, boxes or auto), omitted otherwise"
        ),
    )

    @classmethod
    def new(cls, prediction_id: str, base_url: str, *, created_at: str | None = None) -> Prediction:
        """A freshly submitted prediction (status ``created``)."""
        return cls(
            id=prediction_id,
            urls=PredictionUrls(get=result_url(base_url, prediction_id)),
            status="created",
            created_at=created_at or utc_now_iso(),
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in ("completed", "failed")
