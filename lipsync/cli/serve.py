"""`lipsync serve`: the WaveSpeed-compatible API on embedded defaults (SQLite, a directory, worker processes).

Flags override the matching ``LIPSYNC_*`` environment variables. With no API key configured, a key is
generated once, stored in ``<data dir>/api_key`` (mode 0600) and printed, so the first run just works and
the key survives restarts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lipsync.cli._server_options import (
    DeviceOpt,
    FaceDetectorOpt,
    StoreUrlOpt,
    WeightsDirOpt,
    settings_from_flags,
)

if TYPE_CHECKING:
    import uvicorn

__all__ = ["register", "serve"]


def _stored_key(data_dir: Path) -> tuple[str, bool]:
    """The key kept in ``<data dir>/api_key`` and whether it was generated just now (else reused)."""
    from lipsync.server.auth import generate_api_key

    path = data_dir / "api_key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), False
    with os.fdopen(fd, "w") as fh:
        fh.write(generate_api_key() + "\n")
    return path.read_text().strip(), True


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
    weights_dir: WeightsDirOpt = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key", help="Accepted key (repeatable; 'sha256:<hex>' = hashed) ($LIPSYNC_API_KEYS)."
        ),
    ] = None,
    face_detector: FaceDetectorOpt = None,
    device: DeviceOpt = None,
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
    store_url: StoreUrlOpt = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the WaveSpeed-compatible lip-sync API (bytedance/lipsync/audio-to-video) on this machine."""
    import logging

    # Our own INFO lines (one per job transition, lipsync.jobs) on stderr; uvicorn keeps its own format.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("lipsync").setLevel(getattr(logging, log_level.upper(), logging.INFO))

    from lipsync.server.app import create_default_app
    from lipsync.server.serving import base_url_of, bind_socket, uvicorn_config
    from lipsync.web import connection_limits

    settings = settings_from_flags(
        host=host,
        port=port,
        data_dir=data_dir,
        weights_dir=weights_dir,
        api_keys=api_key,
        face_detector=face_detector,
        devices=device,
        fetch_allow=fetch_allow,
        public_base_url=public_base_url,
        store_url=store_url,
    )

    stored: str | None = None
    is_new = False
    if not settings.api_keys:
        stored, is_new = _stored_key(settings.data_dir)
        settings = settings.model_copy(update={"api_keys": [stored]})
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

    def announce() -> None:
        typer.echo(f"lipsync server listening on {base_url}")
        if stored is not None:
            how = "generated now and stored in" if is_new else "reused from"
            typer.echo(f"  API key ({how} {settings.data_dir / 'api_key'}): {stored}")
        else:
            typer.echo(f"  API keys: {len(settings.api_keys)} configured (LIPSYNC_API_KEYS / --api-key)")
        typer.echo("  authenticate with the header  'Authorization: Bearer <key>'")
        typer.echo(f"  e.g. wavespeed.Client(api_key=KEY, base_url='{base_url}')   docs: {base_url}/docs")
        typer.echo(f"  playground: open {base_url}/ in a browser")
        typer.echo(
            f"  data: {settings.data_dir.resolve()}   workers: {', '.join(settings.devices) or 'none here'}"
        )

    limits = connection_limits(
        header_timeout_s=settings.header_timeout_s, max_connections=settings.max_connections
    )
    server = _announcing_server(
        uvicorn_config(app, log_level=log_level, access_log=log_level == "debug", **limits), announce
    )
    server.run(sockets=[sock])


def _announcing_server(config: uvicorn.Config, announce: Callable[[], None]) -> uvicorn.Server:
    import uvicorn  # here, not at module level: every other command would pay for importing it

    class AnnouncingServer(uvicorn.Server):
        """Says "listening" once the app has started, i.e. after uvicorn took over SIGINT/SIGTERM: a Ctrl-C
        (or a supervisor's signal) sent as soon as the banner appears then shuts the server down, where
        before it could land in Python's default handler during start-up and be lost (the server kept
        running)."""

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                announce()

    return AnnouncingServer(config)


def register(app: typer.Typer) -> None:
    """Attach the `serve` command to *app*."""
    app.command("serve")(serve)
