"""OpenAPI tweaks: stable operationIds and the real error responses (400 envelope, not FastAPI's 422)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from contracts import ErrorEnvelope

__all__ = ["ERROR_RESPONSES", "install_openapi", "operation_id"]

#: ``responses=`` for authenticated API routes: what each error status returns.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorEnvelope, "description": "Invalid request; `message` names the field"},
    401: {"model": ErrorEnvelope, "description": "Missing or invalid API key"},
}


def operation_id(route: APIRoute) -> str:
    """``generate_unique_id_function``: the route function's name (stable, readable, e.g. ``submit_lipsync``).

    FastAPI's default mixes in the path and method, so every rename of a path reshuffles generated clients.
    """
    return route.name


def _drop_422(schema: dict[str, Any]) -> None:
    for path_item in schema.get("paths", {}).values():
        for op in path_item.values():
            if not isinstance(op, dict):
                continue
            responses = op.get("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = {
                    "description": "Invalid request; `message` names the field",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}
                    },
                }
    components = schema.get("components", {}).get("schemas", {})
    if not any(
        '"#/components/schemas/HTTPValidationError"' in str(v) for v in schema.get("paths", {}).values()
    ):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
    components.setdefault(
        "ErrorEnvelope", ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    )


def install_openapi(app: FastAPI, *, servers: list[dict[str, str]] | None = None) -> None:
    """Replace ``app.openapi`` with one that documents our 400 envelope instead of 422 (we never send 422).

    Call after the routes are added or before; the schema is built lazily on first use and cached.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                servers=servers or app.servers or None,
            )
            _drop_422(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
