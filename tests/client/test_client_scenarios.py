"""Client and AsyncClient against recorded WaveSpeed responses (respx), with a fake clock: no real sleeping.

Each test runs twice (``client_kind`` = sync / async) through the ``make_client`` fixture.
"""

from __future__ import annotations

import base64
import json
import mimetypes
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from contracts import FaceReport, Prediction, RunOptions
from lipsync.client import (
    APIError,
    AuthenticationError,
    ClientError,
    InputError,
    JobFailed,
    JobTimeout,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TransportError,
    ValidationError,
)
from tests.client._recorded import (
    BASE,
    BINARY_RESULT,
    BINARY_URL,
    CANCEL_URL,
    CDN,
    COMPLETED,
    CREATED,
    DOC_AUDIO,
    DOC_VIDEO,
    FAILED_1402,
    OUTPUT_URL,
    PROCESSING,
    RESULT_URL,
    STORAGE,
    SUBMIT_URL,
    SYNC_TIMEOUT,
    TASK_ID,
    TICKET,
    TICKET_URL,
    error,
    ok,
    prediction,
)
from tests.client.conftest import NO_JITTER, ClientFactory, FakeClock


def body_of(call: Any) -> dict[str, Any]:
    return dict(json.loads(call.request.content))


# -- submit ---------------------------------------------------------------------------------------------------


def test_submit_sends_the_documented_body_and_auth(
    make_client: ClientFactory, router: respx.MockRouter
) -> None:
    route = router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    created = make_client().submit(DOC_VIDEO, DOC_AUDIO)

    assert isinstance(created, Prediction)
    assert (created.id, created.status, created.urls.get) == (TASK_ID, "created", RESULT_URL)
    request = route.calls.last.request
    # Only the two documented fields: the hosted model accepts nothing else.
    assert body_of(route.calls.last) == {"audio": DOC_AUDIO, "video": DOC_VIDEO}
    assert request.headers["Authorization"] == "Bearer test-key"
    assert request.headers["Content-Type"] == "application/json"
    assert not request.url.params


def test_submit_sends_given_options_and_webhook_query(
    make_client: ClientFactory, router: respx.MockRouter
) -> None:
    route = router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    make_client().submit(
        DOC_VIDEO,
        DOC_AUDIO,
        webhook="https://hooks.example/lipsync",
        seed=7,
        guidance_scale=2.0,
        loop_mode="loop",
    )
    call = route.calls.last
    assert body_of(call) == {
        "audio": DOC_AUDIO,
        "video": DOC_VIDEO,
        "seed": 7,
        "guidance_scale": 2.0,
        "loop_mode": "loop",
    }
    assert call.request.url.params["webhook"] == "https://hooks.example/lipsync"


def test_submit_rejects_invalid_options_before_sending(
    make_client: ClientFactory, router: respx.MockRouter
) -> None:
    route = router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    with pytest.raises(InputError) as info:
        make_client().submit(DOC_VIDEO, DOC_AUDIO, guidance_scale=9.0)  # type: ignore[arg-type]
    assert info.value.field == "guidance_scale"
    assert "guidance_scale" in str(info.value)
    assert route.call_count == 0


def test_submit_takes_a_run_options_object_and_sends_only_its_set_fields(
    make_client: ClientFactory, router: respx.MockRouter
) -> None:
    route = router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    make_client().submit(DOC_VIDEO, DOC_AUDIO, RunOptions(seed=7, deep_cache=True), loop_mode="cut_off")
    assert body_of(route.calls.last) == {
        "audio": DOC_AUDIO,
        "video": DOC_VIDEO,
        "seed": 7,
        "deep_cache": True,
        "loop_mode": "cut_off",
    }


