"""The official SDK against ``lipsync serve`` running the REAL pipeline with tiny random weights.

``lipsync weights tiny`` writes the checkpoints (official formats); the server's worker process loads them
with torch, detects faces with MediaPipe on a real clip (a window of ../shared/media/demo1 around the
face), runs the whole pipeline and returns an MP4 (noise in the mouth region: the weights are random).
Inputs are served by a local HTTP server and fetched through the SSRF guard (LIPSYNC_FETCH_ALLOW).
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator

import av
import httpx
import pytest
import wavespeed
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from contracts import MODEL_ID
from lipsync.server.serving import ServerThread
from tests.conftest import MEDIA_DIR, require_path
from tests.pipeline.clips import face_clip, speech
from tests.server.test_sdk_e2e import API_KEY, LIPSYNC, Served, start_serve, stop

pytestmark = pytest.mark.slow

AUDIO_S = 0.3


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    media = require_path(MEDIA_DIR)
    root = tmp_path_factory.mktemp("tiny-site")
    face_clip(media, root / "face.mp4", frames=6)
    speech(media, root / "speech.wav", AUDIO_S)  # longer than the 6-frame video: it ping-pongs
    with ServerThread(Starlette(routes=[Mount("/", StaticFiles(directory=root))])) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    weights = tmp_path_factory.mktemp("weights")
    done = subprocess.run(
        [LIPSYNC, "weights", "tiny", str(weights), "--version", "1.5"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    data = tmp_path_factory.mktemp("tiny-serve") / "data"
    served = start_serve(
        data,
        "--weights-dir",
        str(weights),
        "--face-detector",
        "mediapipe",
        "--device",
        "cpu",
        engine="",
        extra_env={"LIPSYNC_MODEL_VERSION": "1.5"},
    )
    yield served
    stop(served)


def test_sdk_run_with_the_tiny_engine_returns_a_playable_mp4(tiny_server: Served, site: str) -> None:
    client = wavespeed.Client(api_key=API_KEY, base_url=tiny_server.base_url, retry_interval=0.1)
    # The extension fields keep the CPU run short (10 DDIM steps, no classifier-free guidance); they pass
    # through the SDK untouched. The face is chosen by a point on it (the clip's one person: the same frames
    # as the default), so the result reports the choice.
    inputs = {
        "video": f"{site}/face.mp4",
        "audio": f"{site}/speech.wav",
        "inference_steps": 10,
        "guidance_scale": 1.0,
        "face": {"point": [0.5, 0.45], "time": 0.0},
    }
    out = client.run(MODEL_ID, inputs, poll_interval=0.5, timeout=600)
    (url,) = out["outputs"]
    response = httpx.get(url, timeout=60)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        kinds = {s.type for s in container.streams}
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert {"video", "audio"} <= kinds
    assert abs(len(frames) - AUDIO_S * 25) <= 1  # the output follows the audio (25 fps)
    assert frames[0].shape == (640, 480, 3)
    envelope = client.get_result(url.split("/outputs/")[1].split("/")[0])
    data = envelope["data"]
    assert data["timings"]["inference"] > 0 and data["timings"]["preprocess"] >= 0
    # The one face, tracked through all 6 frames from frame 0 where the point was taken (tracks count from 0).
    assert data["face"] == {"mode": "point", "track": 0, "frame": 0, "frames_with_face": 6}
    print(f"tiny engine job: {data['timings']}", file=sys.stderr)
