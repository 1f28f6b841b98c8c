"""The official ``wavespeed`` SDK against ``lipsync serve`` (a real subprocess on a loopback port).

Inputs are real clips from ``../shared/media`` (cut to one second) served by a local HTTP server, fetched
by the server's real, SSRF-guarded fetcher (``LIPSYNC_FETCH_ALLOW=127.0.0.1``). The engine is a fake one
(``LIPSYNC_ENGINE_FACTORY``) so this runs in seconds; ``test_tiny_engine_e2e.py`` uses the real pipeline.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import av
import httpx
import pytest
import wavespeed
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from contracts import MODEL_ID
from lipsync.server.serving import ServerThread
from tests.conftest import MEDIA_DIR, REPO_ROOT, require_path

API_KEY = "sdk-e2e-key"
LIPSYNC = str(Path(sys.executable).with_name("lipsync"))  # the console script of this environment


def cut_clip(src: Path, dest: Path, seconds: float) -> None:
    """Re-encode the first *seconds* of *src* (video + its audio) as H.264/AAC MP4, at full resolution."""
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "crf": "30"})
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        for frame in inp.decode(video=0):
            if frame.time is not None and frame.time >= seconds:
                break
            frame.pts = None
            for packet in vout.encode(frame):
                out.mux(packet)
        for packet in vout.encode():
            out.mux(packet)


def cut_wav(src: Path, dest: Path, seconds: float) -> None:
    with av.open(str(src)) as inp, av.open(str(dest), "w", format="wav") as out:
        ain = inp.streams.audio[0]
        aout = out.add_stream("pcm_s16le", rate=ain.codec_context.sample_rate, layout="mono")
        for frame in inp.decode(audio=0):
            if frame.time is not None and frame.time >= seconds:
                break
            frame.pts = None
            for packet in aout.encode(frame):
                out.mux(packet)
        for packet in aout.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def media_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    media = require_path(MEDIA_DIR)
    root = tmp_path_factory.mktemp("site")
    cut_clip(media / "demo1_video.mp4", root / "face.mp4", 1.0)
    cut_wav(media / "demo1_audio.wav", root / "speech.wav", 1.0)
    (root / "page.mp4").write_text("<!doctype html><title>Sign in</title>")
    with ServerThread(Starlette(routes=[Mount("/", StaticFiles(directory=root))])) as server:
        yield server.base_url


@dataclass
class Served:
    base_url: str
    process: subprocess.Popen[str]
    banner: list[str]
    stderr_path: Path
    stderr: IO[str]


def start_serve(
    data_dir: Path,
    *extra: str,
    engine: str = "tests.server.fakes:ok_engine",
    api_keys: str | None = API_KEY,
    extra_env: dict[str, str] | None = None,
) -> Served:
    """``lipsync serve`` on a free loopback port (*engine*: LIPSYNC_ENGINE_FACTORY; "" = the real one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIPSYNC_")}
    if api_keys is not None:
        env["LIPSYNC_API_KEYS"] = api_keys
    env |= {
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
        "LIPSYNC_DEVICES": "cpu",
        "LIPSYNC_FETCH_ALLOW": "127.0.0.1",
        "LIPSYNC_HEARTBEAT_S": "0.2",
    }
    if engine:
        env["LIPSYNC_ENGINE_FACTORY"] = engine
    env |= extra_env or {}
    stderr_path = data_dir.parent / f"{data_dir.name}-stderr.log"
    stderr = open(stderr_path, "w")  # noqa: SIM115 - closed by stop()
    process = subprocess.Popen(
        [LIPSYNC, "serve", "--port", "0", "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # printed once the socket listens
    assert first.startswith("lipsync server listening on "), first + stderr_path.read_text()
    banner = [first]
    for _ in range(4):
        banner.append(process.stdout.readline())
    return Served(first.split()[-1], process, banner, stderr_path, stderr)


def stop(served: Served) -> None:
    served.process.send_signal(signal.SIGINT)
    try:
        served.process.wait(30)
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait()
        assert served.process.stdout is not None
        served.process.stdout.close()
        served.stderr.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start_serve(tmp_path_factory.mktemp("serve") / "data")
    yield served
    stop(served)


def client(served: Served) -> wavespeed.Client:
    return wavespeed.Client(api_key=API_KEY, base_url=served.base_url, retry_interval=0.05)


def assert_mp4(url: str) -> None:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        first = next(container.decode(video=0))
        assert first.width > 0


def test_banner_says_how_to_connect_and_warns_about_fetch_allow(server: Served) -> None:
    assert any("Authorization: Bearer <key>" in line for line in server.banner)
    assert "LIPSYNC_FETCH_ALLOW is set" in server.stderr_path.read_text()


def test_sdk_run_with_urls_on_a_local_media_server(server: Served, media_site: str) -> None:
    inputs = {"video": f"{media_site}/face.mp4", "audio": f"{media_site}/speech.wav"}
    out = client(server).run(MODEL_ID, inputs, poll_interval=0.1, timeout=120)
    (url,) = out["outputs"]
    assert url.startswith(server.base_url + "/files/outputs/")
    assert_mp4(url)
    # The server log has one line per transition of this job (API process and worker process alike).
    job_id = url.split("/files/outputs/")[1].split("/")[0]
    log = server.stderr_path.read_text()
    for line in (
        f"job {job_id} accepted: created",
        f"job {job_id} inputs ready: created",
        f"job {job_id} claimed by",
    ):
        assert line in log, log[-3000:]
    assert re.search(rf"job {job_id} finished: completed, ran [\d.]+ s, [\d.]+ s since submit", log), log[
        -3000:
    ]


def test_log_level_warning_quiets_the_worker_process_too(tmp_path: Path, media_site: str) -> None:
    served = start_serve(tmp_path / "data", "--log-level", "warning")
    try:
        inputs = {"video": f"{media_site}/face.mp4", "audio": f"{media_site}/speech.wav"}
        out = client(served).run(MODEL_ID, inputs, poll_interval=0.1, timeout=120)
        assert len(out["outputs"]) == 1  # the job ran to completion
    finally:
        stop(served)
    log = served.stderr_path.read_text()
    # Neither the API process nor the spawned worker wrote a job transition (INFO) line.
    assert "lipsync.jobs" not in log, log[-3000:]


def test_sdk_upload_then_run_in_sync_mode(server: Served, media_site: str, tmp_path: Path) -> None:
    sdk = client(server)
    for name in ("face.mp4", "speech.wav"):
        (tmp_path / name).write_bytes(httpx.get(f"{media_site}/{name}").content)
    video = sdk.upload(str(tmp_path / "face.mp4"))
    audio = sdk.upload(str(tmp_path / "speech.wav"))
    out = sdk.run(MODEL_ID, {"video": video, "audio": audio}, enable_sync_mode=True, timeout=120)
    assert_mp4(out["outputs"][0])


def test_sdk_sees_refused_and_non_media_inputs_as_failed_tasks(server: Served, media_site: str) -> None:
    """As on WaveSpeed, unusable inputs fail the task (with its id and a message naming the field); they
    are not a submit error, so the SDK does not retry them."""
    sdk = client(server)
    task = r"Prediction failed \(task_id: [0-9a-f]{32}\): "
    with pytest.raises(RuntimeError, match=task + r"media_unreadable: input 'video': not a media file"):
        sdk.run(
            MODEL_ID,
            {"video": f"{media_site}/page.mp4", "audio": f"{media_site}/speech.wav"},
            poll_interval=0.1,
            timeout=60,
        )
    refused = media_site.replace("127.0.0.1", "127.0.0.2")  # loopback too, but only 127.0.0.1 is allowed
    with pytest.raises(RuntimeError, match=task + r"media_not_reachable: input 'audio': .*loopback"):
        sdk.run(
            MODEL_ID,
            {"video": f"{media_site}/face.mp4", "audio": f"{refused}/speech.wav"},
            poll_interval=0.1,
            timeout=60,
        )


def test_sdk_with_a_wrong_key_gets_401(server: Served, media_site: str) -> None:
    bad = wavespeed.Client(api_key="wrong", base_url=server.base_url)
    with pytest.raises(RuntimeError, match="HTTP 401"):
        bad.run(
            MODEL_ID, {"video": f"{media_site}/face.mp4", "audio": f"{media_site}/speech.wav"}, timeout=30
        )


def test_generated_key_is_printed_and_kept(tmp_path: Path) -> None:
    served = start_serve(tmp_path / "data", api_keys=None)
    try:
        line = next(line for line in served.banner if "API key (generated" in line)
        key = line.rsplit(": ", 1)[-1].strip()
        assert key == (tmp_path / "data" / "api_key").read_text().strip()
        r = httpx.get(f"{served.base_url}/api/v3/balance", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200
    finally:
        stop(served)
    again = start_serve(tmp_path / "data", api_keys=None)  # a restart says it reused the stored key
    try:
        line = next(line for line in again.banner if "API key (" in line)
        assert "API key (reused from" in line and line.rsplit(": ", 1)[-1].strip() == key
    finally:
        stop(again)
