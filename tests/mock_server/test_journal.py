"""The request journal through HTTP and the Python API: counts, intervals, headers, bodies, bounds."""

from __future__ import annotations

import httpx
import pytest

from mock_server.journal import Journal
from mock_server.mock import WavespeedMock
from tests.mock_server.conftest import INPUTS, poll, submit_ok


def test_polls_intervals_headers_and_bodies(api: httpx.Client, wavespeed_mock: WavespeedMock) -> None:
    pid = submit_ok(api, headers={"X-Client-Name": "my-app"})["id"]
    for step in (5, 7):
        wavespeed_mock.advance(step)
        poll(api, pid)
    (sub,) = wavespeed_mock.journal.submits()
    assert (sub.method, sub.status, sub.prediction_id, sub.scenario) == ("POST", 200, pid, "success")
    assert sub.body == INPUTS and sub.body_size > 0
    assert sub.headers["x-client-name"] == "my-app" and sub.headers["authorization"] == "Bearer test-key"
    assert len(wavespeed_mock.journal.polls(pid)) == 2
    assert wavespeed_mock.journal.poll_intervals(pid) == [7.0]
    assert all(e.wall_time > 0 and e.duration_ms >= 0 for e in wavespeed_mock.journal)


def test_http_view_filters_and_clear(api: httpx.Client) -> None:
    pid = submit_ok(api)["id"]
    poll(api, pid)
    poll(api, "f" * 32)
    api.get("/__mock/clock")  # admin requests are not journaled
    everything = api.get("/__mock/requests").json()["data"]
    assert [e["kind"] for e in everything["entries"]] == ["submit", "poll", "poll"]
    assert (everything["dropped"], everything["maxlen"]) == (0, 1000)
    mine = api.get("/__mock/requests", params={"prediction_id": pid}).json()["data"]["entries"]
    assert [(e["kind"], e["status"]) for e in mine] == [("submit", 200), ("poll", 200)]
    gets = api.get("/__mock/requests", params={"method": "get", "limit": 1}).json()["data"]["entries"]
    assert [(e["path"], e["status"]) for e in gets] == [(f"/api/v3/predictions/{'f' * 32}/result", 404)]
    api.delete("/__mock/requests")
    assert api.get("/__mock/requests").json()["data"]["entries"] == []


def test_rejected_requests_are_journaled_too(wavespeed_mock: WavespeedMock) -> None:
    r = httpx.get(f"{wavespeed_mock.base_url}/api/v3/predictions/x/result")
    assert r.status_code == 401
    (entry,) = wavespeed_mock.journal.entries()
    assert (entry.status, entry.kind) == (401, "other")


@pytest.mark.wavespeed_mock(journal_size=3)
def test_journal_is_bounded(api: httpx.Client, wavespeed_mock: WavespeedMock) -> None:
    pid = submit_ok(api)["id"]
    for _ in range(4):
        poll(api, pid)
    assert len(wavespeed_mock.journal) == 3 and wavespeed_mock.journal.dropped == 2
    assert [e.seq for e in wavespeed_mock.journal] == [3, 4, 5]


def test_large_bodies_are_kept_by_size_only() -> None:
    journal = Journal(maxlen=2)
    with pytest.raises(ValueError):
        Journal(maxlen=0)
    from mock_server.journal import MAX_BODY_BYTES, parse_body

    assert parse_body(b'{"a": 1}', "application/json") == {"a": 1}
    assert parse_body(b'{"a": 1}', "text/plain") is None
    assert parse_body(b"{" + b" " * MAX_BODY_BYTES + b"}", "application/json") is None
    assert parse_body(b"{nope", "application/json") is None
    assert len(journal) == 0
