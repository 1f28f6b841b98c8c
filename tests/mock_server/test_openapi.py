"""The committed openapi.json is what the mock app generates (regenerate: python -m mock_server.openapi)."""

from __future__ import annotations

import json
from pathlib import Path

from mock_server.openapi import DEFAULT_PATH, main, render


def test_committed_openapi_is_up_to_date() -> None:
    assert DEFAULT_PATH.read_text() == render(), "openapi.json is stale: run `python -m mock_server.openapi`"


def test_check_mode_reports_staleness(tmp_path: Path) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    assert main(["--check", str(stale)]) == 1
    assert main([str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0


def test_schema_has_stable_operation_ids_and_no_mock_internals() -> None:
    schema = json.loads(render())
    ids = sorted(op["operationId"] for item in schema["paths"].values() for op in item.values())
    assert ids == sorted(
        [
            "submit_lipsync",
            "get_result",
            "get_prediction",
            "cancel_prediction",
            "list_predictions",
            "delete_predictions",
            "create_upload",
            "upload_binary",
            "get_webhook_secret",
            "get_balance",
        ]
    )
    assert not any(p.startswith(("/__mock", "/storage")) for p in schema["paths"])
    assert "X-Mock-Scenario" not in json.dumps(schema)
