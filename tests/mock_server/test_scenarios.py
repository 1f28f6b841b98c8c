"""The scenario mini-language: parsing, defaults, normalised echo text, and helpful errors."""

from __future__ import annotations

import math

import pytest

from mock_server.scenarios import DEFAULT_ERROR_TEXT, ScenarioError, parse_scenario


def test_default_is_success_over_two_polls_or_two_seconds() -> None:
    s = parse_scenario(None)
    assert (s.name, s.text, s.polls, s.seconds, s.fails) == ("success", "success", 2, 2.0, False)
    assert parse_scenario("  ") == s


@pytest.mark.parametrize(
    ("text", "name", "code"),
    [
        ("fail; code=1402", "fail", 1402),
        ("no_face", "fail", 1403),
        ("media_unreachable", "fail", 1402),
        ("server_error", "fail", 5000),
        ("fail", "fail", 1403),
    ],
)
def test_failures_and_their_shorthands(text: str, name: str, code: int) -> None:
    s = parse_scenario(text)
    assert (s.name, s.code, s.fails) == (name, code, True)
    assert s.error_text == DEFAULT_ERROR_TEXT[code]
    assert s.text == text  # echoed as written (normalised spacing)


def test_no_default_error_text_mentions_http_5xx() -> None:
    # The SDK re-runs a failed task whose error contains "HTTP 5"/"HTTP 429"; deterministic failures must not.
    assert not any("HTTP 5" in t or "HTTP 429" in t for t in DEFAULT_ERROR_TEXT.values())


def test_quoted_message_may_contain_separators_and_is_echoed_quoted() -> None:
    s = parse_scenario('fail ; code=1403;message="frame 12; no face"')
    assert s.error_text == "frame 12; no face"
    assert s.text == 'fail; code=1403; message="frame 12; no face"'
    assert parse_scenario(s.text) == s


def test_lifecycle_parameters_and_named_defaults() -> None:
    assert (
        parse_scenario("success; polls=5; seconds=1.5").polls,
        parse_scenario("success; seconds=1.5").seconds,
    ) == (5, 1.5)
    slow = parse_scenario("slow")
    assert (slow.polls, slow.seconds) == (10, 60.0)
    stuck = parse_scenario("stuck")
    assert math.isinf(stuck.polls) and math.isinf(stuck.seconds)


def test_http_error_windows() -> None:
    rl = parse_scenario("rate_limit; times=2; retry_after=3")
    assert [rl.http_error_for_poll(n) for n in (1, 2, 3)] == [429, 429, None]
    assert rl.retry_after == 3 and not rl.rejects_submit
    assert parse_scenario("rate_limit; on=submit").rejects_submit
    he = parse_scenario("http_error; status=500; poll=2; times=2")
    assert [he.http_error_for_poll(n) for n in (1, 2, 3, 4)] == [None, 500, 500, None]
    assert parse_scenario("http_error").http_error_for_poll(1) == 503


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nope", "unknown scenario 'nope'"),
        ("fail; colour=red", "unknown scenario parameter 'colour'"),
        ("fail; code", "needs a value"),
        ("fail; code=abc", "'code' must be a non-negative number"),
        ("success; seconds=-1", "'seconds' must be a non-negative number"),
        ("fail; code=0", "non-zero task code"),
        ("http_error; status=200", "HTTP error status"),
        ("rate_limit; on=both", "'on' must be submit or poll"),
        ("success; webhook=maybe", "'webhook' must be one of"),
        ("rate_limit; times=0", "'times' must be at least 1"),
        ("code=1402", "starts with its name"),
    ],
)
def test_errors_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(ScenarioError, match=fragment):
        parse_scenario(text)
