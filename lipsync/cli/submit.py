"""`lipsync submit`: send a lip-sync job to WaveSpeed or a compatible server, wait, and download the result.

Local files are uploaded first (ticket flow, legacy fallback); URLs are passed through. The client, rich and
httpx are imported inside the command so ``lipsync --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from lipsync.cli._face import FACE_HELP, parse_face

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from contracts import Prediction
    from lipsync.client import Client

__all__ = ["ClientFactory", "LoopModeChoice", "ModelVersionChoice", "OnNoFaceChoice", "register"]

#: Builds the client from ``base_url`` and ``api_key`` (``NOT_GIVEN`` when the flag was not used).
ClientFactory = Callable[..., "Client"]

_REMOTE_SCHEMES = ("http://", "https://", "data:")

# Copies of the contract's Literals (a test keeps them equal, and checks that every ``RunOptions`` field has
# a flag here): importing ``contracts`` here would load pydantic for every ``lipsync --help``.
LoopModeChoice = Literal["pingpong", "loop", "cut_off", "silence"]
ModelVersionChoice = Literal["1.5", "1.6"]
OnNoFaceChoice = Literal["fail", "passthrough"]


def register(app: typer.Typer, *, client_factory: ClientFactory | None = None) -> None:
    """Attach the `submit` command to *app*; ``client_factory`` is the seam tests use to inject a transport."""

    @app.command("submit")
    def submit(
        video: Annotated[
            str, typer.Option("--video", help="Face video: http(s) URL, data: URI or local file.")
        ],
        audio: Annotated[
            str, typer.Option("--audio", help="Speech audio: http(s) URL, data: URI or local file.")
        ],
        wait: Annotated[
            bool, typer.Option("--wait/--no-wait", help="Wait for the result (implied by -o).")
        ] = False,
        output: Annotated[
            Path | None,
            typer.Option("-o", "--output", help="Download the result video here (file or directory)."),
        ] = None,
        base_url: Annotated[
            str | None,
            typer.Option(help="API root (default: $LIPSYNC_BASE_URL, else https://api.wavespeed.ai)."),
        ] = None,
        api_key: Annotated[
            str | None, typer.Option(help="Bearer key (default: $LIPSYNC_API_KEY, else $WAVESPEED_API_KEY).")
        ] = None,
        seed: Annotated[int | None, typer.Option(help="Random seed (server default 1247).")] = None,
        guidance_scale: Annotated[float | None, typer.Option(help="1.0-3.0 (server default 1.5).")] = None,
        inference_steps: Annotated[int | None, typer.Option(help="10-50 (server default 20).")] = None,
        loop_mode: Annotated[
            LoopModeChoice | None,
            typer.Option(help="Audio/video length mismatch handling (server default pingpong)."),
        ] = None,
        model_version: Annotated[
            ModelVersionChoice | None, typer.Option(help="Checkpoint (server default 1.6).")
        ] = None,
        on_no_face: Annotated[
            OnNoFaceChoice | None, typer.Option(help="Frames without a face (server default passthrough).")
        ] = None,
        deep_cache: Annotated[
            bool | None,
            typer.Option(
                "--deep-cache/--no-deep-cache",
                help="DeepCache schedule: faster, approximate (server default off).",
                show_default=False,
            ),
        ] = None,
        face: Annotated[
            str | None, typer.Option("--face", help=FACE_HELP + " (server default largest)")
        ] = None,
        sync_mode: Annotated[
            bool,
            typer.Option("--sync-mode", help="Ask the server to answer only when done (enable_sync_mode)."),
        ] = False,
        webhook: Annotated[
            str | None, typer.Option(help="URL the server POSTs the finished prediction to.")
        ] = None,
        timeout: Annotated[
            float | None,
            typer.Option(help="Give up waiting after this many seconds (the job keeps running)."),
        ] = None,
        poll_interval: Annotated[
            float, typer.Option(help="First delay between status polls, seconds.")
        ] = 1.0,
        json_output: Annotated[
            bool, typer.Option("--json", help="Print the final prediction as JSON on stdout.")
        ] = False,
    ) -> None:
        """Submit a lip-sync job (uploading local files first); with --wait or -o, follow it to the end."""
        options: dict[str, Any] = {
            "seed": seed,
            "guidance_scale": guidance_scale,
            "inference_steps": inference_steps,
            "loop_mode": loop_mode,
            "model_version": model_version,
            "on_no_face": on_no_face,
            "deep_cache": deep_cache,
            "face": parse_face(face),
            "enable_sync_mode": sync_mode or None,
        }
        code = _submit(
            client_factory,
            video=video,
            audio=audio,
            wait=wait or output is not None,
            output=output,
            base_url=base_url,
            api_key=api_key,
            options={k: v for k, v in options.items() if v is not None},
            webhook=webhook,
            timeout=timeout,
            poll_interval=poll_interval,
            json_output=json_output,
        )
        if code:
            raise typer.Exit(code)


def _submit(
    client_factory: ClientFactory | None,
    *,
    video: str,
    audio: str,
    wait: bool,
    output: Path | None,
    base_url: str | None,
    api_key: str | None,
    options: dict[str, Any],
    webhook: str | None,
    timeout: float | None,
    poll_interval: float,
    json_output: bool,
) -> int:
    from rich.console import Console

    from lipsync.client import NOT_GIVEN, Client, request_options
    from lipsync.errors import LipsyncError

    err = Console(stderr=True, highlight=False)
    factory = client_factory or Client
    prediction: Prediction | None = None
    try:
        client = factory(
            base_url=NOT_GIVEN if base_url is None else base_url,
            api_key=NOT_GIVEN if api_key is None else api_key,
        )
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 2
    try:
        with client:
            options = request_options(None, options)  # before any upload: a bad option must not cost one
            video_url = _media(client, "--video", video, err)
            audio_url = _media(client, "--audio", audio, err)
            prediction = client.submit(video_url, audio_url, webhook=webhook, **options)
            err.print(f"submitted [bold]{prediction.id}[/] ({prediction.status}) to {client.base_url}")
            if not wait:
                typer.echo(prediction.model_dump_json() if json_output else prediction.id)
                return 0
            prediction = _wait_with_progress(client, prediction, timeout, poll_interval, err)
            if prediction.face is not None:  # which face was synced (the request chose one), as `lipsync run`
                err.print(f"face: {prediction.face.model_dump_json()}", markup=False, soft_wrap=True)
            if output is not None:
                path = client.download(prediction, output)
                err.print(f"saved [bold]{path}[/]")
            if json_output:
                typer.echo(prediction.model_dump_json())
            elif output is not None:
                typer.echo(path)
            else:
                typer.echo("\n".join(prediction.outputs))
            return 0
    except LipsyncError as exc:
        err.print(f"[red]error ({exc.error_type}):[/] {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        if prediction is not None:
            err.print(f"interrupted; the job keeps running: {prediction.id}")
        return 130


def _media(client: Client, flag: str, value: str, err: Console) -> str:
    """URLs and data: URIs pass through; anything else must be a local file, which is uploaded."""
    if value.lower().startswith(_REMOTE_SCHEMES):
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        from lipsync.errors import InputError

        raise InputError(
            f"{flag}: {value!r} is neither an http(s)/data: URL nor an existing file", field=flag
        )
    size_mb = path.stat().st_size / 1e6
    with err.status(f"uploading {path.name} ({size_mb:.1f} MB)"):
        url = client.upload(path)
    err.print(f"uploaded {path.name} -> {url}")
    return url


def _wait_with_progress(
    client: Client, prediction: Prediction, timeout: float | None, poll_interval: float, err: Console
) -> Prediction:
    """A bar when the server reports ``progress`` (our extension), else a spinner with the status."""
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task(f"{prediction.id}: {prediction.status}", total=None)

        def on_progress(p: Prediction) -> None:
            description = f"{p.id}: {p.status}"
            if p.status == "completed":
                progress.update(task, description=description, total=1.0, completed=1.0)
            elif p.progress is not None:
                progress.update(task, description=description, total=1.0, completed=p.progress)
            else:
                progress.update(task, description=description)

        return client.wait(prediction, timeout=timeout, poll_interval=poll_interval, on_progress=on_progress)
