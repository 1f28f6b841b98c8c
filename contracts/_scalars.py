"""Scalar field types that accept exactly what their JSON Schema promises.

pydantic's lax mode would take ``true`` or ``"7"`` for an integer and ``0``/``"yes"`` for a boolean, which the
published schema (``type: integer`` / ``boolean``) calls invalid, so a client validating against the schema and
the server would disagree. Strict mode goes too far the other way: it refuses ``7.0``, which JSON Schema counts
as an integer. These types sit in between: numbers must be JSON numbers (an integer may be written ``7.0``),
booleans must be JSON booleans.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, StrictBool

__all__ = ["JsonBool", "JsonFloat", "JsonInt", "json_number"]


def json_number(value: Any) -> Any:
    """The check of JsonInt/JsonFloat: a JSON number, never a boolean or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


#: An integer: a JSON number without a fractional part (``7`` or ``7.0``); never a boolean or a string.
JsonInt = Annotated[int, BeforeValidator(json_number)]
#: A number: a JSON number; never a boolean or a string.
JsonFloat = Annotated[float, BeforeValidator(json_number)]
#: ``true`` or ``false`` only.
JsonBool = StrictBool
