"""The routes over in-memory backends and a fake engine: lifecycle, errors, uploads, history, extensions."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import av

from contracts import PredictionResponse
from lipsync.errors import EngineError, NoFaceDetected, WeightsError
from tests.server.conftest import AUDIO, AUTH, OTHER_KEY, SUBMIT, VIDEO, Harness
from tests.server.fakes import FakeEngine, make_mp4, make_wav


def local(url: str) -> str:
    """The path+query of one of the server's own URLs (TestClient talks to http://testserver)."""
    parts = urlsplit(url)
    assert parts.netloc == "testserver"
    return f"{parts.path}?{parts.query}"


def test_submit_poll_download(harness: Harness) -> None:
    r = harness.submit({"seed": 7, "inference_steps": 25})
    assert r.status_code == 200
    body = PredictionResponse.model_validate(r.json())
    assert body.code == 200 and body.data.status == "created" and body.data.outputs == []
    assert body.data.urls.get == f"http://testserver/api/v3/predictions/{body.data.id}/result"

    data = harness.wait_status(body.data.id, {"completed", "failed"})
    assert data["status"] == "completed" and data["error"] == ""
    assert data["has_nsfw_contents"] == [False] and len(data["outputs"]) == 1
    assert harness.engine.calls[0]["seed"] == 7 and harness.engine.calls[0]["inference_steps"] == 25
    assert harness.engine.calls[0]["loop_mode"] == "pingpong"

    same = harness.client.get(f"/api/v3/predictions/{body.data.id}", headers=AUTH).json()
    assert same["data"] == data

    video = harness.client.get(local(data["outputs"][0]))
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(video.content)) as container:
        assert container.streams.video[0].frames >= 1


def test_sync_mode_returns_the_finished_prediction(harness: Harness) -> None:
    r = harness.submit({"enable_sync_mode": True})
    data = r.json()["data"]
    assert r.status_code == 200 and data["status"] == "completed" and data["outputs"]


def test_sync_mode_timeout_answers_processing_with_code_5004(harness_factory: Callable[..., Harness]) -> None:
    gate = threading.Event()
    h = harness_factory(FakeEngine(gate=gate), sync_timeout_s=0.3)
    r = h.submit({"enable_sync_mode": True})
    data = r.json()["data"]
    assert r.status_code == 200
    assert data["status"] == "processing" and data["code"] == 5004
    assert data["error"] == (
        "Sync mode timed out after 0.3 seconds. The prediction is still processing asynchronously."
    )
    gate.set()
    assert h.wait_status(data["id"], {"completed"})["outputs"]


def test_deterministic_failure_maps_the_error_code_and_never_says_http_5(
    harness_factory: Callable[..., Harness],
) -> None:
    h = harness_factory(FakeEngine(error=NoFaceDetected("No face detected in frame 0", frame_index=0)))
    data = h.submit({"enable_sync_mode": True}).json()["data"]
    assert data["status"] == "failed" and data["code"] == 1403
    assert data["error"].startswith("no_face: No face detected") and data["outputs"] == []
    assert "HTTP 5" not in data["error"]


