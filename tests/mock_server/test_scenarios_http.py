"""Every scenario through HTTP: chosen by header, start-up default or admin endpoint, and echoed back."""

from __future__ import annotations

import httpx
import pytest

from mock_server.mock import WavespeedMock
from tests.mock_server.conftest import poll, poll_data, submit, submit_ok


@pytest.mark.parametrize(
    ("scenario", "code", "error_start"),
    [
        ("fail; code=1402", 1402, "media_not_reachable:"),
        ("no_face", 1403, "no_face:"),
        ("media_unreachable", 1402, "media_not_reachable:"),
        ("server_error", 5000, "internal_error:"),
        ("fail; code=1401; message=bad audio", 1401, "bad audio"),
    ],
)
def test_failed_jobs_carry_code_and_error(
    api: httpx.Client, scenario: str, code: int, error_start: str
) -> None:
    response = submit(api, headers={"X-Mock-Scenario": scenario})
    assert response.headers["x-mock-scenario"] == scenario
    pid = response.json()["data"]["id"]
    assert poll_data(api, pid)["status"] == "processing"
    failed = poll_data(api, pid)
    assert (failed["status"], failed["code"], failed["outputs"]) == ("failed", code, [])
    assert failed["error"].startswith(error_start)


def test_slow_takes_ten_polls(api: httpx.Client) -> None:
    pid = submit_ok(api, headers={"X-Mock-Scenario": "slow"})["id"]
    statuses = [poll_data(api, pid)["status"] for _ in range(10)]
    assert statuses == ["processing"] * 9 + ["completed"]


def test_stuck_never_finishes_even_after_a_day(api: httpx.Client, wavespeed_mock: WavespeedMock) -> None:
    pid = submit_ok(api, headers={"X-Mock-Scenario": "stuck"})["id"]
    wavespeed_mock.advance(86_400)
    for _ in range(20):
        data = poll_data(api, pid)
    assert (data["status"], data["progress"]) == ("processing", 0.0)


def test_rate_limit_on_polls_answers_429_with_retry_after_then_recovers(api: httpx.Client) -> None:
    pid = submit_ok(api, headers={"X-Mock-Scenario": "rate_limit; times=2; retry_after=7"})["id"]
    for _ in range(2):
        r = poll(api, pid)
        assert (r.status_code, r.headers["retry-after"], r.json()["code"], r.json()["data"]) == (
            429,
            "7",
            429,
            None,
        )
        assert r.headers["x-mock-scenario"] == "rate_limit; times=2; retry_after=7"
    # Rate-limited polls did not move the lifecycle: two more good polls are still needed.
    assert [poll_data(api, pid)["status"] for _ in range(2)] == ["processing", "completed"]


def test_rate_limit_on_submit_creates_no_job(api: httpx.Client, wavespeed_mock: WavespeedMock) -> None:
    r = submit(api, headers={"X-Mock-Scenario": "rate_limit; on=submit; retry_after=2"})
    assert (r.status_code, r.headers["retry-after"], r.json()["data"]) == (429, "2", None)
    assert len(wavespeed_mock.jobs) == 0


def test_http_error_on_the_nth_poll(api: httpx.Client) -> None:
    pid = submit_ok(api, headers={"X-Mock-Scenario": "http_error; status=502; poll=2; times=2; polls=2"})[
        "id"
    ]
    codes = [poll(api, pid).status_code for _ in range(5)]
    assert codes == [200, 502, 502, 200, 200]
    assert poll_data(api, pid)["status"] == "completed"


def test_expired_output_answers_404(api: httpx.Client) -> None:
    pid = submit_ok(api, headers={"X-Mock-Scenario": "expired; polls=1"})["id"]
    url = poll_data(api, pid)["outputs"][0]
    r = api.get(url)
    assert (r.status_code, r.json()["message"]) == (
        404,
        "output expired: outputs are kept for a limited time",
    )


def test_invalid_scenario_header_is_a_400_naming_the_problem(api: httpx.Client) -> None:
    r = submit(api, headers={"X-Mock-Scenario": "explode"})
    assert r.status_code == 400
    assert r.json()["message"].startswith("Invalid X-Mock-Scenario header: unknown scenario 'explode'")


@pytest.mark.wavespeed_mock(scenario="fail; code=1402")
def test_start_up_default_applies_and_header_overrides_it(api: httpx.Client) -> None:
    r = submit(api)
    assert r.headers["x-mock-scenario"] == "fail; code=1402"
    r = submit(api, headers={"X-Mock-Scenario": "success"})
    assert r.headers["x-mock-scenario"] == "success"


def test_admin_endpoint_sets_default_and_queues_next_jobs(api: httpx.Client) -> None:
    state = api.post("/__mock/scenario", json={"scenario": "no_face"}).json()["data"]
    assert state == {"default": "no_face", "queued": []}
    state = api.post("/__mock/scenario", json={"scenario": "slow", "times": 2}).json()["data"]
    assert state == {"default": "no_face", "queued": ["slow", "slow"]}
    echoed = [submit(api).headers["x-mock-scenario"] for _ in range(3)]
    assert echoed == ["slow", "slow", "no_face"]
    assert api.delete("/__mock/scenario").json()["data"] == {"default": "success", "queued": []}
    bad = api.post("/__mock/scenario", json={"scenario": "fail; code=x"})
    assert bad.status_code == 400 and "'code'" in bad.json()["message"]


def test_python_api_queue_and_default(api: httpx.Client, wavespeed_mock: WavespeedMock) -> None:
    wavespeed_mock.queue_scenario("server_error")
    wavespeed_mock.set_scenario("slow")
    assert [submit(api).headers["x-mock-scenario"] for _ in range(2)] == ["server_error", "slow"]
    assert api.get("/__mock/scenario").json()["data"] == {"default": "slow", "queued": []}
