"""`lipsync run VIDEO AUDIO -o OUT.mp4`: lip-sync a local video to a local audio file."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lipsync.cli._face import FACE_HELP, parse_face
from lipsync.cli.choices import DETECTOR_HELP, DETECTOR_METAVAR, VERSION_HELP, VERSION_METAVAR
from lipsync.engine.releases import DEFAULT_VERSION
from lipsync.media.faces.registry import DEFAULT_DETECTOR

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from lipsync.pipeline import ProgressEvent


def register(app: typer.Typer) -> None:
    """Attach the `run` command to *app*."""
    app.command("run", no_args_is_help=True)(run)


def run(
    output: Annotated[Path, typer.Option("--output", "-o", help="Output MP4 (H.264 + AAC).")],
    video: Annotated[Path | None, typer.Argument(help="Input video (any common container/codec).")] = None,
    audio: Annotated[
        Path | None, typer.Argument(help="Input audio (or a video whose sound track to use).")
    ] = None,
    video_opt: Annotated[Path | None, typer.Option("--video", help="Input video (instead of VIDEO).")] = None,
    audio_opt: Annotated[Path | None, typer.Option("--audio", help="Input audio (instead of AUDIO).")] = None,
    # The run options: each is a field of contracts.RunOptions (--<field-name> for each; a test checks the
    # flags and defaults against it). They stay plain str/int here so that RunOptions' own validation
    # names the field, and so that `lipsync --help` does not import pydantic.
    steps: Annotated[
        int, typer.Option("--steps", "--inference-steps", help="DDIM denoising steps (1-1000).")
    ] = 20,
    guidance: Annotated[
        float,
        typer.Option("--guidance", "--guidance-scale", help="Classifier-free guidance scale (1 = off)."),
    ] = 1.5,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1247,
    version: Annotated[
        str,
        typer.Option("--version", "--model-version", metavar=VERSION_METAVAR, help=VERSION_HELP),
    ] = DEFAULT_VERSION,
    loop_mode: Annotated[
        str, typer.Option("--loop-mode", help="Length mismatch: pingpong | loop | cut_off | silence.")
    ] = "pingpong",
    on_no_face: Annotated[
        str, typer.Option("--on-no-face", help="Frames without a face: passthrough | fail.")
    ] = "passthrough",
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N.")] = "auto",
    dtype: Annotated[str, typer.Option("--dtype", help="auto | fp32 | fp16 | bf16.")] = "auto",
    weights_dir: Annotated[
        Path | None,
        typer.Option("--weights-dir", help="Weights root (default: $LIPSYNC_WEIGHTS_DIR or the user cache)."),
    ] = None,
    face_detector: Annotated[
        str, typer.Option("--face-detector", metavar=DETECTOR_METAVAR, help=DETECTOR_HELP)
    ] = DEFAULT_DETECTOR,
    deep_cache: Annotated[
        bool,
        typer.Option(
            "--deep-cache/--no-deep-cache", help="Reference DeepCache schedule (faster, approximate)."
        ),
    ] = False,
    face: Annotated[str, typer.Option("--face", help=FACE_HELP)] = "largest",
    preset: Annotated[
        str,
        typer.Option(
            "--preset", help="x264 preset of the output (same CRF 18 quality; slower = smaller file)."
        ),
    ] = "veryfast",
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration",
            help="Only the first SECONDS of the audio (a quick preview: the output follows the audio).",
            min=0.04,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Lip-sync VIDEO to AUDIO and write OUT.mp4 (25 fps, the video's resolution, the audio's length).

    Exit codes: 0 ok, 2 bad input/option, 3 unusable media, 4 no face, 5 no weights, 6 engine, 130 cancelled.
    Errors print one line: "error: TYPE: MESSAGE".
    """
    from lipsync.errors import LipsyncError

    # The one line saying, before the work starts, how many frames and (on a CPU) about how long; for this
    # run only (the handler goes when it ends, so in-process callers are left as they were).
    plan_log = logging.getLogger("lipsync.run")
    echo = _EchoHandler()
    if not quiet:
        plan_log.setLevel(logging.INFO)
        plan_log.addHandler(echo)
    try:
        video_path = _one_of(video, video_opt, "video")
        audio_path = _one_of(audio, audio_opt, "audio")
        from lipsync.pipeline import LipSync

        engine = LipSync(
            weights_dir,
            version=version,
            device=device,
            dtype=dtype,
            face_detector=face_detector,
            preset=preset,
        )
        with contextlib.ExitStack() as stack, engine, _ProgressBar(enabled=not quiet) as bar:
            if duration is not None:
                audio_path = _first_seconds(audio_path, duration, stack)
            result = engine.run(
                video_path,
                audio_path,
                output,
                seed=seed,
                guidance_scale=guidance,
                inference_steps=steps,
                loop_mode=loop_mode,
                on_no_face=on_no_face,
                deep_cache=deep_cache,
                face=parse_face(face),
                progress=bar.update,
            )
    except LipsyncError as exc:
        typer.echo(f"error: {exc.error_type}: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("error: cancelled: interrupted", err=True)
        raise typer.Exit(130) from None
    finally:
        plan_log.removeHandler(echo)
    note = (
        f"; {result.frames_without_face} frames without a face copied unchanged"
        if result.frames_without_face
        else ""
    )
    typer.echo(
        f"wrote {result.out} ({result.frames} frames, {result.duration_s:.2f} s) in {result.wall_s:.1f} s{note}"
    )
    if result.face.get("mode") != "largest" or "fallback" in result.face:
        typer.echo(f"face: {json.dumps(result.face)}")


def _first_seconds(audio: Path, seconds: float, stack: contextlib.ExitStack) -> Path:
    """The first *seconds* of *audio* as a 16 kHz WAV in a temporary directory (removed with *stack*)."""
    import tempfile
    import wave

    import numpy as np

    from lipsync.media.io import load_audio_16k

    samples = load_audio_16k(audio)[: round(seconds * 16000)]
    path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lipsync-run-"))) / "audio.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(samples, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes())
    return path


def _one_of(positional: Path | None, option: Path | None, name: str) -> Path:
    from lipsync.errors import InputError

    if positional is not None and option is not None:
        raise InputError(f"give the {name} once: either as an argument or with --{name}", field=name)
    path = positional if positional is not None else option
    if path is None:
        raise InputError(f"missing the {name} input (argument or --{name})", field=name)
    return path


class _EchoHandler(logging.Handler):
    """Log records as plain lines on stderr (the pipeline's INFO line about the run ahead)."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(record.getMessage(), err=True)


class _ProgressBar:
    """A rich progress bar (stage, frames, elapsed, ETA) on stderr; silent when disabled or not a terminal.

    *console* is for tests (a rich ``Console`` writing to a buffer as if it were a terminal).
    """

    def __init__(self, *, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled and (console is not None or sys.stderr.isatty())
        self._console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last = 0.0

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.fields[stage]:<10}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("frames"),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self._console or Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("lipsync", total=None, stage="starting")
        return self

    def update(self, event: ProgressEvent) -> None:
        if self._progress is None or self._task is None:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and event.stage != "done":
            return  # rich redraws ~10x/s anyway; skip the bookkeeping in between
        self._last = now
        # The bar counts output frames; its position is the event's fraction, which includes the denoising
        # progress of the current chunk, so the ETA moves during the long diffusion stage.
        total = max(event.frames_total, 1)
        self._progress.update(self._task, total=total, completed=event.fraction * total, stage=event.stage)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
