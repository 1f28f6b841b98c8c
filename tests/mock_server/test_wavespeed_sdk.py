"""The official `wavespeed` SDK (2.0.5, requests-based) against the mock on a real socket, only base_url changed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import wavespeed

from contracts import MODEL_ID
from mock_server.mock import WavespeedMock
from mock_server.output import sample_mp4

INPUTS = {"audio": "https://media.example/speech.wav", "video": "https://media.example/face.mp4"}


def _client(server: WavespeedMock, key: str = "sdk-key") -> wavespeed.Client:
    # retry_interval: the SDK sleeps retry_interval * (n+1) between retried polls; keep tests fast.
    return wavespeed.Client(api_key=key, base_url=server.base_url, retry_interval=0.01)


def test_run_returns_the_outputs(wavespeed_server: WavespeedMock) -> None:
    out = _client(wavespeed_server).run(MODEL_ID, INPUTS, poll_interval=0.01, timeout=30)
    (url,) = out["outputs"]
    assert httpx.get(url).content == sample_mp4()
    (submit,) = wavespeed_server.journal.submits()
    assert submit.headers["x-client-name"] == "wavespeed-python"
    assert submit.headers["authorization"] == "Bearer sdk-key"
    assert len(wavespeed_server.journal.polls(submit.prediction_id or "")) == 2


def test_get_result_returns_the_envelope(wavespeed_server: WavespeedMock) -> None:
    client = _client(wavespeed_server)
    client.run(MODEL_ID, INPUTS, poll_interval=0.01, timeout=30)
    pid = wavespeed_server.journal.submits()[0].prediction_id or ""
    envelope = client.get_result(pid)
    assert envelope["code"] == 200 and envelope["data"]["status"] == "completed"


def test_upload_works_and_the_url_serves_the_bytes(wavespeed_server: WavespeedMock, tmp_path: Path) -> None:
    path = tmp_path / "face.mp4"
    path.write_bytes(sample_mp4())
    url = _client(wavespeed_server).upload(str(path))
    assert httpx.get(url).content == sample_mp4()
    ticket, put = wavespeed_server.journal.entries()[:2]
    assert ticket.body == {"filename": "face.mp4", "size": len(sample_mp4()), "content_type": "video/mp4"}
    assert put.method == "PUT" and "authorization" not in put.headers


@pytest.mark.wavespeed_mock(scenario="no_face")
def test_a_failing_scenario_raises_with_the_error_and_task_id(wavespeed_server: WavespeedMock) -> None:
    with pytest.raises(RuntimeError, match=r"Prediction failed \(task_id: [0-9a-f]{32}\): no_face: No face"):
        _client(wavespeed_server).run(MODEL_ID, INPUTS, poll_interval=0.01, timeout=30)


@pytest.mark.wavespeed_mock(scenario="sync_timeout")
def test_sync_mode_timeout_is_reported_as_the_sdk_expects(wavespeed_server: WavespeedMock) -> None:
    client = _client(wavespeed_server)
    with pytest.raises(RuntimeError) as info:
        client.run(MODEL_ID, INPUTS, enable_sync_mode=True)
    message = str(info.value)
    assert message.startswith("Sync mode timed out (task_id: ")
    assert f"{wavespeed_server.base_url}/api/v3/predictions/" in message
    result = client.run_no_throw(MODEL_ID, INPUTS, enable_sync_mode=True)
    assert result["status"] == "processing" and result["outputs"] is None and len(result["task_id"]) == 32


def test_sync_mode_success(wavespeed_server: WavespeedMock) -> None:
    out = _client(wavespeed_server).run(MODEL_ID, INPUTS, enable_sync_mode=True)
    assert len(out["outputs"]) == 1


@pytest.mark.wavespeed_mock(scenario="rate_limit; times=2")
def test_429_on_polls_is_retried_by_the_sdk(
    wavespeed_server: WavespeedMock, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _client(wavespeed_server).run(MODEL_ID, INPUTS, poll_interval=0.01, timeout=30)
    assert out["outputs"]
    pid = wavespeed_server.journal.submits()[0].prediction_id or ""
    assert [e.status for e in wavespeed_server.journal.polls(pid)] == [429, 429, 200, 200]
    assert "HTTP 429" in capsys.readouterr().out  # the SDK announces its retries


@pytest.mark.wavespeed_mock(api_keys=["right"])
def test_wrong_key_fails_the_submit_with_401(wavespeed_server: WavespeedMock) -> None:
    with pytest.raises(RuntimeError, match="Failed to submit prediction: HTTP 401"):
        _client(wavespeed_server, key="wrong").run(MODEL_ID, INPUTS, poll_interval=0.01)


def test_unknown_id_is_404_without_retries(wavespeed_server: WavespeedMock) -> None:
    with pytest.raises(RuntimeError, match="HTTP 404"):
        _client(wavespeed_server).get_result("0" * 32)
    assert len(wavespeed_server.journal.entries()) == 1


def test_invalid_input_is_a_400_naming_the_field(wavespeed_server: WavespeedMock) -> None:
    with pytest.raises(RuntimeError, match=r"HTTP 400: .*Missing required parameter 'video'"):
        _client(wavespeed_server).run(MODEL_ID, {"audio": INPUTS["audio"]}, poll_interval=0.01)