def test_engine_errors_mention_of_http_5_is_defused(harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(FakeEngine(error=EngineError("upstream said HTTP 503")))
    data = h.submit({"enable_sync_mode": True}).json()["data"]
    assert data["code"] == 1403 and "HTTP 5" not in data["error"] and "503" in data["error"]


def test_weights_errors_and_crashes_fail_the_job_with_their_codes(
    harness_factory: Callable[..., Harness],
) -> None:
    h = harness_factory(FakeEngine(error=WeightsError("weights missing")))
    assert h.submit({"enable_sync_mode": True}).json()["data"]["code"] == 5003
    h2 = harness_factory(FakeEngine(error=ZeroDivisionError("boom")))
    data = h2.submit({"enable_sync_mode": True}).json()["data"]
    assert (data["status"], data["code"]) == ("failed", 5000)
    assert data["error"] == "internal_error: ZeroDivisionError: boom"


def test_validation_errors_are_400_envelopes_naming_the_field(harness: Harness) -> None:
    r = harness.client.post(SUBMIT, json={"video": VIDEO}, headers=AUTH)
    assert r.status_code == 400
    assert r.json() == {"code": 400, "message": "Missing required parameter 'audio'", "data": None}
    r = harness.client.post(SUBMIT, json={"video": "file:///etc/passwd", "audio": AUDIO}, headers=AUTH)
    assert r.status_code == 400 and "'video'" in r.json()["message"]
    r = harness.client.post(SUBMIT, json={"video": VIDEO, "audio": AUDIO, "guidence_scale": 2}, headers=AUTH)
    assert r.status_code == 400 and r.json()["message"] == "Unknown parameter 'guidence_scale'"
    assert harness.fetcher.calls == []


def test_unreachable_input_is_400_naming_the_field(harness: Harness) -> None:
    r = harness.submit({"audio": "https://media.example/missing.wav"})
    assert r.status_code == 400
    assert r.json()["message"].startswith("Invalid parameter 'audio': could not fetch the URL")


def test_unknown_and_foreign_predictions_are_404(harness: Harness) -> None:
    assert harness.result("nope").json() == {"code": 404, "message": "prediction not found", "data": None}
    job_id = harness.submit().json()["data"]["id"]
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    assert harness.result(job_id, headers=other).status_code == 404


def test_base64_output(harness: Harness) -> None:
    data = harness.submit({"enable_sync_mode": True, "enable_base64_output": True}).json()["data"]
    raw = base64.b64decode(data["outputs"][0], validate=True)
    assert raw[4:8] == b"ftyp"  # an MP4, inline, without a data: prefix
    again = harness.result(data["id"]).json()["data"]
    assert again["outputs"] == data["outputs"]


def test_base64_output_with_webhook_is_refused(harness: Harness) -> None:
    r = harness.submit({"enable_base64_output": True}, webhook="https://hooks.example/x")
    assert r.status_code == 400 and "base64" in r.json()["message"]


def test_webhook_to_a_private_address_is_refused_at_submit(harness: Harness) -> None:
    r = harness.submit(webhook="http://127.0.0.1:9/hook")
    assert r.status_code == 400
    assert r.json()["message"].startswith("Invalid parameter 'webhook'") and "loopback" in r.json()["message"]


def test_data_uri_inputs_are_accepted(harness: Harness) -> None:
    video = "data:video/mp4;base64," + base64.b64encode(make_mp4()).decode()
    audio = "data:audio/wav;base64," + base64.b64encode(make_wav()).decode()
    data = harness.submit({"video": video, "audio": audio, "enable_sync_mode": True}).json()["data"]
    assert data["status"] == "completed"
    assert harness.fetcher.calls == []


def test_non_media_inputs_are_refused_before_queueing(harness: Harness) -> None:
    html = "data:text/html;base64," + base64.b64encode(b"<html><body>Not found</body></html>").decode()
    r = harness.submit({"video": html})
    assert r.status_code == 400
    assert r.json()["message"] == (
        "Invalid parameter 'video': not a media file (it looks like text or an HTML/JSON page)"
    )
    noise = "data:application/octet-stream;base64," + base64.b64encode(bytes(range(256)) * 8).decode()
    r = harness.submit({"video": noise})
    assert r.status_code == 400 and "not a readable media file" in r.json()["message"]
    wav_as_video = "data:audio/wav;base64," + base64.b64encode(make_wav()).decode()
    r = harness.submit({"video": wav_as_video})
    assert (
        r.status_code == 400
        and r.json()["message"] == "Invalid parameter 'video': the file has no video stream"
    )
    silent = "data:video/mp4;base64," + base64.b64encode(make_mp4(with_audio=False)).decode()
    r = harness.submit({"audio": silent})
    assert (
        r.status_code == 400
        and r.json()["message"] == "Invalid parameter 'audio': the file has no audio stream"
    )
    assert harness.engine.calls == []
    items = harness.client.post("/api/v3/predictions", json={}, headers=AUTH).json()["data"]["items"]
    assert items == []


def test_oversized_inputs_are_refused(harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(max_input_bytes=1000)
    big = "data:video/mp4;base64," + base64.b64encode(make_mp4(frames=30)).decode()
    r = h.submit({"video": big})
    assert (
        r.status_code == 400
        and r.json()["message"] == "Invalid parameter 'video': larger than the 1000 byte limit"
    )
    r = h.client.post(
        "/api/v3/media/uploads",
        json={"filename": "a.mp4", "size": 5000, "content_type": "video/mp4"},
        headers=AUTH,
    )
    assert r.status_code == 413 and "'size'" in r.json()["message"]


def test_ticket_upload_then_submit_resolves_locally(harness: Harness) -> None:
    video = make_mp4()
    ticket = harness.client.post(
        "/api/v3/media/uploads",
        json={"filename": "../face video.mp4", "size": len(video), "content_type": "video/mp4"},
        headers=AUTH,
    ).json()
    assert ticket["code"] == 200 and ticket["data"]["upload"]["method"] == "PUT"
    assert ticket["data"]["type"] == "video"
    put = harness.client.put(
        local(ticket["data"]["upload"]["url"]), content=video, headers=ticket["data"]["upload"]["headers"]
    )
    assert put.status_code == 200
    download_url = ticket["data"]["download_url"]
    assert "face_video.mp4" in download_url
    assert harness.client.get(local(download_url)).content == video

    data = harness.submit({"video": download_url, "enable_sync_mode": True}).json()["data"]
    assert data["status"] == "completed"
    assert harness.fetcher.calls == [AUDIO]  # the upload was used in place, not fetched


def test_put_beyond_the_announced_size_or_with_a_bad_signature_is_refused(harness: Harness) -> None:
    ticket = harness.client.post(
        "/api/v3/media/uploads", json={"filename": "a.wav", "size": 10}, headers=AUTH
    ).json()["data"]
    url = local(ticket["upload"]["url"])
    assert harness.client.put(url, content=b"x" * 11).status_code == 413
    tampered = url.replace("max=10", "max=99999")
    assert harness.client.put(tampered, content=b"x" * 11).status_code == 403
    assert harness.client.put(url, content=b"x" * 10).status_code == 200


def test_legacy_binary_upload(harness: Harness) -> None:
    audio = make_wav()
    r = harness.client.post(
        "/api/v3/media/upload/binary", files={"file": ("speech.wav", audio, "audio/wav")}, headers=AUTH
    )
    data = r.json()["data"]
    assert r.status_code == 200 and data["type"] == "audio" and data["size"] == len(audio)
    assert data["filename"] == "speech.wav"
    result = harness.submit({"audio": data["download_url"], "enable_sync_mode": True}).json()["data"]
    assert result["status"] == "completed" and harness.fetcher.calls == [VIDEO]


def test_history_and_delete(harness: Harness) -> None:
    ids = [harness.submit({"enable_sync_mode": True}).json()["data"]["id"] for _ in range(3)]
    page = harness.client.post("/api/v3/predictions", json={"page": 1, "page_size": 2}, headers=AUTH).json()
    assert page["data"]["total"] == 3 and [p["id"] for p in page["data"]["items"]] == ids[::-1][:2]
    none = harness.client.post(
        "/api/v3/predictions", json={"created_after": "2999-01-01T00:00:00Z"}, headers=AUTH
    ).json()
    assert none["data"]["items"] == [] and none["data"]["total"] == 0
    bad = harness.client.post("/api/v3/predictions", json={"created_after": "yesterday"}, headers=AUTH)
    assert bad.status_code == 400 and "'created_after'" in bad.json()["message"]

    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    r = harness.client.post("/api/v3/predictions/delete", json={"ids": ids[:1]}, headers=other)
    assert r.json()["data"] == {"deleted_count": 0}
    r = harness.client.post("/api/v3/predictions/delete", json={"ids": [*ids[:2], "nope"]}, headers=AUTH)
    assert r.json()["data"] == {"deleted_count": 2}
    assert harness.result(ids[0]).status_code == 404 and harness.result(ids[2]).status_code == 200


def test_cancel_queued_and_running_jobs(harness_factory: Callable[..., Harness]) -> None:
    gate = threading.Event()
    h = harness_factory(FakeEngine(gate=gate))
    running = h.submit().json()["data"]["id"]
    assert h.engine.started.wait(10)
    queued = h.submit().json()["data"]["id"]

    r = h.client.post(f"/api/v3/predictions/{queued}/cancel", headers=AUTH)
    data = r.json()["data"]
    assert r.status_code == 200 and (data["status"], data["code"]) == ("failed", 1405)
    assert data["error"] == "cancelled: The prediction was cancelled"

    data = h.client.post(f"/api/v3/predictions/{running}/cancel", headers=AUTH).json()["data"]
    assert (data["status"], data["code"]) == ("failed", 1405)  # the engine stopped at its next progress call
    assert len(h.engine.calls) == 1

    again = h.client.post(f"/api/v3/predictions/{running}/cancel", headers=AUTH)
    assert again.status_code == 409 and again.json()["message"] == "prediction already failed"
    assert h.client.post("/api/v3/predictions/nope/cancel", headers=AUTH).status_code == 404


def test_progress_is_reported_while_processing(harness_factory: Callable[..., Harness]) -> None:
    gate = threading.Event()
    h = harness_factory(FakeEngine(gate=gate))
    job_id = h.submit().json()["data"]["id"]
    h.wait_status(job_id, {"processing"})
    seen = [h.result(job_id).json()["data"].get("progress") for _ in range(50)]
    assert 0.5 in seen and all(p is not None and 0 <= p <= 1 for p in seen)
    gate.set()
    done = h.wait_status(job_id, {"completed"})
    assert "progress" not in done


def test_account_endpoints_and_health(harness: Harness) -> None:
    secret = harness.client.get("/api/v3/webhook/secret", headers=AUTH).json()["data"]["secret"]
    other = harness.client.get("/api/v3/webhook/secret", headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert secret.startswith("whsec_") and other.json()["data"]["secret"] != secret
    assert harness.client.get("/api/v3/balance", headers=AUTH).json()["data"]["balance"] > 0
    health = harness.client.get("/healthz").json()
    assert health["data"]["status"] == "ok" and health["data"]["runner"]["alive"] == 1
