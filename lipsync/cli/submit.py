"""`lipsync submit`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the `submit` command to *app*. (Filled in by the issue that owns it.)"""
