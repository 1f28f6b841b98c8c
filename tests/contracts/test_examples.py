"""The documented WaveSpeed examples (../shared/api/WAVESPEED.md) parse and re-serialise unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest

import contracts as c

SUBMIT_RESPONSE = {
    "code": 200,
    "message": "success",
    "data": {
        "id": "6f0c",
        "model": "bytedance/lipsync/audio-to-video",
        "outputs": [],
        "urls": {"get": "https://api.wavespeed.ai/api/v3/predictions/6f0c/result"},
        "has_nsfw_contents": [],
        "status": "created",
        "created_at": "2023-04-01T12:34:56.789Z",
        "error": "",
        "timings": {"inference": 0},
    },
}

WEBHOOK_PAYLOAD = {
    "id": "task-1",
    "model": "wavespeed-ai/flux-dev-lora",
    "input": {"prompt": "x"},
    "outputs": ["https://cdn.example/out.mp4"],
    "urls": {"get": "https://api.wavespeed.ai/api/v3/predictions/task-1/result"},
    "has_nsfw_contents": [False],
    "status": "completed",
    "created_at": "2025-09-25T09:12:48.239112031Z",
    "error": "",
    "executionTime": 6710,
    "timings": {"inference": 6710},
}

SYNC_TIMEOUT = {
    "data": {
        "id": "abc",
        "status": "processing",
        "code": 5004,
        "error": "Sync mode timed out after 90 seconds. The prediction is still processing asynchronously.",
    }
}

FAILED = {
    "id": "abc123",
    "model": "model-name",
    "status": "failed",
    "code": 1402,
    "error": "Failed to download image from the provided URL.",
    "outputs": [],
}

TICKET = {
    "code": 200,
    "message": "success",
    "data": {
        "type": "image",
        "download_url": "https://example/uploaded.png",
        "filename": "test.png",
        "size": 1024,
        "upload": {
            "method": "PUT",
            "url": "https://storage.example.com/upload",
            "headers": {"Content-Type": "image/png"},
        },
    },
}

BINARY = {
    "code": 200,
    "message": "success",
    "data": {"type": "video", "download_url": "https://example/v.mp4", "filename": "v.mp4", "size": 10},
}


def _roundtrip(model: Any, payload: dict[str, Any]) -> dict[str, Any]:
    parsed = model.model_validate_json(json.dumps(payload))
    return json.loads(parsed.model_dump_json())


@pytest.mark.parametrize(
    ("model", "payload"),
    [
        (c.PredictionResponse, SUBMIT_RESPONSE),
        (c.WebhookPayload, WEBHOOK_PAYLOAD),
        (c.UploadTicketResponse, TICKET),
        (c.BinaryUploadResponse, BINARY),
    ],
    ids=["submit", "webhook", "ticket", "binary"],
)
def test_documented_examples_roundtrip_unchanged(model: Any, payload: dict[str, Any]) -> None:
    assert _roundtrip(model, payload) == payload


def test_failed_prediction_keeps_task_code() -> None:
    # The documented failed example omits urls/created_at; a full one from our server has them.
    full = {**FAILED, "urls": {"get": "u"}, "created_at": "2023-04-01T12:34:56.789Z"}
    pred = c.Prediction.model_validate(full)
    assert pred.code == c.TaskErrorCode.MEDIA_ACCESS_FAILED
    assert pred.is_terminal
    out = json.loads(pred.model_dump_json())
    assert out["code"] == 1402 and out["error"] == FAILED["error"]


def test_sync_timeout_shape_has_code_inside_data() -> None:
    pred = c.Prediction.model_validate(
        {**SYNC_TIMEOUT["data"], "urls": {"get": "u"}, "created_at": "2023-04-01T12:34:56.789Z"}
    )
    dumped = json.loads(c.PredictionResponse(data=pred).model_dump_json())
    assert dumped["data"]["code"] == 5004
    assert dumped["data"]["status"] == "processing"


def test_extensions_are_omitted_when_unset_and_emitted_when_set() -> None:
    pred = c.Prediction.new("p1", "http://h:1/")
    dumped = json.loads(pred.model_dump_json())
    assert "progress" not in dumped and "code" not in dumped and "face" not in dumped
    assert "queue" not in dumped["timings"]
    assert dumped["urls"]["get"] == "http://h:1/api/v3/predictions/p1/result"
    assert dumped["status"] == "created" and dumped["outputs"] == [] and dumped["error"] == ""
    pred.progress = 0.5
    pred.timings.queue = 12
    dumped = json.loads(pred.model_dump_json())
    assert dumped["progress"] == 0.5 and dumped["timings"]["queue"] == 12


COMPLETED_WITH_FACE = {
    **WEBHOOK_PAYLOAD,
    "face": {"mode": "auto", "track": 1, "score": 0.62, "runner_up": -0.05, "frames_with_face": 60},
}


def test_the_face_report_extension_parses_and_reserialises_unchanged() -> None:
    pred = c.Prediction.model_validate_json(json.dumps(COMPLETED_WITH_FACE))
    assert isinstance(pred.face, c.FaceReport)
    assert (pred.face.mode, pred.face.track, pred.face.score, pred.face.runner_up) == ("auto", 1, 0.62, -0.05)
    assert pred.face.fallback is None and pred.face.frame is None
    # Fields that do not apply are left out, not sent as null; unknown keys of a newer server are kept.
    assert json.loads(pred.model_dump_json()) == COMPLETED_WITH_FACE
    fallback = {"mode": "auto", "fallback": "largest", "reason": "the video has no sound track", "new": 1}
    assert json.loads(c.FaceReport.model_validate(fallback).model_dump_json()) == fallback
    # A plain WaveSpeed prediction has none.
    assert c.WebhookPayload.model_validate(WEBHOOK_PAYLOAD).face is None


@pytest.mark.parametrize(
    "bad",
    [
        {"track": 1},  # no mode
        {"mode": "nearest"},
        {"mode": "point", "track": -1},
        {"mode": "point", "track": "1"},
        {"mode": "auto", "score": True},
        {"mode": "auto", "fallback": "smallest"},
    ],
)
def test_a_face_report_is_checked_like_its_schema(bad: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        c.FaceReport.model_validate(bad)


def test_created_at_format() -> None:
    from datetime import UTC, datetime

    assert c.utc_now_iso(datetime(2023, 4, 1, 12, 34, 56, 789000, tzinfo=UTC)) == "2023-04-01T12:34:56.789Z"


def test_error_envelope_has_null_data() -> None:
    assert c.error_envelope(404, "prediction not found") == {
        "code": 404,
        "message": "prediction not found",
        "data": None,
    }
