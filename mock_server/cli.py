"""`lipsync mock` / `python -m mock_server`: run the WaveSpeed-compatible mock for local development.

The command lives with the mock (not in ``lipsync.cli``) so the mock's entry point does not import the CLI
above it; ``lipsync.cli`` registers it like its own commands.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

__all__ = ["is_loopback", "mock", "register"]


def is_loopback(host: str) -> bool:
    """Whether binding *host* keeps the mock reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def mock(
    host: Annotated[
        str,
        typer.Option(
            help="Interface to listen on. Off loopback, --admin-token is required (a warning is printed)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one (the URL is printed).")] = 8000,
    scenario: Annotated[
        str, typer.Option(help='Default scenario, e.g. "success", "slow", "fail; code=1402" (see docs).')
    ] = "success",
    api_key: Annotated[
        list[str] | None,
        typer.Option("--api-key", help="Accepted Bearer key (repeatable). Default: any non-empty key."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the prediction/upload id generator.")] = 0,
    clock: Annotated[
        str,
        typer.Option(
            help="system: jobs progress in real time; virtual: only polls and /__mock/clock/advance."
        ),
    ] = "system",
    public_url: Annotated[
        str | None, typer.Option(help="Base URL to write into result/output/upload URLs (behind a proxy).")
    ] = None,
    webhook_secret: Annotated[
        str, typer.Option(help="Secret that signs webhook callbacks (v3).")
    ] = "whsec_mock-webhook-secret",
    journal_size: Annotated[int, typer.Option(help="Requests kept in the journal (oldest dropped).")] = 1000,
    max_jobs: Annotated[int, typer.Option(help="Jobs kept in memory (oldest forgotten).")] = 10_000,
    admin_token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token the /__mock/* admin routes and the journal then require "
            "(required off loopback; $LIPSYNC_MOCK_ADMIN_TOKEN).",
            envvar="LIPSYNC_MOCK_ADMIN_TOKEN",
        ),
    ] = None,
    webhook_allow: Annotated[
        list[str] | None,
        typer.Option(
            "--webhook-allow",
            help="Host/IP/CIDR webhooks may reach although private or loopback (repeatable). "
            "Default: loopback on a loopback mock, nothing otherwise.",
        ),
    ] = None,
) -> None:
    """Serve a WaveSpeed-compatible mock of bytedance/lipsync/audio-to-video (no GPU, no network, no account)."""
    import sys

    import uvicorn

    from lipsync.web import connection_limits
    from mock_server.app import create_app
    from mock_server.config import LOOPBACK, MockConfig
    from mock_server.scenarios import ScenarioError
    from mock_server.server import base_url_of, bind_socket, uvicorn_config

    if clock not in ("system", "virtual"):
        raise typer.BadParameter("must be 'system' or 'virtual'", param_hint="--clock")
    local = is_loopback(host)
    if not local:
        typer.echo(
            f"WARNING: the mock listens on {host}, beyond this machine. It is a test double: any key may be "
            "accepted, and jobs, uploads and the journal are visible to every caller of the admin routes.",
            err=True,
        )
        if not admin_token:
            typer.echo(
                "error: a non-loopback --host requires --admin-token (admin routes and journal)", err=True
            )
            raise typer.Exit(2)
    try:
        config = MockConfig(
            admin_token=admin_token or None,
            webhook_allow=tuple(webhook_allow) if webhook_allow is not None else (LOOPBACK if local else ()),
            api_keys=tuple(api_key) if api_key else None,
            scenario=scenario,
            seed=seed,
            clock=clock,  # type: ignore[arg-type]
            public_url=public_url,
            webhook_secret=webhook_secret,
            journal_size=journal_size,
            max_jobs=max_jobs,
        )
    except ScenarioError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scenario") from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    app = create_app(config)
    base_url = base_url_of(sock)
    app.state.mock.base_url = base_url
    keys = "any non-empty key" if config.api_keys is None else ", ".join(config.api_keys)
    # The socket is already listening: clients may connect from this line on. Flush so scripts can read it.
    typer.echo(f"WaveSpeed mock listening on {base_url}", nl=True)
    typer.echo(f"  scenario: {scenario} | clock: {clock} | API keys: {keys}", err=True)
    typer.echo(
        f"  admin: {base_url}/__mock/requests, {base_url}/__mock/clock/advance, {base_url}/docs", err=True
    )
    typer.echo(f"  playground: open {base_url}/ in a browser (any key works)", err=True)
    sys.stdout.flush()
    uvicorn.Server(uvicorn_config(app, **connection_limits())).run(sockets=[sock])


def register(app: typer.Typer) -> None:
    """Attach the `mock` command to *app*."""
    app.command("mock")(mock)
