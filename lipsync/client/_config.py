"""Where the client's base URL, API key and timeouts come from.

Precedence, first match wins: the constructor argument, then ``LIPSYNC_BASE_URL`` / ``LIPSYNC_API_KEY``, then
``WAVESPEED_API_KEY`` (so a WaveSpeed user's existing environment works unchanged), then the default
``https://api.wavespeed.ai``. Passing ``None`` explicitly is different from not passing the argument: it skips
the environment (``api_key=None`` means "send no key", ``base_url=None`` means "the default URL").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final, final
from urllib.parse import urlsplit

import httpx

from contracts import DEFAULT_BASE_URL
from lipsync import __version__

__all__ = [
    "API_KEY_ENV_VARS",
    "BASE_URL_ENV_VAR",
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "USER_AGENT",
    "NotGiven",
    "resolve_api_key",
    "resolve_base_url",
    "resolve_timeout",
]

BASE_URL_ENV_VAR: Final = "LIPSYNC_BASE_URL"
#: Read in this order; WAVESPEED_API_KEY is the official SDK's variable.
API_KEY_ENV_VARS: Final = ("LIPSYNC_API_KEY", "WAVESPEED_API_KEY")

#: connect as the WaveSpeed SDK (10 s); read covers one poll or a normal submit; write covers an upload PUT.
DEFAULT_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=60.0, write=120.0, pool=30.0)

USER_AGENT: Final = f"lipsync-python/{__version__}"


@final
class NotGiven:
    """Type of :data:`NOT_GIVEN`: an argument that was not passed at all (as opposed to ``None``)."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()


def resolve_base_url(value: str | NotGiven | None, env: Mapping[str, str]) -> str:
    """The API root without a trailing slash; ValueError unless it is an absolute http(s) URL."""
    if isinstance(value, NotGiven):
        value = env.get(BASE_URL_ENV_VAR, "").strip() or None
    url = (value or DEFAULT_BASE_URL).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an absolute http(s) URL, got {url!r}")
    return url


def resolve_api_key(value: str | NotGiven | None, env: Mapping[str, str]) -> str | None:
    """The bearer key, or None to send no ``Authorization`` header (e.g. a local server without auth)."""
    if isinstance(value, NotGiven):
        for name in API_KEY_ENV_VARS:
            found = env.get(name, "").strip()
            if found:
                return found
        return None
    if value is None:
        return None
    return value.strip() or None


def resolve_timeout(value: float | httpx.Timeout | NotGiven | None) -> httpx.Timeout:
    """``NOT_GIVEN`` gives :data:`DEFAULT_TIMEOUT`; ``None`` disables timeouts; a number applies to all phases."""
    if isinstance(value, NotGiven):
        return DEFAULT_TIMEOUT
    if isinstance(value, httpx.Timeout):
        return value
    return httpx.Timeout(value)


def environ() -> Mapping[str, str]:
    """The process environment (a function so callers read it at construction time, not import time)."""
    return os.environ
