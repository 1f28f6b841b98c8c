"""Scenarios: how one mock job (or one request) behaves, parsed from ``"name; key=value; ..."``.

The same text is accepted everywhere a scenario can be chosen (the ``X-Mock-Scenario`` request header, the
start-up default, ``POST /__mock/scenario``, the pytest marker) and echoed back, normalised, in the
``X-Mock-Scenario`` response header. Examples::

    success                      created -> processing -> completed (the default)
    success; polls=5; seconds=10 ... over 5 polls or 10 clock seconds, whichever comes first
    slow                         the same over 10 polls / 60 s
    stuck                        processing forever (cancel it, or let the client time out)
    fail; code=1402              ends failed with task code 1402 and a matching error text
    fail; code=1403; message="no face in frame 12"
    no_face | media_unreachable | server_error     shorthands for fail with code 1403 | 1402 | 5000
    rate_limit; retry_after=2; times=3             the job's first 3 polls answer HTTP 429 + Retry-After
    rate_limit; on=submit                          the submit itself answers 429 (no job is created)
    http_error; status=503; poll=2; times=1        the 2nd poll answers HTTP 503 (then normal again)
    sync_timeout                 with enable_sync_mode: 200 + processing + code 5004; then completes normally
    expired                      completes, but the output URL answers 404 (retention expired)

Webhook controls combine with any scenario: ``webhook_delay=<s>`` (real seconds before delivery),
``webhook_duplicates=<n>`` (deliver n times, same webhook-id), ``webhook=drop`` (never deliver) or
``webhook=bad_signature`` (deliver with a wrong signature), ``webhook_retries=<n>`` (re-deliveries when the
receiver does not answer 2xx).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from contracts import TaskErrorCode

__all__ = ["DEFAULT_ERROR_TEXT", "SCENARIO_NAMES", "Scenario", "ScenarioError", "parse_scenario"]


class ScenarioError(ValueError):
    """The scenario text cannot be parsed (the app answers 400 with this message)."""


#: The ``error`` text of a failed job per task code when the scenario gives no ``message``. The prefix is the
#: error type slug of ``lipsync.errors`` (what the real server writes), and none contains "HTTP 5": the SDK
#: re-runs a task whose error mentions "HTTP 5xx"/"HTTP 429", which deterministic failures must not trigger.
DEFAULT_ERROR_TEXT: dict[int, str] = {
    int(TaskErrorCode.CONTENT_MODERATION): "content_moderation: The input was flagged by content moderation",
    int(TaskErrorCode.MISSING_PARAMETER): "invalid_input: A required parameter is missing",
    int(TaskErrorCode.INVALID_PARAMETER): "invalid_input: The input media could not be processed",
    int(
        TaskErrorCode.MEDIA_ACCESS_FAILED
    ): "media_not_reachable: Failed to download the media from the provided URL",
    int(TaskErrorCode.TASK_EXECUTION_FAILED): "no_face: No face detected in the video",
    int(TaskErrorCode.TASK_FAILED): "cancelled: The prediction was cancelled",
    int(TaskErrorCode.INTERNAL_ERROR): "internal_error: The lip-sync engine failed unexpectedly",
    int(TaskErrorCode.SERVICE_UNAVAILABLE): "weights_unavailable: The model is temporarily unavailable",
    int(TaskErrorCode.TIMEOUT): "timeout: The prediction took too long",
}

ScenarioName = Literal[
    "success", "slow", "stuck", "fail", "rate_limit", "http_error", "sync_timeout", "expired"
]
SCENARIO_NAMES: tuple[str, ...] = (
    "success",
    "slow",
    "stuck",
    "fail",
    "rate_limit",
    "http_error",
    "sync_timeout",
    "expired",
)
_ALIASES: dict[str, tuple[str, dict[str, str]]] = {
    "no_face": ("fail", {"code": "1403"}),
    "media_unreachable": ("fail", {"code": "1402"}),
    "server_error": ("fail", {"code": "5000"}),
}
_NAME_DEFAULTS: dict[str, dict[str, Any]] = {
    "slow": {"polls": 10, "seconds": 60.0},
    "stuck": {"polls": math.inf, "seconds": math.inf},
    "fail": {"code": int(TaskErrorCode.TASK_EXECUTION_FAILED)},
    "http_error": {"status": 503, "poll": 1},
}
_WEBHOOK_MODES = ("deliver", "drop", "bad_signature")


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario. ``text`` is the normalised form echoed in ``X-Mock-Scenario``."""

    name: ScenarioName = "success"
    text: str = "success"
    #: Lifecycle: terminal after this many polls or clock seconds, whichever comes first (inf: never).
    polls: float = 2
    seconds: float = 2.0
    #: fail: the task code and error text.
    code: int = 0
    message: str = ""
    #: rate_limit / http_error: which requests answer an HTTP error instead.
    on: Literal["submit", "poll"] = "poll"
    status: int = 429
    poll: int = 1
    times: int = 1
    retry_after: int = 1
    #: sync_timeout: the "N" in "Sync mode timed out after N seconds".
    after: int = 90
    #: Webhook delivery controls.
    webhook: Literal["deliver", "drop", "bad_signature"] = "deliver"
    webhook_delay: float = 0.0
    webhook_duplicates: int = 1
    webhook_retries: int = 2

    @property
    def fails(self) -> bool:
        return self.name == "fail"

    @property
    def error_text(self) -> str:
        return self.message or DEFAULT_ERROR_TEXT.get(
            self.code, f"task_failed: The prediction failed ({self.code})"
        )

    def http_error_for_poll(self, poll_number: int) -> int | None:
        """The HTTP status the *poll_number*-th poll (1-based) answers instead of the prediction, if any."""
        if self.name == "rate_limit" and self.on == "poll":
            return 429 if poll_number <= self.times else None
        if self.name == "http_error" and self.poll <= poll_number < self.poll + self.times:
            return self.status
        return None

    @property
    def rejects_submit(self) -> bool:
        return self.name == "rate_limit" and self.on == "submit"


