"""Media upload shapes: the ticket flow (SDK >= 1.0.11) and the legacy multipart upload."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BinaryUploadResult", "UploadInstruction", "UploadTicket", "UploadTicketRequest", "media_type_of"]

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
    # strict: JSON `true` must not pass as size 1
    size: int = Field(ge=0, strict=True)
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
