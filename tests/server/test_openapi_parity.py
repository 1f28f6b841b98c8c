"""The server and the mock publish the same API: same operations, parameters, bodies and responses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lipsync.server import create_app
from lipsync.server.memory import MemoryJobStore, MemoryStorage
from lipsync.server.worker import InProcessRunner
from mock_server.app import create_app as create_mock_app
from tests.server.conftest import make_settings
from tests.server.fakes import FakeEngine, FakeFetcher, RecordingWebhooks

#: Operations only the server has (operations, not WaveSpeed API: no client depends on them).
SERVER_ONLY = {("/healthz", "get")}


def _resolve(node: Any, components: dict[str, Any]) -> Any:
    """Inline every ``$ref`` so documents compare by structure, not by component names."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _resolve(components[name], components)
        return {k: _resolve(v, components) for k, v in node.items() if k not in ("description", "title")}
    if isinstance(node, list):
        return [_resolve(v, components) for v in node]
    return node


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    components = doc.get("components", {}).get("schemas", {})
    ops: dict[tuple[str, str], dict[str, Any]] = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict):
                continue
            ops[(path, method)] = {
                "operationId": op.get("operationId"),
                "parameters": sorted(
                    (
                        p["name"],
                        p["in"],
                        p.get("required", False),
                        repr(_resolve(p.get("schema"), components)),
                    )
                    for p in op.get("parameters", [])
                ),
                "requestBody": _resolve(op.get("requestBody"), components),
                "responses": {
                    code: _resolve(resp.get("content"), components)
                    for code, resp in op.get("responses", {}).items()
                },
                "security": op.get("security"),
            }
    return ops


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("openapi")
    server = create_app(
        make_settings(tmp),
        store=MemoryJobStore(),
        storage=MemoryStorage(),
        runner=InProcessRunner(lambda device: FakeEngine()),
        fetcher=FakeFetcher(),
        webhooks=RecordingWebhooks(),
    )
    return server.openapi(), create_mock_app().openapi()


def test_the_server_implements_every_operation_of_the_mock(
    documents: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    server, mock = (_operations(d) for d in documents)
    assert set(mock) <= set(server), f"missing on the server: {sorted(set(mock) - set(server))}"
    assert set(server) - set(mock) == SERVER_ONLY


def test_shared_operations_are_identical(documents: tuple[dict[str, Any], dict[str, Any]]) -> None:
    server, mock = (_operations(d) for d in documents)
    for key in sorted(set(mock) & set(server)):
        for aspect in ("operationId", "parameters", "requestBody", "responses", "security"):
            assert server[key][aspect] == mock[key][aspect], f"{key} differs in {aspect}"


def test_security_scheme_is_the_same(documents: tuple[dict[str, Any], dict[str, Any]]) -> None:
    server, mock = documents
    assert server["components"]["securitySchemes"] == mock["components"]["securitySchemes"]


def test_no_422_anywhere(documents: tuple[dict[str, Any], dict[str, Any]]) -> None:
    for doc in documents:
        for item in doc["paths"].values():
            for op in item.values():
                assert "422" not in op.get("responses", {})
