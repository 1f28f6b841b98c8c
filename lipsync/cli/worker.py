"""`lipsync worker`: worker processes without an API, for GPU machines joining a shared store.

They claim the jobs that `lipsync serve` processes (on any machine) accept into the store named by
``LIPSYNC_STORE_URL`` (PostgreSQL), and read and write media in the storage those share (S3, or one
directory). Every other setting is `lipsync serve`'s (``LIPSYNC_*``); flags override them.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from lipsync.cli._server_options import (
    DeviceOpt,
    FaceDetectorOpt,
    StoreUrlOpt,
    WeightsDirOpt,
    settings_from_flags,
)

__all__ = ["register", "worker"]


def worker(
    store_url: StoreUrlOpt = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Scratch space, and media unless S3 is set ($LIPSYNC_DATA_DIR, default ./data)."),
    ] = None,
    weights_dir: WeightsDirOpt = None,
    face_detector: FaceDetectorOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Run lip-sync workers for the API processes that share this job store (no API here)."""
    from lipsync.server.worker import run_workers

    settings = settings_from_flags(
        store_url=store_url,
        data_dir=data_dir,
        weights_dir=weights_dir,
        face_detector=face_detector,
        devices=device,
    )
    if not settings.shared_store:
        typer.echo(
            "error: lipsync worker needs a store shared with the API processes: set LIPSYNC_STORE_URL "
            "(or --store-url) to postgresql://... (on one machine, `lipsync serve` runs its own workers)",
            err=True,
        )
        raise typer.Exit(2)
    if not settings.devices:
        typer.echo("error: no devices: set --device or LIPSYNC_DEVICES", err=True)
        raise typer.Exit(2)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        typer.echo(f"lipsync workers on {', '.join(settings.devices)}: waiting for jobs (Ctrl-C stops)")
        await run_workers(settings, stop=stop)

    asyncio.run(main())


def register(app: typer.Typer) -> None:
    """Attach the `worker` command to *app*."""
    app.command("worker")(worker)
