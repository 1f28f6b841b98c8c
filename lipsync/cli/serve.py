"""`lipsync serve`: the WaveSpeed-compatible API on embedded defaults (SQLite, a directory, worker processes).

Flags override the matching ``LIPSYNC_*`` environment variables. With no API key configured, a key is
generated once, stored in ``<data dir>/api_key`` (mode 0600) and printed, so the first run just works and
the key survives restarts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from lipsync.cli.choices import DETECTOR_HELP, DETECTOR_METAVAR

__all__ = ["register", "serve"]


def _stored_key(data_dir: Path) -> str:
    from lipsync.server.auth import generate_api_key

    path = data_dir / "api_key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(generate_api_key() + "\n")
    return path.read_text().strip()


def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on ($LIPSYNC_HOST, default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port; 0 picks a free one ($LIPSYNC_PORT, default 8000).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Jobs database, inputs and outputs ($LIPSYNC_DATA_DIR, default ./data)."),
    ] = None,
    weights_dir: Annotated[
        Path | None, typer.Option(help="Model weights ($LIPSYNC_WEIGHTS_DIR, default the engine's default).")
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key", help="Accepted key (repeatable; 'sha256:<hex>' = hashed) ($LIPSYNC_API_KEYS)."
        ),
    ] = None,
    face_detector: Annotated[
        str | None, typer.Option(metavar=DETECTOR_METAVAR, help=f"{DETECTOR_HELP} ($LIPSYNC_FACE_DETECTOR)")
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option(
            "--device", help="Worker device, one process each (repeatable) ($LIPSYNC_DEVICES, default auto)."
        ),
    ] = None,
    fetch_allow: Annotated[
        list[str] | None,
        typer.Option(
            "--fetch-allow",
            help="Host/IP/CIDR the fetcher may reach although private or loopback (dev) ($LIPSYNC_FETCH_ALLOW).",
        ),
    ] = None,
    public_base_url: Annotated[
        str | None, typer.Option(help="External URL for links, behind a proxy ($LIPSYNC_PUBLIC_BASE_URL).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the WaveSpeed-compatible lip-sync API (bytedance/lipsync/audio-to-video) on this machine."""
    import uvicorn
    from pydantic import ValidationError

    from lipsync.server.app import create_default_app
    from lipsync.server.serving import base_url_of, bind_socket, uvicorn_config
    from lipsync.server.settings import ServerSettings

    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "weights_dir": weights_dir,
        "api_keys": api_key,
        "face_detector": face_detector,
        "devices": device,
        "fetch_allow": fetch_allow,
        "public_base_url": public_base_url,
    }
    try:
        settings = ServerSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None

    generated: str | None = None
    if not settings.api_keys:
        generated = _stored_key(settings.data_dir)
        settings = settings.model_copy(update={"api_keys": [generated]})
    try:
        sock = bind_socket(settings.host, settings.port)
    except OSError as exc:
        typer.echo(
            f"error: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}", err=True
        )
        raise typer.Exit(1) from None
    base_url = settings.public_base_url or base_url_of(sock)
    try:
        app = create_default_app(settings)
    except (ValueError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None

    if settings.fetch_allow:
        typer.echo(
            "WARNING: LIPSYNC_FETCH_ALLOW is set: input and webhook URLs may reach "
            f"{', '.join(settings.fetch_allow)} although private/loopback. Development use only.",
            err=True,
        )
    typer.echo(f"lipsync server listening on {base_url}")
    if generated is not None:
        typer.echo(f"  API key (generated, stored in {settings.data_dir / 'api_key'}): {generated}")
    else:
        typer.echo(f"  API keys: {len(settings.api_keys)} configured (LIPSYNC_API_KEYS / --api-key)")
    typer.echo("  authenticate with the header  'Authorization: Bearer <key>'")
    typer.echo(f"  e.g. wavespeed.Client(api_key=KEY, base_url='{base_url}')   docs: {base_url}/docs")
    typer.echo(f"  data: {settings.data_dir.resolve()}   workers: {', '.join(settings.devices)}")
    server = uvicorn.Server(uvicorn_config(app, log_level=log_level, access_log=log_level == "debug"))
    server.run(sockets=[sock])


def register(app: typer.Typer) -> None:
    """Attach the `serve` command to *app*."""
    app.command("serve")(serve)
