"""``python -m mock_server``: the same as ``lipsync mock`` (same options)."""

from __future__ import annotations

import typer

from mock_server.cli import mock


def main() -> None:
    typer.run(mock)


if __name__ == "__main__":
    main()
