"""The default job lifecycle, the clock, ids, outputs, sync mode and base64 output — all through HTTP."""

from __future__ import annotations

import base64
import io

import av
import httpx
import pytest

from contracts import Paths, PredictionResponse
from mock_server.mock import WavespeedMock
from mock_server.output import SAMPLE_FRAMES, SAMPLE_SIZE
from tests.mock_server.conftest import BASE, poll, poll_data, submit, submit_ok


def test_submit_answers_200_created_with_the_full_envelope(api: httpx.Client) -> None:
    response = submit(api)
    assert response.status_code == 200
    body = PredictionResponse.model_validate(response.json())
    assert (body.code, body.message) == (200, "success")
    data = body.data
    assert data.status == "created" and data.outputs == [] and data.error == ""
    assert data.model == "bytedance/lipsync/audio-to-video"
    assert data.urls.get == f"{BASE}/api/v3/predictions/{data.id}/result"
    assert data.created_at == "2025-01-01T00:00:00.000Z"  # the virtual clock's epoch
    assert response.headers["x-mock-scenario"] == "success"


def test_created_processing_completed_over_polls_with_progress_and_timings(api: httpx.Client) -> None:
    pid = submit_ok(api)["id"]
    first = poll_data(api, pid)
    assert (first["status"], first["progress"], first["outputs"]) == ("processing", 0.5, [])
    done = poll_data(api, pid)
    assert done["status"] == "completed"
    assert "progress" not in done
    assert done["outputs"] == [f"{BASE}/storage/outputs/{pid}/output.mp4"]
    assert done["has_nsfw_contents"] == [False]
    assert done["timings"] == {"inference": 2000}
    assert "face" not in done  # no face choice, no report: WaveSpeed's shape
    assert poll_data(api, pid) == done  # terminal states never change


@pytest.mark.parametrize(
    ("face", "report"),
    [
        ({"point": [0.7, 0.4], "time": 1.2}, {"mode": "point", "track": 0, "frame": 30}),
        ({"auto": True}, {"mode": "auto", "track": 0, "score": 0.5}),
        ({"boxes": [{"x1": 0.1, "y1": 0.1, "x2": 0.4, "y2": 0.5}, None]}, {"mode": "boxes"}),
        ("largest", None),
    ],
)
def test_a_completed_job_reports_the_requested_face(
    api: httpx.Client, face: object, report: dict[str, object] | None
) -> None:
    """The mock echoes the choice in the real server's shape (it sees no video: track 0, a nominal score)."""
    pid = submit_ok(api, face=face, headers={"X-Mock-Scenario": "success; polls=1"})["id"]
    done = poll_data(api, pid)
    assert done["status"] == "completed" and done.get("face") == report
    failed = submit_ok(api, face=face, headers={"X-Mock-Scenario": "no_face; polls=1"})["id"]
    assert "face" not in poll_data(api, failed)


def test_both_result_routes_answer_the_same(api: httpx.Client) -> None:
    pid = submit_ok(api, headers={"X-Mock-Scenario": "success; polls=1"})["id"]
    a = poll(api, pid, route=Paths.RESULT).json()
    b = poll(api, pid, route=Paths.PREDICTION).json()
    assert a == b and a["data"]["status"] == "completed"


@pytest.mark.wavespeed_mock(scenario="success; polls=100; seconds=10")
def test_virtual_time_drives_the_lifecycle_in_process_and_over_http(
    api: httpx.Client, wavespeed_mock: WavespeedMock
) -> None:
    pid = submit_ok(api)["id"]
    wavespeed_mock.advance(2.5)
    assert poll_data(api, pid)["progress"] == 0.25
    clock = api.post("/__mock/clock/advance", json={"seconds": 7.5}).json()["data"]
    assert clock["iso"] == "2025-01-01T00:00:10.000Z"
    assert poll_data(api, pid)["status"] == "completed"
    assert api.post("/__mock/clock/advance", json={"seconds": -1}).status_code == 400


def test_the_output_is_a_playable_h264_aac_mp4(api: httpx.Client) -> None:
    pid = submit_ok(api, headers={"X-Mock-Scenario": "success; polls=1"})["id"]
    url = poll_data(api, pid)["outputs"][0]
    response = httpx.get(url)  # a plain client: outputs need no key, like a CDN URL
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        kinds = {s.type: s.codec_context.name for s in container.streams}
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert kinds == {"video": "h264", "audio": "aac"}
    assert len(frames) == SAMPLE_FRAMES and frames[0].shape == (SAMPLE_SIZE, SAMPLE_SIZE, 3)
    assert (frames[0] != frames[-1]).any()


def test_output_of_an_unfinished_job_is_404(api: httpx.Client) -> None:
    pid = submit_ok(api)["id"]
    assert api.get(f"/storage/outputs/{pid}/output.mp4").status_code == 404


def _ids(client: httpx.Client, n: int) -> list[str]:
    return [submit_ok(client)["id"] for _ in range(n)]


def test_ids_are_seeded_and_reproducible(api: httpx.Client, wavespeed_mock: WavespeedMock) -> None:
    first = _ids(api, 3)
    assert len(set(first)) == 3 and all(len(i) == 32 and int(i, 16) >= 0 for i in first)
    api.post("/__mock/reset")
    assert _ids(api, 3) == first
    wavespeed_mock.configure(seed=1)
    assert _ids(api, 3) != first


def test_sync_mode_returns_the_finished_prediction(api: httpx.Client) -> None:
    data = submit_ok(api, enable_sync_mode=True)
    assert data["status"] == "completed" and data["outputs"]
    assert poll_data(api, data["id"]) == data


def test_sync_mode_failure_returns_failed(api: httpx.Client) -> None:
    data = submit_ok(api, enable_sync_mode=True, headers={"X-Mock-Scenario": "media_unreachable"})
    assert (data["status"], data["code"]) == ("failed", 1402)


@pytest.mark.parametrize(
    ("scenario", "after"), [("sync_timeout", 90), ("sync_timeout; after=30", 30), ("stuck", 90)]
)
def test_sync_mode_timeout_is_200_processing_with_code_5004(
    api: httpx.Client, scenario: str, after: int
) -> None:
    response = submit(api, enable_sync_mode=True, headers={"X-Mock-Scenario": scenario})
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["status"], data["code"]) == ("processing", 5004)
    assert data["error"] == (
        f"Sync mode timed out after {after} seconds. The prediction is still processing asynchronously."
    )
    later = poll_data(api, data["id"])  # the job keeps going; its later polls carry no timeout error
    assert later["status"] in ("processing", "completed") and "code" not in later


@pytest.mark.wavespeed_mock(sync_timeout_s=5)
def test_sync_mode_times_out_when_the_job_is_longer_than_the_wait(api: httpx.Client) -> None:
    assert (
        submit_ok(api, enable_sync_mode=True, headers={"X-Mock-Scenario": "success; seconds=4"})["status"]
        == "completed"
    )
    slow = submit_ok(api, enable_sync_mode=True, headers={"X-Mock-Scenario": "success; seconds=6"})
    assert (slow["status"], slow["code"]) == ("processing", 5004)
    assert "after 5 seconds" in slow["error"]


def test_base64_output_is_the_bare_mp4_bytes(api: httpx.Client) -> None:
    data = submit_ok(api, enable_base64_output=True, enable_sync_mode=True)
    (value,) = data["outputs"]
    assert not value.startswith("data:")
    raw = base64.b64decode(value, validate=True)
    assert raw == httpx.get(f"{BASE}/storage/outputs/{data['id']}/output.mp4").content
