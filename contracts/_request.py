"""The lip-sync request body (WaveSpeed's two fields + the run options + delivery flags)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from contracts._options import RunOptions
from contracts._scalars import JsonBool

__all__ = [
    "MAX_URL_LENGTH",
    "MEDIA_REF_PATTERN",
    "WEBHOOK_URL_PATTERN",
    "LipsyncRequest",
    "MediaRef",
    "data_uri_size",
    "describe_validation_error",
    "is_data_uri",
    "parse_data_uri",
]

_DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,", re.I
)


#: Longest accepted http(s) input URL (characters): what browsers and CDNs accept, far below a store row
#: that would slow every poll. Larger inputs are uploaded (or sent as ``data:`` URIs, capped by size).
MAX_URL_LENGTH = 8 * 1024


def is_data_uri(value: str) -> bool:
    """Whether a media reference (or an output) is a ``data:`` URI rather than a URL (case-insensitive)."""
    return value[:5].lower() == "data:"


def data_uri_size(uri: str) -> int:
    """The number of bytes a ``data:`` URI carries, computed without decoding it (an upper bound for
    percent-encoded text; exact for valid base64). Lets a server refuse one over its media cap cheaply."""
    head, _, payload = uri.partition(",")
    if head.lower().endswith(";base64"):
        payload = payload.rstrip()
        return len(payload) * 3 // 4 - (len(payload) - len(payload.rstrip("=")))
    return len(payload)


def parse_data_uri(uri: str) -> tuple[str | None, bytes]:
    """Decode a ``data:`` URI into ``(mime type or None, bytes)``; ValueError when malformed."""
    m = _DATA_URI.match(uri)
    if m is None:
        raise ValueError("malformed data: URI (expected data:[<mime>][;base64],<data>)")
    payload = uri[m.end() :]
    if m.group("b64"):
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"data: URI is not valid base64 ({exc})") from None
    else:
        data = unquote_to_bytes(payload)
    if not data:
        raise ValueError("data: URI carries no bytes")
    return m.group("mime"), data


_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_HTTP_URL = rf"[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(?::{_PORT})?(?:[/?#][!-~]*)?"
_DATA_URI_FORM = (
    r"[Dd][Aa][Tt][Aa]:(?:[A-Za-z0-9.+_-]+/[A-Za-z0-9.+_-]+)?(?:;[A-Za-z0-9.+_-]+=[^;,]*)*"
    r"(?:;base64,(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})|,[!-~]+)"
)
#: What ``audio``/``video`` accept, published as the schema's ``pattern`` and enforced by ``_check_media_ref``
#: with Python's ``re.search`` (JSON Schema semantics): an http(s) URL with a host name or IPv4 address, or a
#: ``data:`` URI whose payload decodes (base64 with padding, or URL-encoded text). Everything the pattern
#: admits passes the checks below, so a schema-valid request is never refused at submit.
MEDIA_REF_PATTERN = rf"^(?:{_HTTP_URL}|{_DATA_URI_FORM})$"
#: What ``?webhook=`` accepts (an http(s) URL), published and enforced the same way.
WEBHOOK_URL_PATTERN = rf"^{_HTTP_URL}$"
_MEDIA_REF = re.compile(MEDIA_REF_PATTERN)


def _check_media_ref(value: str) -> str:
    if _MEDIA_REF.search(value) is None:
        raise ValueError("must be an http(s) URL or a data: URI")
    value = value.strip()
    if is_data_uri(value):
        parse_data_uri(value)
        return value
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"URL longer than {MAX_URL_LENGTH} characters (upload large inputs instead)")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL or a data: URI")
    return value


#: An input media reference: an http(s) URL the server downloads, or a ``data:`` URI carrying the bytes.
MediaRef = Annotated[
    str,
    Field(min_length=1, json_schema_extra={"pattern": MEDIA_REF_PATTERN}),
    AfterValidator(_check_media_ref),
]


class _Media(BaseModel):
    """WaveSpeed's two fields (first in the body's schema, as WaveSpeed documents them)."""

    audio: MediaRef = Field(description="URL (or data: URI) of the speech that drives the lips")
    video: MediaRef = Field(description="URL (or data: URI) of the face video")


# RunOptions first among the bases so that pydantic lists the media fields first (it collects fields
# from the last base to the first).
class LipsyncRequest(RunOptions, _Media):
    """Body of ``POST /api/v3/bytedance/lipsync/audio-to-video``.

    ``audio`` and ``video`` are WaveSpeed's; everything else is an optional extension whose default is the
    reference LatentSync behaviour, so a plain WaveSpeed request gets reference results. Unknown fields are
    rejected (400 naming the field) so a typo such as ``guidence_scale`` never silently does nothing.
    """

    # The engine options are RunOptions' fields (validated here with the API's ranges); ``run_options()``
    # takes them out of a request.

    model_config = ConfigDict(extra="forbid")

    enable_sync_mode: JsonBool = Field(
        default=False, description="Wait for the result in the submit response"
    )
    enable_base64_output: JsonBool = Field(default=False, description="Return outputs as raw base64 strings")


def describe_validation_error(exc: ValidationError | list[dict[str, Any]]) -> tuple[str, str | None]:
    """Turn pydantic errors into one human message naming the field, plus that field's name.

    Both the mock and the real server use this, so their 400 messages are identical.
    """
    errors = exc.errors() if isinstance(exc, ValidationError) else exc
    messages: list[str] = []
    first_field: str | None = None
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or "body"
        first_field = first_field or field
        kind = str(err.get("type", ""))
        if kind == "missing":
            messages.append(f"Missing required parameter '{field}'")
        elif kind == "extra_forbidden":
            messages.append(f"Unknown parameter '{field}'")
        else:
            msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            got = err.get("input")
            shown = (
                f" (got {got!r})"
                if isinstance(got, int | float | bool) or (isinstance(got, str) and len(got) <= 80)
                else ""
            )
            messages.append(f"Invalid parameter '{field}': {msg}{shown}")
    return "; ".join(messages) or "Invalid request body", first_field
