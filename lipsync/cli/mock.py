"""`lipsync mock`: run the WaveSpeed-compatible mock for local development (also `python -m mock_server`)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["mock", "register"]


def mock(
    host: Annotated[
        str, typer.Option(help="Interface to listen on (keep it loopback: the mock has no real auth).")
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
) -> None:
    """Serve a WaveSpeed-compatible mock of bytedance/lipsync/audio-to-video (no GPU, no network, no account)."""
    import sys

    import uvicorn

    from mock_server.app import create_app
    from mock_server.config import MockConfig
    from mock_server.scenarios import ScenarioError
    from mock_server.server import base_url_of, bind_socket, uvicorn_config

    if clock not in ("system", "virtual"):
        raise typer.BadParameter("must be 'system' or 'virtual'", param_hint="--clock")
    try:
        config = MockConfig(
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
    uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])


def register(app: typer.Typer) -> None:
    """Attach the `mock` command to *app*."""
    app.command("mock")(mock)
