"""`lipsync run` end to end: real clips from ../shared/media, tiny weights written by `lipsync weights tiny`,
the MediaPipe face backend. One full-length 1080x1920 run; everything else on short cuts made here.

Checked on every output: it plays, 25 fps, H.264 + AAC, the audio's duration, the input's resolution, and
outside the face region the frames match the 25-fps input (PSNR >= 40 dB).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lipsync.cli import app
from lipsync.media.io import iter_frames_25fps, load_audio_16k
from tests.media.media_factory import audio_only_copy, empty_wav, text_named_mp4, truncated_copy
from tests.pipeline.clips import decode_frames, face_clip, face_region, output_info, psnr, speech

PSNR_TARGET_DB = 40.0


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def weights(runner: CliRunner, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("weights")
    result = runner.invoke(app, ["weights", "tiny", str(root), "--version", "1.5"])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def detector():  # type: ignore[no-untyped-def]
    from lipsync.media.faces import create_detector

    with create_detector("mediapipe") as d:
        yield d


def run_cli(runner: CliRunner, weights: Path, *args: str):  # type: ignore[no-untyped-def]
    base = ["run", *args, "--weights-dir", str(weights), "--version", "1.5", "--face-detector", "mediapipe"]
    return runner.invoke(app, [*base, "--device", "cpu", "--steps", "1", "--guidance", "1.0", "--quiet"])


def check_output(out: Path, video: Path, audio: Path, detector, *, every: int = 1) -> list[float]:  # type: ignore[no-untyped-def]
    """The properties every output must have; returns the PSNR (dB) outside the face of the checked frames."""
    info = output_info(out)
    width, height = next(iter_frames_25fps(video)).shape[1::-1]
    samples = load_audio_16k(audio).shape[0]
    assert (info.width, info.height) == (width, height)
    assert info.fps == 25.0 and info.video_codec == "h264" and info.audio_codec == "aac"
    assert info.frames == math.ceil(samples / 640)  # the video follows the audio
    assert samples / 16000 <= info.audio_duration_s < samples / 16000 + 0.065  # + AAC frame padding
    values = []
    source = iter_frames_25fps(video)
    for i, (got, src) in enumerate(zip(decode_frames(out), source, strict=False)):
        if i % every:
            continue
        region = face_region(src, detector, 256)
        assert region is not None, f"frame {i}: the test clip should show a face"
        values.append(psnr(got, src, ~region))
        assert psnr(got, src, region) < values[-1], f"frame {i}: the face should have been regenerated"
    assert min(values) >= PSNR_TARGET_DB, f"PSNR outside the face: min {min(values):.2f} dB"
    return values


@pytest.mark.slow  # about a minute on 2 cores: the one full-length 1080x1920 run of the suite
def test_full_length_real_clip(
    runner: CliRunner, weights: Path, media_dir: Path, tmp_path: Path, detector
) -> None:  # type: ignore[no-untyped-def]
    """demo1: 1080x1920 HEVC, 10 s of video, 9.6 s of speech (ping-pong not needed: the video is longer)."""
    video, audio = media_dir / "demo1_video.mp4", media_dir / "demo1_audio.wav"
    out = tmp_path / "out dir" / "demo 1.mp4"  # spaces in paths (the reference breaks on them)
    result = run_cli(runner, weights, str(video), str(audio), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout
    values = check_output(out, video, audio, detector, every=25)
    print(f"demo1 full length: PSNR outside the face {min(values):.2f}..{max(values):.2f} dB")


def test_30fps_clip_with_video_and_audio_options(
    runner: CliRunner,
    weights: Path,
    media_dir: Path,
    tmp_path: Path,
    detector,  # type: ignore[no-untyped-def]
) -> None:
    video = face_clip(media_dir, tmp_path / "v30fps.mp4", speaker="demo2", frames=20, fps=30)
    audio = speech(media_dir, tmp_path / "speech.wav", 0.7, speaker="demo2")
    out = tmp_path / "out.mp4"
    result = run_cli(runner, weights, "--video", str(video), "--audio", str(audio), "-o", str(out))
    assert result.exit_code == 0, result.output
    values = check_output(out, video, audio, detector)
    print(f"30 fps clip: PSNR outside the face {min(values):.2f}..{max(values):.2f} dB")


def test_run_says_up_front_how_many_frames_and_about_how_long(
    runner: CliRunner, weights: Path, media_dir: Path, tmp_path: Path
) -> None:
    video = face_clip(media_dir, tmp_path / "v.mp4", frames=8)
    audio = speech(media_dir, tmp_path / "speech.wav", 0.3)
    base = ["run", str(video), str(audio), "-o", str(tmp_path / "o.mp4"), "--weights-dir", str(weights)]
    flags = [
        "--version",
        "1.5",
        "--face-detector",
        "mediapipe",
        "--device",
        "cpu",
        "--steps",
        "10",
        "--guidance",
        "1.5",
    ]
    result = runner.invoke(app, [*base, *flags])
    assert result.exit_code == 0, result.output
    # 9 frames planned for 0.3 s of speech (the last one partly past it) x 10 steps x 2 (guidance) x 0.06 s
    assert (
        "9 output frames (0.36 s at 25 fps), 10 steps, guidance on (2 U-Net passes per step), on cpu: "
        "about 11 s on a 2-core CPU with development (tiny) weights" in result.output
    )


def test_duration_previews_the_first_seconds_of_the_audio(
    runner: CliRunner, weights: Path, media_dir: Path, tmp_path: Path
) -> None:
    video = face_clip(media_dir, tmp_path / "v.mp4", frames=20)
    audio = speech(media_dir, tmp_path / "speech.wav", 1.5)
    out = tmp_path / "preview.mp4"
    result = run_cli(runner, weights, str(video), str(audio), "-o", str(out), "--duration", "0.4")
    assert result.exit_code == 0, result.output
    info = output_info(out)
    assert info.frames == 10  # 0.4 s of the 1.5 s of speech, at 25 fps
    assert 0.4 <= info.audio_duration_s < 0.4 + 0.065
    decoded = load_audio_16k(out)[:6000]
    original = load_audio_16k(audio)[:6000]
    assert float(abs(decoded - original).mean()) < 0.02  # the same speech, from its start (AAC-coded)


# --- errors: exit code and one line naming the problem --------------------------------------------------------


def _broken(kind: str, media_dir: Path, tmp: Path) -> tuple[Path, Path]:
    clip = face_clip(media_dir, tmp / "ok.mp4", frames=8)
    wav = speech(media_dir, tmp / "ok.wav", 0.5)
    if kind == "truncated_mp4":
        return truncated_copy(media_dir / "demo1_video.mp4", tmp / "truncated.mp4", 0.4), wav
    if kind == "audio_only_as_video":
        return audio_only_copy(media_dir / "demo1_video.mp4", tmp / "sound.m4a"), wav
    if kind == "text_named_mp4":
        return text_named_mp4(tmp / "notes.mp4"), wav
    if kind == "silent_0s_wav":
        return clip, empty_wav(tmp / "empty.wav")
    if kind == "no_face":
        return face_clip(media_dir, tmp / "noface.mp4", frames=6, no_face=range(6)), wav
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "exit_code", "error_type", "words"),
    [
        ("truncated_mp4", 3, "media_unreadable", ["video file 'truncated.mp4'", "truncated"]),
        ("audio_only_as_video", 3, "no_video_stream", ["sound.m4a", "audio-only"]),
        ("text_named_mp4", 3, "media_unreadable", ["notes.mp4", "not a media file"]),
        ("silent_0s_wav", 3, "empty_media", ["audio file 'empty.wav'", "0 seconds"]),
        ("no_face", 4, "no_face", ["No face was found"]),
    ],
)
def test_broken_inputs_give_typed_errors(
    kind: str,
    exit_code: int,
    error_type: str,
    words: list[str],
    runner: CliRunner,
    weights: Path,
    media_dir: Path,
    tmp_path: Path,
) -> None:
    video, audio = _broken(kind, media_dir, tmp_path)
    out = tmp_path / "out.mp4"
    result = run_cli(runner, weights, str(video), str(audio), "-o", str(out))
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {error_type}: "), result.stderr
    for word in words:
        assert word in lines[0]
    assert not out.exists()


def test_on_no_face_fail_names_the_frame(
    runner: CliRunner, weights: Path, media_dir: Path, tmp_path: Path
) -> None:
    video = face_clip(media_dir, tmp_path / "gap.mp4", frames=10, no_face=[4, 5])
    audio = speech(media_dir, tmp_path / "a.wav", 0.4)
    result = run_cli(
        runner, weights, str(video), str(audio), "-o", str(tmp_path / "o.mp4"), "--on-no-face", "fail"
    )
    assert result.exit_code == 4
    assert "frame 4 (0.16 s)" in result.stderr


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--loop-mode", "bounce"], "loop_mode"),
        (["--on-no-face", "skip"], "on_no_face"),
        (["--steps", "0"], "inference_steps"),
        (["--guidance", "0.5"], "guidance_scale"),
        (["--version", "2.0"], "model_version"),
        (["--video", "x.mp4"], "video"),  # given twice: positional and option
    ],
)
def test_bad_options_exit_2_naming_the_field(
    args: list[str], field: str, runner: CliRunner, weights: Path, media_dir: Path, tmp_path: Path
) -> None:
    video = face_clip(media_dir, tmp_path / "v.mp4", frames=4)
    audio = speech(media_dir, tmp_path / "a.wav", 0.2)
    base = ["run", str(video), str(audio), "-o", str(tmp_path / "o.mp4"), "--weights-dir", str(weights)]
    result = runner.invoke(app, [*base, "--face-detector", "mediapipe", "--quiet", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: invalid_input: ") and f"(field: {field})" in result.stderr


def test_missing_weights_exit_5(runner: CliRunner, media_dir: Path, tmp_path: Path) -> None:
    video = face_clip(media_dir, tmp_path / "v.mp4", frames=4)
    audio = speech(media_dir, tmp_path / "a.wav", 0.2)
    result = runner.invoke(
        app,
        [
            "run",
            str(video),
            str(audio),
            "-o",
            str(tmp_path / "o.mp4"),
            "--weights-dir",
            str(tmp_path / "none"),
        ],
    )
    assert result.exit_code == 5
    assert result.stderr.startswith("error: weights_unavailable: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_progress_bar_shows_stage_frames_and_eta() -> None:
    import io

    from rich.console import Console

    from lipsync.cli.run import _ProgressBar
    from lipsync.pipeline import ProgressEvent

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    with _ProgressBar(enabled=True, console=console) as bar:
        bar.update(ProgressEvent("diffuse", 0, 40, chunk=1, chunks_total=3, step=10, steps_total=20))
        bar.update(ProgressEvent("done", 40, 40))
    text = buffer.getvalue()
    assert "done" in text and "40/40" in text and "ETA" in text and "100%" in text
    with _ProgressBar(enabled=False) as silent:
        silent.update(ProgressEvent("diffuse", 0, 40))  # no terminal, no bar: a no-op
