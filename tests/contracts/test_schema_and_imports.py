"""The committed JSON Schemas are fresh, and the torch-free packages really are torch-free."""

from __future__ import annotations

import subprocess
import sys

import pytest

from contracts import schema


def test_committed_schemas_are_fresh() -> None:
    assert schema.SCHEMA_PATH.read_text() == schema.render(), "run `python -m contracts.schema`"


@pytest.mark.parametrize(
    "module", ["contracts", "lipsync", "lipsync.client", "mock_server", "lipsync.errors"]
)
def test_import_pulls_in_no_torch_or_fastapi_where_forbidden(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "if " + repr(module) + " == 'contracts':\n"
        "    bad += [m for m in ('fastapi', 'starlette') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imported {out.stdout.strip()}"
