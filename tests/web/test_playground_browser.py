"""The playground in a real (headless) Chromium, against real servers over HTTP.

- ``lipsync serve`` with tiny random weights, the MediaPipe detector and the real pipeline on a one-second
  real clip: key, uploads (ticket + PUT), submit, progress, a result whose videos load with the API's
  durations, lockstep seek and play, history, delete. And the same server without weights: the banner.
- ``lipsync mock`` behind a path prefix (as behind a proxy): a failure shows its code and message, cancel
  ends the job, and the code tab's snippets run as shown.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts import MODEL_ID
from lipsync.server.serving import ServerThread
from mock_server.app import create_app as create_mock_app
from tests.conftest import MEDIA_DIR, require_path
from tests.pipeline.clips import face_clip, speech
from tests.server.test_sdk_e2e import API_KEY, Served, start_serve, stop
from tests.web.conftest import BrowserPage, screenshot

pytestmark = pytest.mark.slow

CLIP_FRAMES = 8
PREFIX = "/lipsync"
VIDEOS = ["result-output", "result-original"]  # where the proxy in front of the mock serves it


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    media = require_path(MEDIA_DIR)
    root = tmp_path_factory.mktemp("playground-clips")
    return {
        "video": face_clip(media, root / "face.mp4", frames=CLIP_FRAMES),
        "audio": speech(media, root / "speech.wav", CLIP_FRAMES / 25),
    }


def open_page(p: BrowserPage, url: str, key: str) -> None:
    p.page.goto(url)
    p.page.wait_for_selector("body[data-ready=true]", state="attached")
    p.page.wait_for_selector("#opt-seed", state="attached")  # the options came from /openapi.json
    p.page.fill("#api-key", key)
    p.page.click("#key-form button[type=submit]")
    assert p.page.inner_text("#key-status") == "saved in this browser"


def set_option(p: BrowserPage, name: str, value: str) -> None:
    if not p.page.is_visible(f"#opt-{name}"):
        p.page.click("#advanced summary")
    p.page.fill(f"#opt-{name}", value)


def wait_until(p: BrowserPage, predicate: str, arg: Any = None, timeout: float = 30.0) -> None:
    """Polls the JS function *predicate* until it returns true. (``page.wait_for_function`` evaluates its
    predicate with ``eval``, which the page's CSP forbids.)"""
    deadline = time.monotonic() + timeout
    while not p.page.evaluate(predicate, arg):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {predicate}"
        time.sleep(0.05)


def video_state(p: BrowserPage, element: str) -> dict[str, Any]:
    state: dict[str, Any] = p.page.evaluate(
        """(id) => { const v = document.getElementById(id);
             return {ready: v.readyState, duration: v.duration, time: v.currentTime, paused: v.paused,
                     seeking: v.seeking}; }""",
        element,
    )
    return state


def media_duration(source: bytes | Path) -> float:
    """The video stream's duration as PyAV reads it (what a player shows)."""
    with av.open(source if isinstance(source, Path) else io.BytesIO(source)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        return float(stream.duration * stream.time_base)


# ---- the real server (``tiny_server``: tiny weights, MediaPipe, the real pipeline) -------------------------


def test_the_whole_flow_on_the_real_server(
    page: BrowserPage, tiny_server: Served, clips: dict[str, Path]
) -> None:
    p = page
    assert any(f"playground: open {tiny_server.base_url}/" in line for line in tiny_server.banner)
    open_page(p, tiny_server.base_url + "/", API_KEY)
    assert p.page.is_hidden("#banner")

    p.page.set_input_files("#video-file", str(clips["video"]))
    p.page.set_input_files("#audio-file", str(clips["audio"]))
    for kind in ("video", "audio"):  # uploaded through the ticket + PUT, the bar at its end
        p.page.wait_for_selector(f"#{kind}-drop[data-uploaded=true]", state="attached")
        assert p.page.get_attribute(f"#{kind}-upload", "value") == "1"
        assert p.page.input_value(f"#{kind}-url").startswith(tiny_server.base_url + "/")
    assert video_state(p, "video-preview")["duration"] == pytest.approx(CLIP_FRAMES / 25, abs=0.05)
    # Few steps and no classifier-free guidance keep the CPU run short; the seed is shown with the result.
    set_option(p, "inference_steps", "10")
    set_option(p, "guidance_scale", "1.0")
    set_option(p, "seed", "7")
    screenshot(p, "idle")

    p.page.click("#submit")
    seen: list[float] = []
    deadline = time.monotonic() + 300
    while p.page.is_hidden("#result"):
        assert p.page.is_hidden("#error"), p.page.inner_text("#error")
        value = p.page.get_attribute("#progress", "data-value")
        if value is not None:
            seen.append(float(value))
        if len(seen) > 0 and 0 < seen[-1] < 1 and len(set(seen)) == 2:
            screenshot(p, "running")
        assert time.monotonic() < deadline, f"no result after 300 s; progress seen {sorted(set(seen))}"
        time.sleep(0.1)
    assert any(0 < v < 1 for v in seen), f"progress never moved between 0 and 1: {sorted(set(seen))}"
    assert seen == sorted(seen), "progress went backwards"

    job_id = p.page.get_attribute("#result", "data-id")
    assert job_id
    auth = {"Authorization": f"Bearer {API_KEY}"}
    data = httpx.get(f"{tiny_server.base_url}/api/v3/predictions/{job_id}/result", headers=auth).json()[
        "data"
    ]
    assert data["status"] == "completed"
    output = httpx.get(data["outputs"][0], timeout=60).content

    # Both videos load, and the browser's durations are the files' own.
    wait_until(p, "(ids) => ids.every(id => document.getElementById(id).readyState >= 2)", VIDEOS)
    assert video_state(p, "result-output")["duration"] == pytest.approx(media_duration(output), abs=0.05)
    assert video_state(p, "result-original")["duration"] == pytest.approx(
        media_duration(clips["video"]), abs=0.05
    )
    assert p.page.get_attribute("#download", "href") == data["outputs"][0]
    assert "seed\n7" in p.page.inner_text("#timings")
    screenshot(p, "result")

    # One seek control moves both videos.
    middle = round(media_duration(output) / 2, 2)
    p.page.eval_on_selector(
        "#seek", "(s, t) => { s.value = String(t); s.dispatchEvent(new Event('input')); }", middle
    )
    wait_until(
        p,
        "([ids, t]) => ids.every(id => { const v = document.getElementById(id);"
        " return !v.seeking && Math.abs(v.currentTime - Math.min(t, v.duration)) < 0.05; })",
        [VIDEOS, middle],
    )
    # One play button plays both, together.
    p.page.eval_on_selector("#seek", "(s) => { s.value = '0'; s.dispatchEvent(new Event('input')); }")
    p.page.click("#play")
    wait_until(p, "() => document.getElementById('result-output').currentTime > 0.1")
    out, orig = video_state(p, "result-output"), video_state(p, "result-original")
    assert not out["paused"] and (not orig["paused"] or orig["time"] >= orig["duration"] - 0.05)
    assert abs(out["time"] - orig["time"]) < 0.25
    wait_until(p, "() => document.getElementById('result-output').ended")
    assert p.page.inner_text("#play") == "Play both"

    # History lists the job; delete removes it (from the list and from the server).
    p.page.click("[data-tab=history]")
    row = f"#history tr[data-id='{job_id}']"
    p.page.wait_for_selector(row)
    assert p.page.get_attribute(row, "data-status") == "completed"
    assert p.page.get_attribute(f"{row} a", "href") == data["outputs"][0]
    p.page.click(f"{row} button.danger")
    p.page.wait_for_selector(row, state="detached")
    gone = httpx.get(f"{tiny_server.base_url}/api/v3/predictions/{job_id}/result", headers=auth)
    assert gone.status_code == 404

    assert not [url for url in p.requests if API_KEY in url]  # the key travels in headers only
    assert p.errors == []


def test_a_server_without_weights_says_so(page: BrowserPage, clips: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "no-weights"
    empty.mkdir()
    served = start_serve(
        tmp_path / "data", "--weights-dir", str(empty), "--face-detector", "mediapipe", engine=""
    )
    try:
        open_page(page, served.base_url + "/", API_KEY)
        page.page.set_input_files("#video-file", str(clips["video"]))
        page.page.set_input_files("#audio-file", str(clips["audio"]))
        page.page.click("#submit")  # waits for both uploads
        page.page.wait_for_selector("#error:not([hidden])", timeout=120_000)
        assert page.page.inner_text("#error-code") == "5003"
        message = page.page.inner_text("#error-message")
        assert message.startswith("weights_unavailable: ")
        assert "the server has no usable model weights" in message and "lipsync weights download" in message
    finally:
        stop(served)


def test_workers_that_keep_stopping_show_a_banner(page: BrowserPage, tmp_path: Path) -> None:
    served = start_serve(tmp_path / "data", engine="tests.web.fakes:exiting_engine")
    try:
        page.page.goto(served.base_url + "/")
        page.page.wait_for_selector("#banner:not([hidden])", timeout=60_000)
        assert "workers keep stopping" in page.page.inner_text("#banner")
    finally:
        stop(served)


# ---- the mock, behind a path prefix ------------------------------------------------------------------------


def prefix_proxy(upstream: str, prefix: str) -> Starlette:
    """A reverse proxy serving *upstream* under *prefix* (stripped before forwarding), as nginx would."""
    client = httpx.AsyncClient(base_url=upstream, timeout=60)
    hop_by_hop = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}

    async def forward(request: Request) -> Response:
        answer = await client.request(
            request.method,
            request.url.path.removeprefix(prefix) or "/",
            params=request.query_params,
            headers={k: v for k, v in request.headers.items() if k not in hop_by_hop},
            content=await request.body(),
        )
        headers = {k: v for k, v in answer.headers.items() if k not in hop_by_hop}
        return Response(answer.content, status_code=answer.status_code, headers=headers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
    return Starlette(routes=[Route(prefix + "/{path:path}", forward, methods=methods)], lifespan=lifespan)


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    """``lipsync mock`` behind a proxy at ``<proxy>/lipsync``, its public URL set to match."""
    mock_app = create_mock_app()
    with ServerThread(mock_app) as upstream, ServerThread(prefix_proxy(upstream.base_url, PREFIX)) as proxy:
        public = proxy.base_url + PREFIX
        mock_app.state.mock.configure(public_url=public)
        yield public


def use_scenario(mock_url: str, scenario: str) -> None:
    httpx.post(f"{mock_url}/__mock/scenario", json={"scenario": scenario}).raise_for_status()


def fill_urls(p: BrowserPage) -> None:
    for kind, url in (
        ("video", "https://media.example/face.mp4"),
        ("audio", "https://media.example/speech.wav"),
    ):
        p.page.fill(f"#{kind}-url", url)
        p.page.dispatch_event(f"#{kind}-url", "change")


def test_a_failed_job_shows_its_code_and_message(page: BrowserPage, mock_url: str) -> None:
    use_scenario(mock_url, 'fail; code=1403; message="no_face: No face detected in frame 12"')
    open_page(page, mock_url + "/playground", "any-key")
    fill_urls(page)
    page.page.click("#submit")
    page.page.wait_for_selector("#error:not([hidden])")
    assert page.page.inner_text("#error-code") == "1403"
    assert page.page.inner_text("#error-message") == "no_face: No face detected in frame 12"
    assert page.page.get_attribute("#run", "data-status") == "failed"
    assert page.page.is_hidden("#result")
    assert page.page.is_enabled("#submit")
    # Every request stayed under the proxy's prefix.
    origin = mock_url[: -len(PREFIX)]
    assert [u for u in page.requests if u.startswith(origin)] == [
        u for u in page.requests if u.startswith(mock_url)
    ]


def test_cancel_ends_the_running_job(page: BrowserPage, mock_url: str) -> None:
    use_scenario(mock_url, "stuck")
    open_page(page, mock_url + "/", "any-key")
    fill_urls(page)
    page.page.click("#submit")
    page.page.wait_for_selector("#run[data-status=processing]", state="attached")
    page.page.click("#cancel")
    page.page.wait_for_selector("#run[data-status=cancelled]", state="attached")
    assert page.page.inner_text("#error-code") == "1405"
    assert page.page.is_hidden("#cancel")
    assert page.errors == []


def test_the_code_tab_snippets_run_as_shown(page: BrowserPage, mock_url: str, tmp_path: Path) -> None:
    use_scenario(mock_url, "success")
    open_page(page, mock_url + "/", "snippet-key")
    fill_urls(page)
    set_option(page, "seed", "42")
    page.page.select_option("#opt-loop_mode", "loop")
    page.page.click("[data-tab=code]")
    code = {name: page.page.inner_text(f"#code-{name}") for name in ("curl", "sdk", "client")}
    for text in code.values():
        assert mock_url in text and "snippet-key" not in text
    assert shutil.which("curl"), "curl is needed to run the curl snippet"
    runs = {
        "sdk": [sys.executable, "-c", code["sdk"]],
        "client": [sys.executable, "-c", code["client"]],
        "curl": ["bash", "-c", code["curl"].split("\n\n")[0]],  # the submit (the poll needs an id)
    }
    env = {**os.environ, "WAVESPEED_API_KEY": "snippet-key"}
    httpx.delete(f"{mock_url}/__mock/requests").raise_for_status()
    for name, command in runs.items():
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, f"{name}: {done.stderr}"
    assert (tmp_path / "out.mp4").stat().st_size > 0  # what the lipsync.client snippet downloads
    journal = httpx.get(f"{mock_url}/__mock/requests", params={"kind": "submit"}).json()["data"]["entries"]
    expected = {
        "video": "https://media.example/face.mp4",
        "audio": "https://media.example/speech.wav",
        "seed": 42,
        "loop_mode": "loop",
    }
    assert [entry["body"] for entry in journal] == [expected] * 3
    # A bearer key went with each (the journal redacts its value; the snippets read $WAVESPEED_API_KEY).
    assert {entry["headers"]["authorization"] for entry in journal} == {"Bearer <redacted>"}


def rendered_options(p: BrowserPage) -> list[str]:
    names: list[str] = p.page.evaluate(
        "() => [...document.querySelectorAll('#advanced-fields [id^=opt-]')].map(e => e.id.slice(4))"
    )
    return names


def test_the_advanced_form_is_the_request_schema(page: BrowserPage, mock_url: str) -> None:
    schema = httpx.get(f"{mock_url}/openapi.json").json()
    request = schema["components"]["schemas"]["LipsyncRequest"]
    not_options = {"video", "audio", "enable_sync_mode", "enable_base64_output"}
    open_page(page, mock_url + "/", "any-key")
    assert rendered_options(page) == [name for name in request["properties"] if name not in not_options]

    # An option added to the request (here in a $ref'd part of an allOf, as a composed options model
    # would publish it) appears without touching the page, and is sent as typed.
    schema["components"]["schemas"]["MoreOptions"] = {
        "type": "object",
        "properties": {
            "face_index": {
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "title": "Face Index",
                "description": "Which face",
            }
        },
    }
    schema["components"]["schemas"]["LipsyncRequest"] = {
        "allOf": [request, {"$ref": "#/components/schemas/MoreOptions"}]
    }
    page.page.route("**/openapi.json", lambda route: route.fulfill(json=schema))
    open_page(page, mock_url + "/", "any-key")
    assert rendered_options(page)[-1] == "face_index"
    assert page.page.text_content("label[for=opt-face_index]") == "Face Index"
    assert page.page.get_attribute("#opt-face_index", "min") == "0"
    fill_urls(page)
    set_option(page, "face_index", "2")
    with page.page.expect_request(lambda r: r.method == "POST" and r.url.endswith(MODEL_ID)) as submitted:
        page.page.click("#submit")
    assert submitted.value.post_data_json["face_index"] == 2
    # The mock does not know the field: its 400 names it, and the page shows that.
    page.page.wait_for_selector("#error:not([hidden])")
    assert page.page.inner_text("#error-code") == "400"
    assert "face_index" in page.page.inner_text("#error-message")


def test_a_structured_option_is_typed_as_json_and_sent_as_an_object(page: BrowserPage, mock_url: str) -> None:
    use_scenario(mock_url, "success")
    open_page(page, mock_url + "/", "any-key")
    fill_urls(page)
    assert '{"auto":true}' in str(page.page.get_attribute("#opt-face", "placeholder"))  # the schema's example
    set_option(page, "face", '{"auto": true}')
    with page.page.expect_request(lambda r: r.method == "POST" and r.url.endswith(MODEL_ID)) as submitted:
        page.page.click("#submit")
    assert submitted.value.post_data_json["face"] == {"auto": True}
    page.page.wait_for_selector("#run[data-status=completed]", state="attached")
    # The result names the face that was synced: the mock's report for auto is track 0, score 0.5.
    page.page.wait_for_selector("#face:not([hidden])")
    assert page.page.inner_text("#face") == "Face: auto, track 0, score 0.50"
    assert page.errors == []


def test_the_face_line_for_each_kind_of_report(page: BrowserPage, mock_url: str) -> None:
    """The page's own formatting (format.js), in the browser, for reports the mock does not make."""
    open_page(page, mock_url + "/", "any-key")
    lines = page.page.evaluate(
        """async (reports) => {
            const { describeFace } = await import("./playground/format.js");
            return reports.map(describeFace);
        }""",
        [
            {"mode": "auto", "fallback": "largest", "reason": "the video has no sound track"},
            {"mode": "point", "track": 2, "frame": 25, "frames_with_face": 60},
            {"mode": "auto", "track": 1, "score": 0.617, "runner_up": -0.05},
            None,
        ],
    )
    assert lines == [
        "Face: largest (auto fell back: the video has no sound track)",
        "Face: point, track 2, from frame 25",
        "Face: auto, track 1, score 0.62",
        "",
    ]


def test_dropped_files_upload_and_preview(page: BrowserPage, mock_url: str, clips: dict[str, Path]) -> None:
    open_page(page, mock_url + "/", "any-key")
    for kind, mime in (("video", "video/mp4"), ("audio", "audio/wav")):
        payload = base64.b64encode(clips[kind].read_bytes()).decode()
        page.page.evaluate(
            """([id, data, name, type]) => {
                 const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                 const transfer = new DataTransfer();
                 transfer.items.add(new File([bytes], name, { type }));
                 document.getElementById(id).dispatchEvent(
                   new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
               }""",
            [f"{kind}-drop", payload, clips[kind].name, mime],
        )
        page.page.wait_for_selector(f"#{kind}-drop[data-uploaded=true]", state="attached")
        assert page.page.input_value(f"#{kind}-url").startswith(f"{mock_url}/")
        # The preview is the dropped file itself, and it plays.
        preview = f"{kind}-preview"
        wait_until(page, "(id) => document.getElementById(id).readyState >= 2", preview)
        assert video_state(page, preview)["duration"] == pytest.approx(CLIP_FRAMES / 25, abs=0.05)
        page.page.evaluate("(id) => document.getElementById(id).play()", preview)
        wait_until(page, "(id) => document.getElementById(id).currentTime > 0.1", preview)
    # What the mock received is what was dropped.
    uploads = httpx.get(f"{mock_url}/__mock/requests", params={"method": "PUT"}).json()["data"]["entries"]
    assert sorted(e["body_size"] for e in uploads[-2:]) == sorted(p.stat().st_size for p in clips.values())
