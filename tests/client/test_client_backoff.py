"""The retry/poll schedules and Retry-After parsing, on their own."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from lipsync.client import PollSchedule, RetryPolicy, parse_retry_after


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(initial_delay=1.0, multiplier=3.0, max_delay=5.0, jitter=0.0)
    assert [policy.backoff(n) for n in range(4)] == [1.0, 3.0, 5.0, 5.0]


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_jitter_stays_within_its_band(draw: float) -> None:
    policy = RetryPolicy(initial_delay=2.0, jitter=0.25, random=lambda: draw)
    assert 1.5 <= policy.backoff(0) <= 2.5
    assert policy.backoff(0) == pytest.approx(2.0 + 2.0 * 0.25 * (2 * draw - 1))


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)


def test_poll_schedule() -> None:
    delays = PollSchedule(initial=1.0, multiplier=2.0, maximum=5.0).delays()
    assert [next(delays) for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), (" 1.5 ", 1.5), ("-3", 0.0), ("", None), (None, None), ("soon", None), ("nan", None)],
)
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=1_000_000.0) == expected


def test_retry_after_http_date() -> None:
    now = 1_750_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == pytest.approx(30.0)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now) == 0.0