def test_a_bad_option_fails_before_uploading_a_path(
    make_client: ClientFactory, router: respx.MockRouter, tmp_path: Path
) -> None:
    face = tmp_path / "face.mp4"
    face.write_bytes(b"video-bytes")
    tickets = router.post(TICKET_URL).mock(return_value=ok(TICKET))
    with pytest.raises(InputError) as info:
        make_client().submit(face, DOC_AUDIO, inference_steps=500)
    assert info.value.field == "inference_steps"
    assert tickets.call_count == 0


def _plain(hint: Any) -> Any:
    """*hint* without ``Annotated`` metadata at any depth (pydantic tags on union members)."""
    from typing import Annotated, Union, get_args, get_origin

    if get_origin(hint) is Annotated:
        return _plain(get_args(hint)[0])
    if get_origin(hint) is Union:
        return Union[tuple(_plain(arg) for arg in get_args(hint))]  # noqa: UP007
    return hint


def test_submit_options_keywords_are_the_request_fields() -> None:
    from typing import get_type_hints

    from contracts import LipsyncRequest
    from lipsync.client import SubmitOptions

    request_fields = {
        name: _plain(field.annotation)
        for name, field in LipsyncRequest.model_fields.items()
        if name not in ("audio", "video")
    }
    assert {name: _plain(hint) for name, hint in get_type_hints(SubmitOptions).items()} == request_fields


def test_submit_hints_at_path_for_a_local_file_string(
    make_client: ClientFactory, router: respx.MockRouter, tmp_path: Path
) -> None:
    face = tmp_path / "face.mp4"
    face.write_bytes(b"\x00" * 16)
    with pytest.raises(InputError, match=r"pathlib\.Path") as info:
        make_client().submit(str(face), DOC_AUDIO)
    assert info.value.field == "video"


def test_submit_uploads_path_arguments_first(
    make_client: ClientFactory, router: respx.MockRouter, tmp_path: Path
) -> None:
    face = tmp_path / "face.mp4"
    face.write_bytes(b"video-bytes")
    router.post(TICKET_URL).mock(return_value=ok(TICKET))
    put = router.put(f"{STORAGE}/upload").mock(return_value=httpx.Response(200))
    submit = router.post(SUBMIT_URL).mock(return_value=ok(CREATED))

    make_client().submit(face, DOC_AUDIO)

    assert put.calls.last.request.content == b"video-bytes"
    assert body_of(submit.calls.last) == {"audio": DOC_AUDIO, "video": TICKET["download_url"]}


def test_submit_is_not_retried_on_5xx(make_client: ClientFactory, router: respx.MockRouter) -> None:
    route = router.post(SUBMIT_URL).mock(return_value=error(503, "service unavailable"))
    with pytest.raises(ServerError) as info:
        make_client().submit(DOC_VIDEO, DOC_AUDIO)
    assert (info.value.status_code, info.value.code, info.value.message) == (503, 503, "service unavailable")
    assert route.call_count == 1


