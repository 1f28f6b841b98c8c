"""The `lipsync` command line.

Each sub-command lives in its own module (``lipsync/cli/<name>.py``, the mock's in ``mock_server/cli.py``)
exposing ``register(app)``;
heavy imports (torch, FastAPI, PyAV) happen inside the command bodies so ``lipsync --help`` stays fast
and the base (client-only) install can run ``lipsync submit`` without the engine.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="lipsync",
    help="Self-hosted LatentSync lip-sync: run locally, serve a WaveSpeed-compatible API, or mock it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Order is the order shown in --help. The mock's command lives with the mock (``python -m mock_server``).
_COMMAND_MODULES = (
    "lipsync.cli.run",
    "lipsync.cli.faces",
    "lipsync.cli.serve",
    "lipsync.cli.worker",
    "mock_server.cli",
    "lipsync.cli.submit",
    "lipsync.cli.weights",
)

for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:  # pragma: no cover - console-script shim
    app()
