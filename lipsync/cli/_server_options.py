"""Flags that `lipsync serve` and `lipsync worker` share, and how both turn flags into ``ServerSettings``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lipsync.cli.choices import DETECTOR_HELP, DETECTOR_METAVAR

if TYPE_CHECKING:
    from lipsync.server.settings import ServerSettings

__all__ = ["DeviceOpt", "FaceDetectorOpt", "StoreUrlOpt", "WeightsDirOpt", "settings_from_flags"]

WeightsDirOpt = Annotated[
    Path | None, typer.Option(help="Model weights ($LIPSYNC_WEIGHTS_DIR, default the engine's default).")
]
FaceDetectorOpt = Annotated[
    str | None, typer.Option(metavar=DETECTOR_METAVAR, help=f"{DETECTOR_HELP} ($LIPSYNC_FACE_DETECTOR)")
]
DeviceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--device", help="Worker device, one process each (repeatable) ($LIPSYNC_DEVICES, default auto)."
    ),
]
StoreUrlOpt = Annotated[
    str | None,
    typer.Option(help="Job store: sqlite:///PATH, or postgresql://... to share it ($LIPSYNC_STORE_URL)."),
]


def settings_from_flags(**flags: Any) -> ServerSettings:
    """``LIPSYNC_*`` settings with the flags that were given (not None) on top; bad values: a usage error."""
    from pydantic import ValidationError

    from lipsync.server.settings import ServerSettings

    try:
        return ServerSettings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