def test_submit_is_not_retried_when_it_may_have_landed(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    route = router.post(SUBMIT_URL).mock(side_effect=httpx.ReadTimeout("no answer"))
    with pytest.raises(TransportError, match="may have reached the server") as info:
        make_client().submit(DOC_VIDEO, DOC_AUDIO)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert route.call_count == 1
    assert clock.sleeps == []


def test_submit_is_retried_when_the_connection_never_opened(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    route = router.post(SUBMIT_URL).mock(side_effect=[httpx.ConnectError("refused"), ok(CREATED)])
    assert make_client().submit(DOC_VIDEO, DOC_AUDIO).id == TASK_ID
    assert route.call_count == 2
    assert clock.sleeps == [NO_JITTER.initial_delay]


def test_submit_429_waits_for_retry_after(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    route = router.post(SUBMIT_URL).mock(
        side_effect=[error(429, "rate limited", headers={"Retry-After": "7"}), ok(CREATED)]
    )
    assert make_client().submit(DOC_VIDEO, DOC_AUDIO).status == "created"
    assert route.call_count == 2
    assert clock.sleeps == [7.0]


def test_submit_sync_mode_returns_the_finished_prediction(
    make_client: ClientFactory, router: respx.MockRouter
) -> None:
    route = router.post(SUBMIT_URL).mock(return_value=ok(COMPLETED))
    done = make_client().submit(DOC_VIDEO, DOC_AUDIO, enable_sync_mode=True)
    assert body_of(route.calls.last)["enable_sync_mode"] is True
    assert (done.status, done.outputs) == ("completed", [OUTPUT_URL])


# -- get and retries ------------------------------------------------------------------------------------------


def test_get_retries_5xx_with_exponential_backoff_then_succeeds(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    route = router.get(RESULT_URL).mock(
        side_effect=[
            error(503, "busy"),
            error(502, "bad gateway"),
            httpx.ConnectError("reset"),
            ok(PROCESSING),
        ]
    )
    assert make_client().get(TASK_ID).status == "processing"
    assert route.call_count == 4
    policy = NO_JITTER
    assert clock.sleeps == [policy.initial_delay * policy.multiplier**n for n in range(3)]


def test_get_gives_up_after_max_retries(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    route = router.get(RESULT_URL).mock(return_value=error(500, "internal error"))
    with pytest.raises(ServerError) as info:
        make_client(max_retries=2).get(TASK_ID)
    assert route.call_count == 3
    assert len(clock.sleeps) == 2
    assert info.value.job_id == TASK_ID


def test_get_429_with_http_date_retry_after(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    when = formatdate(clock.time() + 12, usegmt=True)
    router.get(RESULT_URL).mock(
        side_effect=[error(429, "slow down", headers={"Retry-After": when}), ok(PROCESSING)]
    )
    make_client().get(TASK_ID)
    assert clock.sleeps == [12.0]


def test_retry_after_longer_than_allowed_is_raised_not_slept(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    router.get(RESULT_URL).mock(return_value=error(429, "quota", headers={"Retry-After": "3600"}))
    with pytest.raises(RateLimitError) as info:
        make_client(retry=RetryPolicy(jitter=0.0, max_retry_after=60.0)).get(TASK_ID)
    assert info.value.retry_after == 3600.0
    assert clock.sleeps == []


def test_get_unknown_id_is_not_found_without_retry(
    make_client: ClientFactory, router: respx.MockRouter
) -> None:
    route = router.get(RESULT_URL).mock(return_value=error(404, "prediction not found"))
    with pytest.raises(NotFoundError) as info:
        make_client().get(TASK_ID)
    assert (info.value.status_code, info.value.message) == (404, "prediction not found")
    assert route.call_count == 1


@pytest.mark.parametrize("key", ["wrong-key", None])
def test_authentication_error(make_client: ClientFactory, router: respx.MockRouter, key: str | None) -> None:
    route = router.post(SUBMIT_URL).mock(return_value=error(401, "invalid authentication"))
    with pytest.raises(AuthenticationError) as info:
        make_client(api_key=key).submit(DOC_VIDEO, DOC_AUDIO)
    assert info.value.status_code == 401
    sent = route.calls.last.request.headers
    if key is None:
        assert "Authorization" not in sent
        assert "LIPSYNC_API_KEY" in str(info.value)
    else:
        assert sent["Authorization"] == f"Bearer {key}"
        assert "LIPSYNC_API_KEY" not in str(info.value)


def test_validation_error_carries_the_server_message(
    make_client: ClientFactory, router: respx.MockRouter
) -> None:
    router.post(SUBMIT_URL).mock(return_value=error(400, "Missing required parameter 'video'"))
    with pytest.raises(ValidationError, match="Missing required parameter 'video'"):
        make_client().submit(DOC_VIDEO, DOC_AUDIO)


def test_non_json_success_is_an_api_error(make_client: ClientFactory, router: respx.MockRouter) -> None:
    router.get(RESULT_URL).mock(return_value=httpx.Response(200, text="<html>gateway</html>"))
    with pytest.raises(APIError, match="malformed"):
        make_client().get(TASK_ID)


# -- wait / run -----------------------------------------------------------------------------------------------


def test_wait_polls_until_completed_and_reports_progress(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    router.get(RESULT_URL).mock(
        side_effect=[ok(PROCESSING), ok(prediction("processing", progress=0.5)), ok(COMPLETED)]
    )
    seen: list[tuple[str, float | None]] = []
    done = make_client().wait(
        TASK_ID,
        poll_interval=1.0,
        max_poll_interval=2.0,
        on_progress=lambda p: seen.append((p.status, p.progress)),
    )
    assert done.outputs == [OUTPUT_URL]
    assert done.timings.inference == 6710
    assert seen == [("processing", None), ("processing", 0.5), ("completed", None)]
    assert clock.sleeps == [1.0, 1.5]  # 1.0, then x1.5 (under the 2.0 cap)


def test_the_face_report_extension_is_parsed_and_absent_on_plain_predictions(
    make_client: ClientFactory, router: respx.MockRouter
) -> None:
    report = {"mode": "point", "track": 2, "frame": 25, "frames_with_face": 48}
    router.get(RESULT_URL).mock(side_effect=[ok({**COMPLETED, "face": report}), ok(COMPLETED)])
    client = make_client()
    done = client.wait(TASK_ID, poll_interval=1.0)
    assert isinstance(done.face, FaceReport)
    assert (done.face.mode, done.face.track, done.face.frame, done.face.frames_with_face) == (
        "point",
        2,
        25,
        48,
    )
    assert done.face.score is None and done.face.fallback is None
    assert client.get(TASK_ID).face is None  # WaveSpeed's own predictions have no report


def test_wait_backoff_is_capped(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    router.get(RESULT_URL).mock(side_effect=[ok(PROCESSING)] * 5 + [ok(COMPLETED)])
    make_client().wait(TASK_ID, poll_interval=2.0, max_poll_interval=4.0)
    assert clock.sleeps == [2.0, 3.0, 4.0, 4.0, 4.0]


def test_wait_honours_retry_after_on_a_poll(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    router.get(RESULT_URL).mock(side_effect=[ok(PROCESSING, headers={"Retry-After": "9"}), ok(COMPLETED)])
    make_client().wait(TASK_ID, poll_interval=1.0)
    assert clock.sleeps == [9.0]


def test_wait_raises_job_failed_with_code_and_id(
    make_client: ClientFactory, router: respx.MockRouter
) -> None:
    router.get(RESULT_URL).mock(side_effect=[ok(PROCESSING), ok(FAILED_1402)])
    with pytest.raises(JobFailed) as info:
        make_client().wait(TASK_ID)
    failed = info.value
    assert (failed.job_id, failed.code) == (TASK_ID, 1402)
    assert failed.message == FAILED_1402["error"]
    assert failed.exit_code == 3  # media not reachable: the caller can fix it
    assert failed.prediction is not None and failed.prediction.status == "failed"


def test_wait_treats_a_hosted_cancelled_status_as_failure(
    make_client: ClientFactory, router: respx.MockRouter
) -> None:
    router.get(RESULT_URL).mock(return_value=ok(prediction("cancelled")))
    with pytest.raises(JobFailed) as info:
        make_client().wait(TASK_ID)
    assert info.value.code == 1405
    assert "cancelled" in info.value.message


def test_wait_times_out_at_the_deadline(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    route = router.get(RESULT_URL).mock(return_value=ok(PROCESSING))
    with pytest.raises(JobTimeout) as info:
        make_client().wait(TASK_ID, timeout=10.0, poll_interval=3.0, max_poll_interval=3.0)
    assert info.value.job_id == TASK_ID
    assert info.value.waited_s == pytest.approx(10.0)
    # Polls at t = 0, 3, 6, 9 and one last one exactly at the deadline.
    assert clock.sleeps == pytest.approx([3.0, 3.0, 3.0, 1.0])
    assert route.call_count == 5


def test_wait_does_not_retry_past_the_deadline(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    router.get(RESULT_URL).mock(
        side_effect=[ok(PROCESSING), error(503, "down", headers={"Retry-After": "30"})]
    )
    with pytest.raises(ServerError):
        make_client().wait(TASK_ID, timeout=5.0, poll_interval=1.0)
    assert sum(clock.sleeps) < 5.0


def test_run_falls_back_to_polling_after_a_sync_mode_timeout(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    router.post(SUBMIT_URL).mock(return_value=ok(SYNC_TIMEOUT))
    poll = router.get(RESULT_URL).mock(return_value=ok(COMPLETED))
    done = make_client().run(DOC_VIDEO, DOC_AUDIO, enable_sync_mode=True)
    assert done.status == "completed"
    assert poll.call_count == 1


def test_run_with_sync_mode_completed_does_not_poll(
    make_client: ClientFactory, router: respx.MockRouter
) -> None:
    router.post(SUBMIT_URL).mock(return_value=ok(COMPLETED))
    poll = router.get(RESULT_URL).mock(return_value=ok(PROCESSING))
    assert make_client().run(DOC_VIDEO, DOC_AUDIO, enable_sync_mode=True).outputs == [OUTPUT_URL]
    assert poll.call_count == 0


def test_run_submits_then_waits(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    router.get(RESULT_URL).mock(side_effect=[ok(PROCESSING), ok(COMPLETED)])
    statuses: list[str] = []
    done = make_client().run(
        DOC_VIDEO, DOC_AUDIO, poll_interval=0.5, on_progress=lambda p: statuses.append(p.status)
    )
    assert done.outputs == [OUTPUT_URL]
    assert statuses == ["created", "processing", "completed"]
    assert clock.sleeps == [0.5, 0.75]


def test_cancel_posts_to_the_extension_route(make_client: ClientFactory, router: respx.MockRouter) -> None:
    cancelled = prediction("failed", code=1405, error="cancelled by the user")
    route = router.post(CANCEL_URL).mock(return_value=ok(cancelled))
    assert make_client().cancel(TASK_ID).code == 1405
    assert route.calls.last.request.headers["Authorization"] == "Bearer test-key"


# -- upload ---------------------------------------------------------------------------------------------------


def test_upload_ticket_flow_from_a_path(
    make_client: ClientFactory, router: respx.MockRouter, tmp_path: Path
) -> None:
    face = tmp_path / "face.mp4"
    payload = bytes(range(256)) * 9
    face.write_bytes(payload)
    ticket = router.post(TICKET_URL).mock(return_value=ok(TICKET))
    put = router.put(f"{STORAGE}/upload").mock(return_value=httpx.Response(200))

    url = make_client().upload(face)

    assert url == TICKET["download_url"]
    assert body_of(ticket.calls.last) == {
        "filename": "face.mp4",
        "size": len(payload),
        "content_type": "video/mp4",
    }
    sent = put.calls.last.request
    assert sent.content == payload
    assert sent.headers["Content-Type"] == "video/mp4"
    assert sent.headers["Content-Length"] == str(len(payload))
    # A presigned storage URL must never see the API key.
    assert "Authorization" not in sent.headers


def test_upload_bytes_with_explicit_name(make_client: ClientFactory, router: respx.MockRouter) -> None:
    ticket = router.post(TICKET_URL).mock(return_value=ok(TICKET))
    put = router.put(f"{STORAGE}/upload").mock(return_value=httpx.Response(200))
    make_client().upload(b"RIFF....WAVE", filename="speech.wav")
    expected_type = mimetypes.guess_type("speech.wav")[0]
    assert body_of(ticket.calls.last) == {"filename": "speech.wav", "size": 12, "content_type": expected_type}
    assert put.calls.last.request.content == b"RIFF....WAVE"


def test_upload_put_is_retried(
    make_client: ClientFactory, router: respx.MockRouter, clock: FakeClock
) -> None:
    router.post(TICKET_URL).mock(return_value=ok(TICKET))
    put = router.put(f"{STORAGE}/upload").mock(side_effect=[httpx.Response(503), httpx.Response(200)])
    make_client().upload(b"abc", filename="a.mp4")
    assert put.call_count == 2
    assert [c.request.content for c in put.calls] == [b"abc", b"abc"]


@pytest.mark.parametrize("status", [404, 405])
def test_upload_falls_back_to_legacy_binary(
    make_client: ClientFactory, router: respx.MockRouter, tmp_path: Path, status: int
) -> None:
    face = tmp_path / "face.mp4"
    face.write_bytes(b"legacy-video")
    router.post(TICKET_URL).mock(return_value=error(status, "not found"))
    legacy = router.post(BINARY_URL).mock(return_value=ok(BINARY_RESULT))

    assert make_client().upload(face) == BINARY_RESULT["download_url"]

    request = legacy.calls.last.request
    assert request.headers["Authorization"] == "Bearer test-key"
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    content = request.read()
    assert b'name="file"; filename="face.mp4"' in content
    assert b"legacy-video" in content


def test_upload_ticket_refused_in_the_body(make_client: ClientFactory, router: respx.MockRouter) -> None:
    router.post(TICKET_URL).mock(
        return_value=httpx.Response(200, json={"code": 403, "message": "quota exceeded", "data": None})
    )
    with pytest.raises(APIError, match="quota exceeded"):
        make_client().upload(b"x", filename="x.mp4")


def test_upload_missing_file_is_an_input_error(make_client: ClientFactory, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        make_client().upload(tmp_path / "absent.mp4")


# -- download -------------------------------------------------------------------------------------------------


def test_download_streams_to_dest_without_leaking_the_key(
    make_client: ClientFactory, router: respx.MockRouter, tmp_path: Path
) -> None:
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(3 * 1024 * 1024)  # > one chunk
    route = router.get(OUTPUT_URL).mock(return_value=httpx.Response(200, content=video))
    done = Prediction.model_validate(COMPLETED)

    path = make_client().download(done, tmp_path / "out.mp4")

    assert path == tmp_path / "out.mp4"
    assert path.read_bytes() == video
    assert not (tmp_path / "out.mp4.part").exists()
    assert "Authorization" not in route.calls.last.request.headers


def test_download_from_the_api_origin_sends_the_key_and_names_the_file(
    make_client: ClientFactory, router: respx.MockRouter, tmp_path: Path
) -> None:
    route = router.get(f"{BASE}/files/{TASK_ID}.mp4").mock(return_value=httpx.Response(200, content=b"mp4"))
    path = make_client().download(f"/files/{TASK_ID}.mp4", tmp_path)
    assert path == tmp_path / f"{TASK_ID}.mp4"
    assert path.read_bytes() == b"mp4"
    assert route.calls.last.request.headers["Authorization"] == "Bearer test-key"


def test_download_decodes_base64_output(make_client: ClientFactory, tmp_path: Path) -> None:
    done = Prediction.model_validate(
        prediction("completed", outputs=[base64.b64encode(b"inline-mp4").decode()])
    )
    assert make_client().download(done, tmp_path / "o.mp4").read_bytes() == b"inline-mp4"


def test_download_error_leaves_no_file(
    make_client: ClientFactory, router: respx.MockRouter, tmp_path: Path
) -> None:
    router.get(f"{CDN}/gone.mp4").mock(return_value=httpx.Response(404, text="NoSuchKey"))
    with pytest.raises(NotFoundError, match="NoSuchKey"):
        make_client().download(f"{CDN}/gone.mp4", tmp_path / "o.mp4")
    assert list(tmp_path.iterdir()) == []


def test_download_of_an_unfinished_prediction_is_refused(make_client: ClientFactory, tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="no output") as info:
        make_client().download(Prediction.model_validate(PROCESSING), tmp_path / "o.mp4")
    assert info.value.job_id == TASK_ID
