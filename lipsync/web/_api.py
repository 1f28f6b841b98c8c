"""The WaveSpeed API, declared once: paths, methods, request/response models, docs, operationIds, the
documented error responses and the OpenAPI links between operations.

The mock and the real server each build a :class:`WavespeedHandlers` (their authentication and one coroutine per
operation) and include ``wavespeed_router(handlers, limits)``; ``openapi.json`` is generated from it. Nothing
here knows how a job is stored or run.

Routing answers every documented path for every undocumented method with 405 and the documented ``Allow``
methods: static paths are declared before the ``/predictions/{prediction_id}`` template, and each path gets a
method-not-allowed route right after its own, so ``OPTIONS /api/v3/predictions/delete`` answers ``Allow:
POST`` instead of falling through to the template's ``GET``.

No ``from __future__ import annotations`` here: FastAPI resolves the routes' annotations at declaration time,
and those refer to this factory's locals (the app's context dependency), which string annotations cannot see.
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ConfigDict
from starlette.responses import Response
from starlette.routing import Route

from contracts import (
    WEBHOOK_URL_PATTERN,
    BinaryUploadResponse,
    DeleteRequest,
    DeleteResponse,
    ErrorEnvelope,
    HistoryRequest,
    HistoryResponse,
    LipsyncRequest,
    Paths,
    PredictionResponse,
    UploadTicketRequest,
    UploadTicketResponse,
    WebhookSecretResponse,
)
from lipsync.web._auth import AUTH_DESCRIPTION
from lipsync.web._openapi import ERROR_RESPONSES
from lipsync.web._responses import api_error, error_response

__all__ = ["API_DESCRIPTION", "ApiLimits", "WavespeedHandlers", "wavespeed_router"]

#: The schema's ``info.description`` on both apps (each may append a note about itself).
API_DESCRIPTION = (
    "The `bytedance/lipsync/audio-to-video` API of WaveSpeed AI, as served by the lipsync mock and the "
    "self-hosted server. Every response is the `{code, message, data}` envelope; submit and poll answer "
    "HTTP 200. Requests are checked against this schema: a request it calls invalid is answered 400 with "
    "a message naming the field, and one it calls valid is never refused for its shape (see each "
    "parameter's description for the few runtime checks, such as upload limits and webhook hosts)."
)

Ctx = TypeVar("Ctx")


_WEBHOOK_URL = re.compile(WEBHOOK_URL_PATTERN)
_RESULT = Paths.RESULT.format(id="{prediction_id}")
_PREDICTION = Paths.PREDICTION.format(id="{prediction_id}")
_CANCEL = Paths.CANCEL.format(id="{prediction_id}")

#: Methods a client may try on any path; the undocumented ones answer 405.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


_Responses = dict[int | str, dict[str, Any]]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorEnvelope, "description": description}


_NOT_FOUND: _Responses = {404: _error("Unknown (or deleted) prediction")}
_RATE_LIMITED: _Responses = {
    429: _error("Rate limited (too many active predictions, or a mock scenario); see Retry-After")
}
_ENDED: _Responses = {409: _error("The prediction already ended")}
_TOO_LARGE: _Responses = {413: _error("The file is larger than the upload limit")}

_ID = "$response.body#/data/id"
#: Where a submitted prediction can be followed: stateful testers and generated clients read these.
_PREDICTION_LINKS: dict[str, Any] = {
    "GetResult": {"operationId": "get_result", "parameters": {"prediction_id": _ID}},
    "GetPrediction": {"operationId": "get_prediction", "parameters": {"prediction_id": _ID}},
    "CancelPrediction": {"operationId": "cancel_prediction", "parameters": {"prediction_id": _ID}},
    "DeletePrediction": {"operationId": "delete_predictions", "requestBody": {"ids": [_ID]}},
}


def _submit_with(download_url: str) -> dict[str, Any]:
    """A link submitting an uploaded file as both inputs (a video file carries its own audio track)."""
    return {
        "operationId": "submit_lipsync",
        "requestBody": {"video": download_url, "audio": download_url},
        "description": "Use the uploaded file as the job's input (the file is checked when the job starts).",
    }


@dataclass(frozen=True)
class ApiLimits:
    """The limits an app enforces that the schema documents (``maximum``), so schema and server agree."""

    max_upload_bytes: int


@dataclass(frozen=True)
class WavespeedHandlers(Generic[Ctx]):
    """What an app plugs into :func:`wavespeed_router`.

    ``authenticate(request, token)`` gets the bearer token (None when the header is missing or not Bearer) and
    returns the app's per-request context, or raises the 401 ``api_error``; every operation receives that
    context last. Each operation returns a ready response (the ``{code, message, data}`` envelope).
    """

    authenticate: Callable[[Request, str | None], Awaitable[Ctx]]
    submit_lipsync: Callable[[LipsyncRequest, Ctx, str | None], Awaitable[Response]]
    get_result: Callable[[str, Ctx], Awaitable[Response]]
    get_prediction: Callable[[str, Ctx], Awaitable[Response]]
    cancel_prediction: Callable[[str, Ctx], Awaitable[Response]]
    list_predictions: Callable[[HistoryRequest, Ctx], Awaitable[Response]]
    delete_predictions: Callable[[DeleteRequest, Ctx], Awaitable[Response]]
    create_upload: Callable[[UploadTicketRequest, Ctx], Awaitable[Response]]
    upload_binary: Callable[[UploadFile, Ctx], Awaitable[Response]]
    get_webhook_secret: Callable[[Ctx], Awaitable[Response]]
    get_balance: Callable[[Ctx], Awaitable[Response]]


def _ticket_request(limit: int) -> type[UploadTicketRequest]:
    """``UploadTicketRequest`` whose schema states the app's upload limit as ``size``'s ``maximum`` (checked by
    the app's handler, which answers 413 above it, so the model itself still accepts any size)."""

    def add_maximum(schema: dict[str, Any]) -> None:
        schema["properties"]["size"]["maximum"] = limit

    namespace = {
        "model_config": ConfigDict(json_schema_extra=add_maximum),
        "__module__": UploadTicketRequest.__module__,
        "__qualname__": UploadTicketRequest.__qualname__,
        "__doc__": UploadTicketRequest.__doc__,
    }
    return type(UploadTicketRequest.__name__, (UploadTicketRequest,), namespace)


def _not_allowed(allowed: list[str]) -> Callable[[Request], Awaitable[Response]]:
    allow = ", ".join(allowed)

    async def method_not_allowed(request: Request) -> Response:
        return error_response(405, "Method Not Allowed", headers={"Allow": allow})

    return method_not_allowed


def wavespeed_router(handlers: WavespeedHandlers[Ctx], limits: ApiLimits) -> APIRouter:
    """The WaveSpeed routes over *handlers*; include it in an app built with ``operation_id`` and
    ``install_openapi`` (lipsync.web) so operationIds are the names below and errors are envelopes."""
    bearer = HTTPBearer(auto_error=False, scheme_name="HTTPBearer", description=AUTH_DESCRIPTION)

    async def context(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Any:
        return await handlers.authenticate(request, credentials.credentials if credentials else None)

    CtxDep = Annotated[Any, Depends(context)]
    router = APIRouter(responses=ERROR_RESPONSES)
    methods: dict[str, list[str]] = {}

    def route(path: str, method: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        methods.setdefault(path, []).append(method)
        return router.api_route(path, methods=[method], **kwargs)

    # Static paths first: /predictions/delete must not be taken for a prediction id.
    @route(
        Paths.SUBMIT,
        "POST",
        response_model=PredictionResponse,
        responses={**_RATE_LIMITED, 200: {"description": "The prediction", "links": _PREDICTION_LINKS}},
        summary="Submit a lip-sync job",
    )
    async def submit_lipsync(
        body: LipsyncRequest,
        ctx: CtxDep,
        webhook: Annotated[
            str | None,
            Query(
                description=(
                    "http(s) URL called (signed, v3) when the job completes or fails. The server also refuses "
                    "(400) a host that does not resolve or resolves to a private address, and a webhook "
                    "together with `enable_base64_output: true`."
                ),
                json_schema_extra={"pattern": WEBHOOK_URL_PATTERN},
            ),
        ] = None,
    ) -> Response:
        """Answers at once with `status: created` (or, with `enable_sync_mode`, waits for the result). The
        inputs are fetched and checked in the background: unusable media end the job `failed` with code
        1401/1402 and a message saying what to fix."""
        if webhook is not None and _WEBHOOK_URL.search(webhook) is None:
            raise api_error(
                400, f"Invalid parameter 'webhook': must be an http(s) URL (got {webhook[:80]!r})"
            )
        return await handlers.submit_lipsync(body, ctx, webhook)

    @route(Paths.HISTORY, "POST", response_model=HistoryResponse, summary="List predictions, newest first")
    async def list_predictions(query: HistoryRequest, ctx: CtxDep) -> Response:
        """The API key's own predictions, filtered by status/model/creation time, newest first."""
        return await handlers.list_predictions(query, ctx)

    @route(Paths.DELETE, "POST", response_model=DeleteResponse, summary="Delete predictions")
    async def delete_predictions(body: DeleteRequest, ctx: CtxDep) -> Response:
        """Deletes the key's predictions with these ids and their files; unknown ids are skipped."""
        return await handlers.delete_predictions(body, ctx)

    TicketRequest = _ticket_request(limits.max_upload_bytes)
    upload_links = {
        "SubmitUpload": _submit_with("$response.body#/data/download_url"),
    }

    @route(
        Paths.UPLOAD_TICKET,
        "POST",
        response_model=UploadTicketResponse,
        responses={**_TOO_LARGE, 200: {"description": "The upload ticket", "links": upload_links}},
        summary="Get an upload ticket",
        description=(
            "PUT the file to `data.upload.url` (with `data.upload.headers`), then use `data.download_url` as "
            f"an input. `size` is at most the server's upload limit (here {limits.max_upload_bytes} bytes); "
            "a larger one is answered 413."
        ),
    )
    async def create_upload(body: TicketRequest, ctx: CtxDep) -> Response:  # type: ignore[valid-type]
        return await handlers.create_upload(body, ctx)

    @route(
        Paths.UPLOAD_BINARY,
        "POST",
        response_model=BinaryUploadResponse,
        responses={**_TOO_LARGE, 200: {"description": "The stored file", "links": upload_links}},
        summary="Upload a file (legacy multipart, field 'file')",
    )
    async def upload_binary(
        file: Annotated[
            UploadFile,
            File(
                description="The file: a multipart part with a filename",
                json_schema_extra={"format": "binary"},
            ),
        ],
        ctx: CtxDep,
    ) -> Response:
        """One multipart part `file` that is a file (it has a filename); a plain form value is a 400. Files
        above the server's upload limit are answered 413."""
        return await handlers.upload_binary(file, ctx)

    @route(
        Paths.WEBHOOK_SECRET,
        "GET",
        response_model=WebhookSecretResponse,
        summary="The webhook signing secret",
    )
    async def get_webhook_secret(ctx: CtxDep) -> Response:
        """The `whsec_` secret that signs this key's webhook callbacks (v3 signatures)."""
        return await handlers.get_webhook_secret(ctx)

    @route(Paths.BALANCE, "GET", summary="Account balance (USD)")
    async def get_balance(ctx: CtxDep) -> Response:
        """A constant on self-hosted deployments (nothing is billed), for tools that check it."""
        return await handlers.get_balance(ctx)

    # Then the prediction-id templates, most specific first: (path, method, operation, extra responses, summary).
    by_id: list[tuple[str, str, str, _Responses, str]] = [
        (_RESULT, "GET", "get_result", {**_NOT_FOUND, **_RATE_LIMITED}, "Get a result"),
        (
            _CANCEL,
            "POST",
            "cancel_prediction",
            {**_NOT_FOUND, **_ENDED},
            "Cancel a running prediction (extension: reported as failed, code 1405)",
        ),
        (
            _PREDICTION,
            "GET",
            "get_prediction",
            {**_NOT_FOUND, **_RATE_LIMITED},
            "Get a prediction (same as /result)",
        ),
    ]

    def by_id_endpoint(handler: Callable[[str, Any], Awaitable[Response]]) -> Callable[..., Any]:
        async def endpoint(prediction_id: str, ctx: CtxDep) -> Response:
            return await handler(prediction_id, ctx)

        return endpoint

    for path, method, name, responses, summary in by_id:
        endpoint = by_id_endpoint(getattr(handlers, name))
        route(
            path, method, name=name, response_model=PredictionResponse, responses=responses, summary=summary
        )(endpoint)

    _add_method_not_allowed(router, methods)
    return router


def _add_method_not_allowed(router: APIRouter, methods: dict[str, list[str]]) -> None:
    """After each path's own routes (kept in declaration order), one route answering its other methods."""
    ordered: list[Any] = []
    for path, declared in methods.items():
        ordered.extend(r for r in router.routes if getattr(r, "path", None) == path)
        others = [m for m in _METHODS if m not in declared]
        ordered.append(Route(path, _not_allowed(declared), methods=others, include_in_schema=False))
    router.routes[:] = ordered
