"""WaveSpeed-shaped responses, transcribed from the examples in shared/api/WAVESPEED.md (§1.3, §1.4, §2.1,
§2.5, §2.7) rather than produced by our own server, so the client is tested against what the real service
sends. A test checks that each of them parses with the committed ``contracts``.
"""

from __future__ import annotations

from typing import Any

import httpx

BASE = "https://api.wavespeed.test"
CDN = "https://cdn.wavespeed.test"
STORAGE = "https://storage.example.com"
TASK_ID = "6f0c3f6c0b8a4c1e9d2b7a5e4f3c2d1a"
OUTPUT_URL = f"{CDN}/outputs/{TASK_ID}/output.mp4"

SUBMIT_URL = f"{BASE}/api/v3/bytedance/lipsync/audio-to-video"
RESULT_URL = f"{BASE}/api/v3/predictions/{TASK_ID}/result"
TICKET_URL = f"{BASE}/api/v3/media/uploads"
BINARY_URL = f"{BASE}/api/v3/media/upload/binary"
CANCEL_URL = f"{BASE}/api/v3/predictions/{TASK_ID}/cancel"

#: The model page's documented request body.
DOC_AUDIO = "https://replicate.delivery/pbxt/MGZuENopzAwWcpFsZ7SwoZ7itP4gvqasswPeEJwbRHTxtkwF/demo2_audio.wav"
DOC_VIDEO = "https://replicate.delivery/pbxt/MGZuEgzJZh6avv1LDEMppJZXLP9avGXqRuH7iAb7MBAz0Wu4/demo2_video.mp4"


def prediction(status: str, **changes: Any) -> dict[str, Any]:
    """The §2.1 ``data`` object (created), with ``changes`` applied for later states."""
    data: dict[str, Any] = {
        "id": TASK_ID,
        "model": "bytedance/lipsync/audio-to-video",
        "outputs": [],
        "urls": {"get": RESULT_URL},
        "has_nsfw_contents": [],
        "status": status,
        "created_at": "2023-04-01T12:34:56.789Z",
        "error": "",
        "timings": {"inference": 0},
    }
    data.update(changes)
    return data


def envelope(data: Any) -> dict[str, Any]:
    return {"code": 200, "message": "success", "data": data}


def ok(data: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(200, json=envelope(data), headers=headers)


CREATED = prediction("created")
PROCESSING = prediction("processing")
COMPLETED = prediction(
    "completed",
    outputs=[OUTPUT_URL],
    has_nsfw_contents=[False],
    timings={"inference": 6710},
    executionTime=6710,
)
#: §2.7's failed-task example, on our model.
FAILED_1402 = prediction("failed", code=1402, error="Failed to download image from the provided URL.")
#: §1.4: the sync-mode timeout as the SDK's tests show it (a minimal ``data``: no urls, no created_at).
SYNC_TIMEOUT = {
    "id": TASK_ID,
    "status": "processing",
    "code": 5004,
    "error": "Sync mode timed out after 90 seconds. The prediction is still processing asynchronously.",
}

#: §1.3(d): the ticket response used by the SDK's own tests.
TICKET = {
    "type": "video",
    "download_url": f"{CDN}/media/uploaded.mp4",
    "filename": "face.mp4",
    "size": 1024,
    "upload": {"method": "PUT", "url": f"{STORAGE}/upload", "headers": {"Content-Type": "video/mp4"}},
}
#: §1.3(d) legacy multipart upload response.
BINARY_RESULT = {
    "type": "video",
    "download_url": f"{CDN}/media/legacy.mp4",
    "filename": "face.mp4",
    "size": 1024,
}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """The WaveSpeed-style error body recommended in §1.8: ``{code, message, data: null}``."""
    return httpx.Response(status, json={"code": status, "message": message, "data": None}, headers=headers)
