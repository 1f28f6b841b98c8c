"""A valid, non-default value for every ``RunOptions`` field, derived from its schema (so a new field is
covered by every test that uses this without anyone listing it)."""

from __future__ import annotations

from typing import Any

from contracts import RunOptions


def non_default_options() -> dict[str, Any]:
    """``{field: value}`` for every field of RunOptions, each value valid over HTTP and not the default."""
    values: dict[str, Any] = {}
    for name, spec in RunOptions.model_json_schema()["properties"].items():
        default = spec["default"]
        if "examples" in spec:  # structured options (e.g. face) document a non-default example
            values[name] = next(example for example in spec["examples"] if example != default)
        elif "enum" in spec:
            values[name] = next(choice for choice in spec["enum"] if choice != default)
        elif spec["type"] == "boolean":
            values[name] = not default
        elif spec["type"] in ("integer", "number"):
            values[name] = spec["maximum"] if spec["maximum"] != default else spec["minimum"]
        else:
            raise AssertionError(f"no non-default value rule for RunOptions.{name}: {spec}")
    assert values.keys() == RunOptions.model_fields.keys()
    return values
