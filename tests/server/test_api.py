"""The routes over in-memory backends and a fake engine: lifecycle, errors, uploads, history, extensions."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import av

from contracts import PredictionResponse
from lipsync.errors import EngineError, NoFaceDetected, WeightsError
from lipsync.server.local_storage import LocalStorage
from tests.server.conftest import AUDIO, AUTH, OTHER_KEY, SUBMIT, VIDEO, Harness, wait_until
from tests.server.fakes import FakeEngine, GatedFetcher, make_mp4, make_wav


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


def test_submit_answers_created_at_once_and_resolves_inputs_in_the_background(
    harness_factory: Callable[..., Harness],
) -> None:
    """The download happens after the submit answered: a fetcher that has not delivered yet cannot hold
    the submit up (WaveSpeed's SDK gives a submit 60 s), and the job is not queued before it has."""
    fetcher = GatedFetcher()
    h = harness_factory(fetcher=fetcher)
    r = h.submit()
    assert r.status_code == 200 and r.json()["data"]["status"] == "created"
    assert fetcher.waiting.wait(10)  # the download started, and is still held
    job_id = r.json()["data"]["id"]
    assert h.result(job_id).json()["data"]["status"] == "created" and h.engine.calls == []
    fetcher.gate.set()
    data = h.wait_status(job_id, {"completed", "failed"})
    assert data["status"] == "completed" and data["timings"]["download"] >= 0


def test_unreachable_input_fails_the_job_with_1402_naming_the_field(harness: Harness) -> None:
    r = harness.submit({"audio": "https://media.example/missing.wav"})
    assert r.status_code == 200 and r.json()["data"]["status"] == "created"
    data = harness.wait_status(r.json()["data"]["id"], {"completed", "failed"})
    assert (data["status"], data["code"], data["outputs"]) == ("failed", 1402, [])
    assert data["error"] == (
        "media_not_reachable: input 'audio': could not fetch the URL: the media server answered status 404"
    )
    assert harness.engine.calls == []


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


def test_non_media_inputs_fail_the_job_with_1401_before_it_is_queued(
    harness_factory: Callable[..., Harness], tmp_path: Path
) -> None:
    media = tmp_path / "media"
    harness = harness_factory(storage=LocalStorage(media))

    def outcome(change: dict[str, str]) -> tuple[str, int, str]:
        r = harness.submit(change)
        assert r.status_code == 200, r.text
        data = harness.wait_status(r.json()["data"]["id"], {"completed", "failed"})
        return data["status"], data["code"], data["error"]

    def data_uri(mime: str, raw: bytes) -> str:
        return f"data:{mime};base64," + base64.b64encode(raw).decode()

    html = data_uri("text/html", b"<html><body>Not found</body></html>")
    assert outcome({"video": html}) == (
        "failed",
        1401,
        "media_unreadable: input 'video': not a media file (it looks like text or an HTML/JSON page)",
    )
    status, code, error = outcome({"video": data_uri("application/octet-stream", bytes(range(256)) * 8)})
    assert (status, code) == ("failed", 1401)
    assert error.startswith("media_unreadable: input 'video': not a readable media file")
    assert outcome({"video": data_uri("audio/wav", make_wav())}) == (
        "failed",
        1401,
        "no_video_stream: input 'video': the file has no video stream",
    )
    assert outcome({"audio": data_uri("video/mp4", make_mp4(with_audio=False))}) == (
        "failed",
        1401,
        "no_audio_stream: input 'audio': the file has no audio stream",
    )
    assert harness.engine.calls == []  # never queued

    # Failed jobs keep no inputs: the resolver deletes them just after the job is marked failed (only once it
    # knows the job is still its own), so a poll may see "failed" a moment before the files are gone.
    wait_until(
        lambda: not [p for p in (media / "inputs").rglob("*") if p.is_file()], "the failed jobs' inputs to go"
    )


def test_oversized_inputs_are_refused(harness_factory: Callable[..., Harness]) -> None:
    # Issue 13: a data: URI over the cap is a 400 at submit (it used to be accepted, then fail with 1402).
    h = harness_factory(max_input_bytes=1000)
    video = make_mp4(frames=30)
    big = "data:video/mp4;base64," + base64.b64encode(video).decode()
    r = h.submit({"video": big})
    assert r.status_code == 400
    assert r.json()["message"].startswith(
        f"Invalid parameter 'video': the data: URI carries {len(video)} bytes, more than the 1000 byte limit"
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


def test_health_separates_current_values_from_totals(harness: Harness) -> None:
    job_id = harness.submit().json()["data"]["id"]
    harness.wait_status(job_id, {"completed"})
    inputs = harness.client.get("/healthz").json()["data"]["inputs"]
    assert inputs == {"resolving": 0, "queued_total": 1, "failed_total": 0}


def test_sync_mode_answers_an_input_failure_as_the_failed_job(harness: Harness) -> None:
    r = harness.submit({"video": "https://media.example/missing.mp4", "enable_sync_mode": True})
    data = r.json()["data"]
    assert r.status_code == 200 and (data["status"], data["code"]) == ("failed", 1402)
    assert data["error"].startswith("media_not_reachable: input 'video': could not fetch the URL")


def test_an_input_failure_sends_the_webhook(harness_factory: Callable[..., Harness]) -> None:
    harness = harness_factory(fetch_allow="127.0.0.1")  # the webhook target (never contacted: recorded)
    r = harness.submit({"audio": "https://media.example/missing.wav"}, webhook="http://127.0.0.1:9/hook")
    job_id = r.json()["data"]["id"]
    harness.wait_status(job_id, {"failed"})
    wait_until(lambda: harness.webhooks.sent, "the webhook")  # the notifier sends in the background
    (sent,) = harness.webhooks.sent
    body = json.loads(sent["body"])
    assert (sent["webhook_id"], body["status"], body["code"]) == (job_id, "failed", 1402)


def test_cancel_and_delete_while_inputs_are_being_fetched(harness_factory: Callable[..., Harness]) -> None:
    fetcher = GatedFetcher()
    h = harness_factory(fetcher=fetcher)
    cancelled = h.submit().json()["data"]["id"]
    assert fetcher.waiting.wait(10)
    r = h.client.post(f"/api/v3/predictions/{cancelled}/cancel", headers=AUTH)
    data = r.json()["data"]
    assert r.status_code == 200 and (data["status"], data["code"]) == ("failed", 1405)
    deleted = h.submit().json()["data"]["id"]
    r = h.client.post("/api/v3/predictions/delete", json={"ids": [deleted]}, headers=AUTH)
    assert r.json()["data"] == {"deleted_count": 1}
    fetcher.gate.set()  # whatever was still downloading finishes now, into nothing
    later = h.submit({"enable_sync_mode": True}).json()["data"]
    assert later["status"] == "completed"
    assert h.result(cancelled).json()["data"]["code"] == 1405 and h.result(deleted).status_code == 404
    assert len(h.engine.calls) == 1  # only the last job ran


def test_history_shows_a_job_being_resolved_as_created(harness_factory: Callable[..., Harness]) -> None:
    fetcher = GatedFetcher()
    h = harness_factory(fetcher=fetcher)
    job_id = h.submit().json()["data"]["id"]
    page = h.client.post("/api/v3/predictions", json={"status": "created"}, headers=AUTH).json()["data"]
    assert [(p["id"], p["status"]) for p in page["items"]] == [(job_id, "created")]
    fetcher.gate.set()
    assert h.wait_status(job_id, {"completed", "failed"})["status"] == "completed"


def test_the_face_report_reaches_the_result_the_history_and_the_webhook(
    harness_factory: Callable[..., Harness],
) -> None:
    """What the engine says it synced (``RunResult.face``) is the prediction's ``face`` extension."""
    report = {"mode": "auto", "track": 1, "score": 0.62, "runner_up": -0.05, "frames_with_face": 60}
    h = harness_factory(FakeEngine(face=dict(report)), fetch_allow="127.0.0.1")  # the webhook is recorded
    job_id = h.submit({"face": {"auto": True}}, webhook="http://127.0.0.1:9/hook").json()["data"]["id"]
    data = h.wait_status(job_id, {"completed", "failed"})
    assert data["status"] == "completed" and data["face"] == report
    assert h.engine.calls[0]["face"] == {"auto": True}
    page = h.client.post("/api/v3/predictions", json={"page": 1}, headers=AUTH).json()["data"]
    assert [item["face"] for item in page["items"]] == [report]
    wait_until(lambda: h.webhooks.sent, "the webhook")
    assert json.loads(h.webhooks.sent[0]["body"])["face"] == report


def test_a_face_fallback_report_says_why(harness_factory: Callable[..., Harness]) -> None:
    report = {
        "mode": "auto",
        "fallback": "largest",
        "reason": "the video has no sound track: synced the largest face",
    }
    h = harness_factory(FakeEngine(face=dict(report)))
    data = h.submit({"face": {"auto": True}, "enable_sync_mode": True}).json()["data"]
    assert data["status"] == "completed" and data["face"] == report


def test_without_a_face_choice_the_prediction_has_no_face_field(
    harness_factory: Callable[..., Harness],
) -> None:
    """WaveSpeed's shape: the reference's largest face is not reported (the pipeline's default report), and
    a report that is not a FaceReport (a custom engine's) is dropped without failing the job."""
    for face in ({"mode": "largest"}, None, {"mode": "nearest", "track": "x"}):
        h = harness_factory(FakeEngine(face=face))
        data = h.submit({"enable_sync_mode": True}).json()["data"]
        assert data["status"] == "completed" and "face" not in data, face
        polled = h.result(data["id"]).json()["data"]
        assert "face" not in polled