_TOKEN = re.compile(r'\s*([A-Za-z_][\w-]*)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;]*))?\s*(?:;|$)')


def _split(text: str) -> list[tuple[str, str | None]]:
    items: list[tuple[str, str | None]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ScenarioError(f"cannot parse scenario {text!r} near {text[pos:]!r}")
        key, value = m.group(1), m.group(2)
        if value is not None:
            value = value.strip()
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
        items.append((key.lower(), value))
        pos = m.end()
    return items


def _convert(field: dataclasses.Field[Any], key: str, raw: str) -> Any:
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            value = float(raw)
            if value < 0 or math.isnan(value):
                raise ValueError
            return value
    except ValueError:
        raise ScenarioError(
            f"scenario parameter {key!r} must be a non-negative number, got {raw!r}"
        ) from None
    return raw


_FIELDS = {f.name: f for f in dataclasses.fields(Scenario) if f.name not in ("name", "text")}


def parse_scenario(text: str | None) -> Scenario:
    """Parse ``"name; key=value; ..."`` (``None``/empty: the default ``success``). Raises ScenarioError."""
    if text is None or not text.strip():
        return Scenario()
    items = _split(text)
    name, first_value = items[0]
    if first_value is not None:
        raise ScenarioError(f"a scenario starts with its name, got {items[0][0]}={first_value!r}")
    given: dict[str, str] = {}
    shown_name = name
    if name in _ALIASES:
        name, implied = _ALIASES[name]
        given.update(implied)
    if name not in SCENARIO_NAMES:
        known = ", ".join([*SCENARIO_NAMES, *_ALIASES])
        raise ScenarioError(f"unknown scenario {name!r} (known: {known})")
    for key, value in items[1:]:
        if value is None:
            raise ScenarioError(f"scenario parameter {key!r} needs a value ({key}=...)")
        if key not in _FIELDS:
            raise ScenarioError(f"unknown scenario parameter {key!r} (known: {', '.join(sorted(_FIELDS))})")
        given[key] = value

    values: dict[str, Any] = dict(_NAME_DEFAULTS.get(name, {}))
    for key, raw in given.items():
        values[key] = _convert(_FIELDS[key], key, raw)
    if "on" in values and values["on"] not in ("submit", "poll"):
        raise ScenarioError(f"scenario parameter 'on' must be submit or poll, got {values['on']!r}")
    if "webhook" in values and values["webhook"] not in _WEBHOOK_MODES:
        raise ScenarioError(f"scenario parameter 'webhook' must be one of {', '.join(_WEBHOOK_MODES)}")
    if name == "fail" and values.get("code", 0) == 0:
        raise ScenarioError("scenario 'fail' needs a non-zero task code (code=1402, ...)")
    if name == "http_error" and not 400 <= values.get("status", 503) <= 599:
        raise ScenarioError("scenario 'http_error' needs an HTTP error status (status=500..599 or 4xx)")
    for key in ("times", "poll", "webhook_duplicates"):
        if key in values and values[key] < 1:
            raise ScenarioError(f"scenario parameter {key!r} must be at least 1")

    def show(value: str) -> str:
        return f'"{value}"' if any(c in value for c in ';"') or value != value.strip() else value

    explicit = {k: v for k, v in given.items() if shown_name == name or k not in _ALIASES[shown_name][1]}
    normalised = "; ".join([shown_name, *(f"{k}={show(v)}" for k, v in explicit.items())])
    return Scenario(name=name, text=normalised, **values)  # type: ignore[arg-type]
