"""`lipsync weights download|tiny|verify|path`: fetch, fake, check and locate model weights.

Heavy imports (torch, huggingface_hub) happen inside the commands. The hub is injectable through typer's
context object, ``CliRunner().invoke(app, [...], obj={"hf_hub_download": fake, "hub_files": [...]})``: tests
serve tiny files from a fake hub (with their own checksums) instead of reaching huggingface.co.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lipsync.cli.choices import VERSION_HELP, VERSION_METAVAR
from lipsync.engine.releases import DEFAULT_VERSION

weights_app = typer.Typer(
    name="weights",
    help="Download, verify or locate model weights (or write tiny development weights).",
    no_args_is_help=True,
)

VersionOpt = Annotated[str, typer.Option("--version", metavar=VERSION_METAVAR, help=VERSION_HELP)]
DirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Weights root (default: $LIPSYNC_WEIGHTS_DIR or ~/.cache/lipsync/weights)."),
]


def register(app: typer.Typer) -> None:
    """Attach the `weights` command group to *app*."""
    app.add_typer(weights_app, name="weights")


def _fail(exc: Exception) -> typer.Exit:
    from lipsync.errors import LipsyncError

    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=exc.exit_code if isinstance(exc, LipsyncError) else 1)


def _root(directory: Path | None) -> Path:
    from lipsync.engine.weights import default_weights_dir

    return directory if directory is not None else default_weights_dir()


@weights_app.command("download")
def download(
    ctx: typer.Context,
    version: VersionOpt = DEFAULT_VERSION,
    directory: DirOpt = None,
    face_models: Annotated[
        bool,
        typer.Option(
            "--face-models/--no-face-models", help="Also fetch InsightFace buffalo_l (det + landmarks)."
        ),
    ] = True,
) -> None:
    """Download the pinned official weights of a release and check their sha256 checksums."""
    from lipsync.engine.weights import download_weights
    from lipsync.errors import WeightsError

    obj: dict[str, Any] = ctx.obj if isinstance(ctx.obj, dict) else {}
    try:
        layout = download_weights(
            version,
            _root(directory),
            hub=obj.get("hf_hub_download"),
            files=obj.get("hub_files"),
            include_face_models=face_models,
            log=typer.echo,
        )
    except WeightsError as exc:
        raise _fail(exc) from exc
    typer.echo(f"LatentSync {layout.version} weights ready in {layout.root}")
    if directory is not None:
        typer.echo(f"Use them with --weights-dir {layout.root} or LIPSYNC_WEIGHTS_DIR={layout.root}")


@weights_app.command("tiny", no_args_is_help=True)
def tiny(
    directory: Annotated[Path, typer.Argument(help="Where to write the tiny weights (created if needed).")],
    version: VersionOpt = DEFAULT_VERSION,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random weights.")] = 0,
) -> None:
    """Write tiny RANDOM weights in the official layout and formats (development aid; outputs are noise)."""
    from lipsync.engine.weights import write_tiny_weights
    from lipsync.errors import WeightsError

    try:
        layout = write_tiny_weights(directory, version=version, seed=seed)
    except WeightsError as exc:
        raise _fail(exc) from exc
    typer.echo(f"tiny development weights (LatentSync {layout.version} layout) written to {layout.root}")
    for path in layout.engine_files():
        typer.echo(f"  {path.relative_to(layout.root)}")
    typer.echo("These are random: they exercise the code paths, they do not lip-sync.")


@weights_app.command("verify")
def verify(
    version: VersionOpt = DEFAULT_VERSION,
    directory: DirOpt = None,
    face_models: Annotated[
        bool, typer.Option("--face-models/--no-face-models", help="Also require the InsightFace models.")
    ] = False,
) -> None:
    """Check that every file is present and unchanged (sha256 against the manifest or the pinned list)."""
    from lipsync.engine.weights import WeightsLayout, verify_weights
    from lipsync.errors import WeightsError

    try:
        layout = WeightsLayout(_root(directory), version)
        checked = verify_weights(layout, face_models=face_models)
    except WeightsError as exc:
        raise _fail(exc) from exc
    kind = "tiny development" if layout.is_tiny else "official"
    typer.echo(f"{len(checked)} files verified: {kind} LatentSync {layout.version} weights in {layout.root}")


@weights_app.command("path")
def path(version: VersionOpt = DEFAULT_VERSION, directory: DirOpt = None) -> None:
    """Print where each weights file is expected (and whether it is there)."""
    from lipsync.engine.weights import WeightsLayout
    from lipsync.errors import WeightsError

    try:
        layout = WeightsLayout(_root(directory), version)
    except WeightsError as exc:
        raise _fail(exc) from exc
    typer.echo(f"root            {layout.root}")
    for label, p in (
        ("unet", layout.unet_path),
        ("whisper", layout.whisper_path),
        ("vae", layout.vae_dir),
        ("face models", layout.buffalo_l_dir),
    ):
        state = "present" if p.exists() else "missing"
        typer.echo(f"{label:<15} {p}  [{state}]")
