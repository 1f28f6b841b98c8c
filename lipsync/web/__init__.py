"""FastAPI glue shared by the mock (``mock_server``) and the real server (``lipsync.server``).

Torch-free. Both apps must answer byte-for-byte alike on the edges a client sees, so the pieces that
decide those edges live here, once:

- ``envelope_response`` / ``error_response``: the ``{code, message, data}`` JSON bodies, serialised once
  (routes declare ``response_model=`` for the OpenAPI schema and return these pre-serialised responses,
  which skips FastAPI's validate-then-serialise round trip on the hot poll path).
- ``install_error_handlers``: request validation -> HTTP 400 naming the field (``contracts.describe_validation_error``),
  every ``HTTPException`` (404, 405, 401, 429, ...) and unexpected errors -> the same envelope.
- ``bearer_auth``: a dependency factory checking ``Authorization: Bearer <key>`` in constant time.
- ``RequestGuard``: an ASGI middleware that authenticates from headers and bounds request bodies (by
  ``Content-Length`` and while streaming) before any route reads them; 413 naming the limit.
- ``connection_limits``: uvicorn settings bounding the time to send headers and the number of connections.
- ``operation_id`` / ``install_openapi``: stable operationIds (the route function's name) and a schema
  that documents the 400/401/404 envelopes instead of FastAPI's default 422, plus the bearer scheme.
- ``wavespeed_router(handlers, limits)``: the WaveSpeed routes declared once (paths, models, docs,
  operationIds, documented responses, OpenAPI links, 405 + ``Allow``); each app passes its
  ``WavespeedHandlers``.
- ``bind_socket`` / ``base_url_of`` / ``uvicorn_config`` / ``ServerThread``: serving either app with uvicorn.

Typical wiring::

    app = FastAPI(generate_unique_id_function=operation_id)
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(wavespeed_router(handlers, ApiLimits(max_upload_bytes=limit)))
"""

from __future__ import annotations

from lipsync.web._api import API_DESCRIPTION, ApiLimits, WavespeedHandlers, wavespeed_router
from lipsync.web._auth import AUTH_DESCRIPTION, BearerAuth, bearer_auth, extract_bearer
from lipsync.web._connections import DEFAULT_HEADER_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS, connection_limits
from lipsync.web._errors import install_error_handlers
from lipsync.web._guard import (
    DEFAULT_ANONYMOUS_BYTES,
    DEFAULT_JSON_BYTES,
    BodyLimits,
    BodyTooLarge,
    RequestGuard,
)
from lipsync.web._openapi import ERROR_RESPONSES, install_openapi, operation_id
from lipsync.web._responses import EnvelopeResponse, api_error, envelope_response, error_response
from lipsync.web._serving import ServerThread, base_url_of, bind_socket, uvicorn_config

__all__ = [
    "API_DESCRIPTION",
    "AUTH_DESCRIPTION",
    "DEFAULT_ANONYMOUS_BYTES",
    "DEFAULT_HEADER_TIMEOUT_S",
    "DEFAULT_JSON_BYTES",
    "DEFAULT_MAX_CONNECTIONS",
    "ERROR_RESPONSES",
    "ApiLimits",
    "BearerAuth",
    "BodyLimits",
    "BodyTooLarge",
    "EnvelopeResponse",
    "RequestGuard",
    "ServerThread",
    "WavespeedHandlers",
    "api_error",
    "base_url_of",
    "bearer_auth",
    "bind_socket",
    "connection_limits",
    "envelope_response",
    "error_response",
    "extract_bearer",
    "install_error_handlers",
    "install_openapi",
    "operation_id",
    "uvicorn_config",
    "wavespeed_router",
]
