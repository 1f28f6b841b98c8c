"""The ``--face`` flag of `lipsync run` and `lipsync submit`: the ``face`` run option written on a command line."""

from __future__ import annotations

import json
from typing import Any

import typer

__all__ = ["FACE_HELP", "parse_face"]

FACE_HELP = (
    'Which face to sync: largest (reference), auto (the active speaker), or JSON: \'{"point": [x, y], '
    '"time": t}\' / \'{"boxes": [...]}\' (docs/faces.md; `lipsync faces` prints the point of each face).'
)


def parse_face(text: str | None) -> Any:
    """``largest`` / ``auto`` / a JSON object -> the ``face`` value ``RunOptions`` validates; None stays None."""
    if text is None:
        return None
    word = text.strip()
    if word in ("largest", "auto"):
        return "largest" if word == "largest" else {"auto": True}
    try:
        return json.loads(word)
    except json.JSONDecodeError:
        raise typer.BadParameter(
            f'expected largest, auto or a JSON object such as \'{{"point": [0.3, 0.5], "time": 1}}\'; got {text!r}',
            param_hint="--face",
        ) from None
