"""`lipsync submit` through typer's CliRunner, against recorded WaveSpeed responses (respx).

The command gets its client from the ``client_factory`` seam, so the test injects respx's transport and a
fake clock (no real sleeping) without patching anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import typer
from typer.testing import CliRunner

from lipsync.cli.submit import register
from lipsync.client import NOT_GIVEN, Client, RetryPolicy
from tests.client._recorded import (
    BASE,
    COMPLETED,
    CREATED,
    FAILED_1402,
    OUTPUT_URL,
    PROCESSING,
    RESULT_URL,
    STORAGE,
    SUBMIT_URL,
    TASK_ID,
    TICKET,
    TICKET_URL,
    error,
    ok,
    prediction,
)
from tests.client.conftest import FakeClock


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.MockRouter(assert_all_called=False, assert_all_mocked=True) as r:
        yield r


@pytest.fixture
def made() -> list[dict[str, Any]]:
    """The arguments the command built each client with."""
    return []


@pytest.fixture
def app(router: respx.MockRouter, made: list[dict[str, Any]]) -> typer.Typer:
    clock = FakeClock()

    def factory(**kwargs: Any) -> Client:
        made.append(kwargs)
        env = {"LIPSYNC_BASE_URL": BASE, "LIPSYNC_API_KEY": "env-key"}
        return Client(
            **kwargs,
            env=env,
            transport=httpx.MockTransport(router.handler),
            sleep=clock.sleep,
            clock=clock,
            retry=RetryPolicy(jitter=0.0),
        )

    cli = typer.Typer()

    @cli.callback()
    def main() -> None:
        """Keeps `submit` a sub-command, as in the real app."""

    register(cli, client_factory=factory)
    return cli


def invoke(app: typer.Typer, *args: str) -> Any:
    return CliRunner().invoke(app, ["submit", *args])


def test_local_files_are_uploaded_waited_for_and_downloaded(
    app: typer.Typer, router: respx.MockRouter, tmp_path: Path, made: list[dict[str, Any]]
) -> None:
    face, speech = tmp_path / "face.mp4", tmp_path / "speech.wav"
    face.write_bytes(b"face-video")
    speech.write_bytes(b"speech-audio")
    tickets = router.post(TICKET_URL).mock(
        side_effect=[
            ok({**TICKET, "download_url": f"{STORAGE}/dl/face.mp4"}),
            ok(
                {
                    **TICKET,
                    "download_url": f"{STORAGE}/dl/speech.wav",
                    "upload": {"method": "PUT", "url": f"{STORAGE}/upload2"},
                }
            ),
        ]
    )
    put_face = router.put(f"{STORAGE}/upload").mock(return_value=httpx.Response(200))
    put_speech = router.put(f"{STORAGE}/upload2").mock(return_value=httpx.Response(200))
    submit = router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    router.get(RESULT_URL).mock(
        side_effect=[ok(prediction("processing", progress=0.4)), ok(PROCESSING), ok(COMPLETED)]
    )
    router.get(OUTPUT_URL).mock(return_value=httpx.Response(200, content=b"lip-synced-mp4"))
    out = tmp_path / "result" / "out.mp4"

    result = invoke(app, "--video", str(face), "--audio", str(speech), "--seed", "42", "-o", str(out))

    assert result.exit_code == 0, result.output
    assert made == [{"base_url": NOT_GIVEN, "api_key": NOT_GIVEN}]
    assert tickets.call_count == 2
    assert put_face.calls.last.request.content == b"face-video"
    assert put_speech.calls.last.request.content == b"speech-audio"
    body = json.loads(submit.calls.last.request.content)
    assert body == {"video": f"{STORAGE}/dl/face.mp4", "audio": f"{STORAGE}/dl/speech.wav", "seed": 42}
    assert submit.calls.last.request.headers["Authorization"] == "Bearer env-key"
    assert out.read_bytes() == b"lip-synced-mp4"
    assert result.stdout.strip() == str(out)
    assert TASK_ID in result.stderr


def test_without_wait_prints_the_id(
    app: typer.Typer, router: respx.MockRouter, made: list[dict[str, Any]]
) -> None:
    router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    poll = router.get(RESULT_URL).mock(return_value=ok(COMPLETED))
    result = invoke(
        app,
        "--video",
        "https://x.test/v.mp4",
        "--audio",
        "https://x.test/a.wav",
        "--base-url",
        BASE,
        "--api-key",
        "k",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == TASK_ID
    assert poll.call_count == 0
    assert made == [{"base_url": BASE, "api_key": "k"}]


def test_wait_prints_outputs_or_json(app: typer.Typer, router: respx.MockRouter) -> None:
    router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    router.get(RESULT_URL).mock(return_value=ok(COMPLETED))
    urls = ["--video", "https://x.test/v.mp4", "--audio", "https://x.test/a.wav"]
    assert invoke(app, *urls, "--wait").stdout.strip() == OUTPUT_URL
    as_json = json.loads(invoke(app, *urls, "--wait", "--json").stdout)
    assert (as_json["id"], as_json["status"], as_json["outputs"]) == (TASK_ID, "completed", [OUTPUT_URL])


def test_the_face_report_is_shown_on_stderr(app: typer.Typer, router: respx.MockRouter) -> None:
    router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    report = {"mode": "auto", "fallback": "largest", "reason": "the video has no sound track [x]"}
    router.get(RESULT_URL).mock(side_effect=[ok({**COMPLETED, "face": report}), ok(COMPLETED)])
    urls = ["--video", "https://x.test/v.mp4", "--audio", "https://x.test/a.wav", "--face", "auto", "--wait"]
    result = invoke(app, *urls)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == OUTPUT_URL
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("face: ")]
    assert json.loads(line.removeprefix("face: ")) == report
    assert "face: " not in invoke(app, *urls).stderr  # no report, no line


def test_failed_job_exits_with_the_mapped_code(app: typer.Typer, router: respx.MockRouter) -> None:
    router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    router.get(RESULT_URL).mock(return_value=ok(FAILED_1402))
    result = invoke(app, "--video", "https://x.test/v.mp4", "--audio", "https://x.test/a.wav", "--wait")
    assert result.exit_code == 3  # 1402: media not reachable
    assert "1402" in result.stderr
    assert TASK_ID in result.stderr


def test_auth_error_exit_code(app: typer.Typer, router: respx.MockRouter) -> None:
    router.post(SUBMIT_URL).mock(return_value=error(401, "invalid authentication"))
    result = invoke(app, "--video", "https://x.test/v.mp4", "--audio", "https://x.test/a.wav")
    assert result.exit_code == 8
    assert "invalid authentication" in result.stderr


def test_wait_timeout_exit_code(app: typer.Typer, router: respx.MockRouter) -> None:
    router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    router.get(RESULT_URL).mock(return_value=ok(PROCESSING))
    result = invoke(
        app, "--video", "https://x.test/v.mp4", "--audio", "https://x.test/a.wav", "--wait", "--timeout", "30"
    )
    assert result.exit_code == 124
    assert "still running" in result.stderr


def test_missing_local_file_is_a_usage_error(
    app: typer.Typer, router: respx.MockRouter, tmp_path: Path
) -> None:
    submit = router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    result = invoke(app, "--video", str(tmp_path / "nope.mp4"), "--audio", "https://x.test/a.wav")
    assert result.exit_code == 2
    assert "--video" in result.stderr
    assert submit.call_count == 0


def test_invalid_option_is_rejected_before_sending(app: typer.Typer, router: respx.MockRouter) -> None:
    submit = router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    result = invoke(
        app, "--video", "https://x.test/v.mp4", "--audio", "https://x.test/a.wav", "--guidance-scale", "9"
    )
    assert result.exit_code == 2
    assert "guidance_scale" in result.stderr
    assert submit.call_count == 0


def test_bad_base_url_is_a_usage_error(app: typer.Typer) -> None:
    result = invoke(
        app, "--video", "https://x.test/v.mp4", "--audio", "https://x.test/a.wav", "--base-url", "nope"
    )
    assert result.exit_code == 2
    assert "base_url" in result.stderr


def test_the_real_cli_registers_submit() -> None:
    from lipsync.cli import app as real_app

    result = CliRunner().invoke(real_app, ["submit", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--video",
        "--audio",
        "--wait",
        "--output",
        "--base-url",
        "--api-key",
        "--seed",
        "--loop-mode",
    ):
        assert flag in result.stdout


def test_cli_choices_match_the_contract() -> None:
    from typing import get_args

    from contracts import LoopMode, ModelVersion, OnNoFace
    from lipsync.cli.submit import LoopModeChoice, ModelVersionChoice, OnNoFaceChoice

    assert get_args(LoopModeChoice) == get_args(LoopMode)
    assert get_args(ModelVersionChoice) == get_args(ModelVersion)
    assert get_args(OnNoFaceChoice) == get_args(OnNoFace)


def _options_of(command_name: str) -> dict[str, tuple[Any, Any]]:
    """``{flag: (parameter, its Python type)}`` of one command of the real app, for every long flag."""
    from typing import Annotated, get_args, get_origin, get_type_hints

    from lipsync.cli import app as real_app

    command = typer.main.get_command(real_app).commands[command_name]  # type: ignore[attr-defined]
    hints = get_type_hints(command.callback, include_extras=True)
    found: dict[str, tuple[Any, Any]] = {}
    for param in command.params:
        hint = hints[param.name]
        if get_origin(hint) is Annotated:
            hint = get_args(hint)[0]
        hint = next((a for a in get_args(hint) if a is not type(None)), hint)  # X | None -> X
        for flag in (*param.opts, *param.secondary_opts):
            found[flag] = (param, hint)
    return found


def test_every_run_option_has_a_submit_flag_with_the_contracts_choices() -> None:
    from typing import Literal, get_args, get_origin

    from contracts import RunOptions

    flags = _options_of("submit")
    for name, field in RunOptions.model_fields.items():
        param, hint = flags[f"--{name.replace('_', '-')}"]
        assert param.default is None, name  # not sent unless given: the server's default applies
        if get_origin(field.annotation) is Literal:
            assert get_args(hint) == get_args(field.annotation), name


def test_every_run_option_has_a_run_flag_with_the_contracts_default() -> None:
    from contracts import RunOptions

    flags = _options_of("run")
    for name, field in RunOptions.model_fields.items():
        param, _hint = flags[f"--{name.replace('_', '-')}"]
        assert param.default == field.default, name


def test_a_bad_option_fails_before_any_upload(
    app: typer.Typer, router: respx.MockRouter, tmp_path: Path
) -> None:
    face = tmp_path / "face.mp4"
    face.write_bytes(b"face-video")
    tickets = router.post(TICKET_URL).mock(return_value=ok(TICKET))
    submit = router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    result = invoke(app, "--video", str(face), "--audio", str(face), "--inference-steps", "500")
    assert result.exit_code == 2
    assert "inference_steps" in result.stderr
    assert tickets.call_count == 0 and submit.call_count == 0


def test_deep_cache_is_sent_only_when_given(app: typer.Typer, router: respx.MockRouter) -> None:
    submit = router.post(SUBMIT_URL).mock(return_value=ok(CREATED))
    media = ("--video", "https://x.test/v.mp4", "--audio", "https://x.test/a.wav")
    assert invoke(app, *media, "--deep-cache").exit_code == 0
    assert json.loads(submit.calls.last.request.content)["deep_cache"] is True
    assert invoke(app, *media).exit_code == 0
    assert "deep_cache" not in json.loads(submit.calls.last.request.content)
