"""Media upload shapes: the ticket flow (SDK >= 1.0.11) and the legacy multipart upload."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts._scalars import JsonInt

__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "BinaryUploadResult",
    "UploadInstruction",
    "UploadTicket",
    "UploadTicketRequest",
    "media_type_of",
]

#: The default size cap of one uploaded (or fetched) file, on the server and the mock alike, so both publish
#: the same ``maximum`` in their schemas. Each app can configure its own.
DEFAULT_MAX_UPLOAD_BYTES = 500 * 1024 * 1024

MediaType = Literal["video", "audio", "image", "file"]


def media_type_of(content_type: str | None) -> MediaType:
    major = (content_type or "").split("/", 1)[0].lower()
    if major in ("video", "audio", "image"):
        return major  # type: ignore[return-value]
    return "file"


class UploadTicketRequest(BaseModel):
    """Body of ``POST /api/v3/media/uploads``."""

    model_config = ConfigDict(extra="allow")

    filename: str = Field(min_length=1, max_length=255)
    # a JSON number: `true` must not pass as size 1 (and 1.0 is the integer 1, as JSON Schema says)
    size: JsonInt = Field(ge=0)
    content_type: str | None = None


class UploadInstruction(BaseModel):
    model_config = ConfigDict(extra="allow")

    method: Literal["PUT"] = "PUT"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)


class UploadTicket(BaseModel):
    """``data`` of the ticket response: PUT the bytes to ``upload.url``, then use ``download_url``."""

    model_config = ConfigDict(extra="allow")

    type: str | None = None
    filename: str | None = None
    size: int | None = None
    download_url: str
    upload: UploadInstruction


class BinaryUploadResult(BaseModel):
    """``data`` of ``POST /api/v3/media/upload/binary`` (multipart field ``file``)."""

    model_config = ConfigDict(extra="allow")

    type: str
    download_url: str
    filename: str
    size: int
