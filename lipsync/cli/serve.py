"""`lipsync serve`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the `serve` command to *app*. (Filled in by the issue that owns it.)"""
