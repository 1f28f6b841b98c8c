"""Per-run options of :meth:`lipsync.LipSync.run`: ``contracts.RunOptions``, validated with its local ranges
(e.g. 1 step for a smoke test) before any work starts, errors as :class:`~lipsync.errors.InputError`."""

from __future__ import annotations

from typing import Any, get_args

import pydantic

from contracts import OnNoFace, RunOptions, describe_validation_error
from lipsync.errors import InputError

__all__ = ["ON_NO_FACE_MODES", "OnNoFace", "RunOptions", "resolve_options"]

ON_NO_FACE_MODES: tuple[OnNoFace, ...] = get_args(OnNoFace)


def resolve_options(options: RunOptions | None = None, /, **overrides: Any) -> RunOptions:
    """*options* (default: all defaults) with *overrides* applied, validated with the local ranges.

    Fields set in *options* or given as overrides stay in ``model_fields_set`` (``LipSync`` checks an
    explicit ``model_version`` against the checkpoint it holds). Raises InputError naming the field.
    """
    given = options.run_options().model_dump(exclude_unset=True) if options is not None else {}
    try:
        return RunOptions.local(given, **overrides)
    except pydantic.ValidationError as exc:
        message, field = describe_validation_error(exc)
        raise InputError(message, field=field) from None
