"""The GPU class through ``.local()``: its enter hook loads the real engine (``lipsync weights tiny`` weights,
MediaPipe faces) and its job method runs a real job from the Volume to a valid MP4 committed back to it.

Input: one second of a real clip from ../shared/media (a 480x640 window around the face, as the pipeline
tests use) and its speech. The outputs of tiny random weights are noise; the point is the code path.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import modal_app
from contracts import RunOptions
from lipsync.server.interfaces import JobRecord
from lipsync.server.modal_backends import make_storage, make_store
from tests.conftest import require_path
from tests.modal.conftest import FakeDeployment
from tests.pipeline.clips import face_clip, inspect_output, speech
from tests.server.conftest import make_settings

pytestmark = pytest.mark.filterwarnings("ignore:The .* function is executing locally:UserWarning")


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lipsync.engine.weights import write_tiny_weights

    root = tmp_path_factory.mktemp("weights")
    write_tiny_weights(root, "1.5")  # 256 px: the cheap size (1.6 at 512 px: tests/pipeline/test_releases.py)
    return root


def test_enter_and_run_job_produce_a_valid_mp4(tmp_path: Path, media_dir: Path, tiny_weights: Path) -> None:
    media = require_path(media_dir)
    video = face_clip(media, tmp_path / "face.mp4", frames=25)
    audio = speech(media, tmp_path / "speech.wav", 1.0)
    settings = make_settings(
        tmp_path / "settings", weights_dir=tiny_weights, face_detector="mediapipe", model_version="1.5"
    )
    deployment = FakeDeployment(tmp_path, settings, engine=None)  # the real engine, as on Modal

    # What the API container did on submit: inputs committed to the Volume, the job in the Dict.
    async def submit() -> None:
        storage = make_storage(deployment.api)
        await storage.put_file("inputs/j1/video.mp4", video)
        await storage.put_file("inputs/j1/audio.wav", audio)
        job = JobRecord(
            id="j1",
            owner="k_a",
            base_url="http://api.test",
            options=RunOptions.local(seed=1247, guidance_scale=1.5, inference_steps=2, model_version="1.5"),
            inputs={"video": "inputs/j1/video.mp4", "audio": "inputs/j1/audio.wav"},
            created_at=deployment.api.clock.now(),
        )
        await make_store(deployment.api).create(job)

    asyncio.run(submit())
    worker = modal_app.LipSyncWorker()
    with modal_app.wiring.use(deployment.api, gpu=deployment.gpu_backends):
        report = worker.run_job.local("j1")

    assert (report["status"], report["ran"], report["error"]) == ("completed", True, "")
    job = asyncio.run(make_store(deployment.api).get("j1"))
    assert job is not None and job.status == "completed" and job.outputs == ["outputs/j1/output.mp4"]
    assert job.timings["inference"] > 0

    # Committed by the GPU container: the API container's view gets it with a reload, as a download would.
    out = tmp_path / "downloaded.mp4"

    async def download() -> None:
        storage = make_storage(deployment.api)
        out.write_bytes(b"".join([c async for c in storage.iter_bytes("outputs/j1/output.mp4")]))

    asyncio.run(download())
    info, frames = inspect_output(out)
    assert (info.width, info.height) == (480, 640)
    assert info.frames == len(frames) == 25 and info.fps == pytest.approx(25.0)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert info.audio_duration_s == pytest.approx(1.0, abs=0.05)
