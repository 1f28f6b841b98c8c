"""Auth, validation, 404s, history, delete and cancel through HTTP."""

from __future__ import annotations

import httpx
import pytest

from contracts import Paths
from mock_server.mock import WavespeedMock
from tests.mock_server.conftest import BASE, INPUTS, poll, poll_data, submit, submit_ok


def test_missing_key_is_401_envelope(wavespeed_mock: WavespeedMock) -> None:
    r = httpx.post(BASE + Paths.SUBMIT, json=INPUTS)
    assert (r.status_code, r.json()["code"], r.json()["data"]) == (401, 401, None)


@pytest.mark.wavespeed_mock(api_keys=["alpha", "beta"])
def test_configured_keys_only(wavespeed_mock: WavespeedMock) -> None:
    def status(key: str) -> int:
        return httpx.post(
            BASE + Paths.SUBMIT, json=INPUTS, headers={"Authorization": f"Bearer {key}"}
        ).status_code

    assert [status("alpha"), status("beta"), status("gamma")] == [200, 200, 401]
    wavespeed_mock.configure(api_keys=["gamma"])
    assert [status("alpha"), status("gamma")] == [401, 200]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"video": INPUTS["video"]}, "Missing required parameter 'audio'"),
        ({"audio": INPUTS["audio"], "video": "file:///etc/passwd"}, "Invalid parameter 'video'"),
        ({**INPUTS, "guidence_scale": 2}, "Unknown parameter 'guidence_scale'"),
        ({**INPUTS, "guidance_scale": 9}, "Invalid parameter 'guidance_scale'"),
    ],
)
def test_invalid_body_is_400_naming_the_field(
    api: httpx.Client, body: dict[str, object], message: str
) -> None:
    r = api.post(Paths.SUBMIT, json=body)
    assert (r.status_code, r.json()["code"], r.json()["data"]) == (400, 400, None)
    assert r.json()["message"].startswith(message)


def test_webhook_must_be_http_and_not_combined_with_base64(api: httpx.Client) -> None:
    r = submit(api, params={"webhook": "ftp://hooks.example/x"})
    assert r.status_code == 400 and r.json()["message"].startswith("Invalid parameter 'webhook'")
    r = submit(api, params={"webhook": "https://hooks.example/x"}, enable_base64_output=True)
    assert r.status_code == 400 and "does not support base64 output" in r.json()["message"]


def test_unknown_prediction_is_404_on_both_routes(api: httpx.Client) -> None:
    for route in (Paths.RESULT, Paths.PREDICTION):
        r = poll(api, "0" * 32, route=route)
        assert (r.status_code, r.json()) == (
            404,
            {"code": 404, "message": "prediction not found", "data": None},
        )


def test_history_lists_newest_first_with_filters_and_pages(
    api: httpx.Client, wavespeed_mock: WavespeedMock
) -> None:
    ids = []
    for _ in range(3):
        ids.append(submit_ok(api, headers={"X-Mock-Scenario": "success; polls=1; seconds=1000"})["id"])
        wavespeed_mock.advance(60)
    poll_data(api, ids[0])  # completes the oldest
    page = api.post(Paths.HISTORY, json={"page": 1, "page_size": 2}).json()["data"]
    assert [p["id"] for p in page["items"]] == [ids[2], ids[1]] and page["total"] == 3 and page["page"] == 1
    page2 = api.post(Paths.HISTORY, json={"page": 2, "page_size": 2}).json()["data"]
    assert [p["id"] for p in page2["items"]] == [ids[0]]
    done = api.post(Paths.HISTORY, json={"status": "completed"}).json()["data"]
    assert [p["id"] for p in done["items"]] == [ids[0]]
    after = api.post(Paths.HISTORY, json={"created_after": "2025-01-01T00:01:00.000Z"}).json()["data"]
    assert {p["id"] for p in after["items"]} == {ids[1], ids[2]}
    assert api.post(Paths.HISTORY, json={"page_size": 101}).status_code == 400


def test_delete_then_404(api: httpx.Client) -> None:
    a, b = submit_ok(api)["id"], submit_ok(api)["id"]
    r = api.post(Paths.DELETE, json={"ids": [a, "f" * 32]})
    assert r.json()["data"] == {"deleted_count": 1}
    assert poll(api, a).status_code == 404 and poll(api, b).status_code == 200
    assert api.post(Paths.DELETE, json={"ids": []}).status_code == 400


def test_cancel_reports_failed_1405_and_is_409_once_ended(api: httpx.Client) -> None:
    pid = submit_ok(api, headers={"X-Mock-Scenario": "stuck"})["id"]
    r = api.post(Paths.CANCEL.format(id=pid))
    assert r.status_code == 200
    data = r.json()["data"]
    assert (data["status"], data["code"]) == ("failed", 1405) and data["error"].startswith("cancelled:")
    assert poll_data(api, pid) == data
    again = api.post(Paths.CANCEL.format(id=pid))
    assert (again.status_code, again.json()["message"]) == (409, "prediction already failed")
    assert api.post(Paths.CANCEL.format(id="0" * 32)).status_code == 404


def test_webhook_secret_and_balance(api: httpx.Client) -> None:
    assert api.get(Paths.WEBHOOK_SECRET).json()["data"] == {"secret": "whsec_mock-webhook-secret"}
    assert api.get(Paths.BALANCE).json()["data"] == {"balance": 100.0}


@pytest.mark.wavespeed_mock(max_jobs=3)
def test_job_store_is_bounded(api: httpx.Client, wavespeed_mock: WavespeedMock) -> None:
    ids = [submit_ok(api)["id"] for _ in range(5)]
    assert len(wavespeed_mock.jobs) == 3 and wavespeed_mock.jobs.evicted == 2
    assert [poll(api, i).status_code for i in ids] == [404, 404, 200, 200, 200]
