"""The mock's FastAPI app: WaveSpeed's routes and shapes over one :class:`WavespeedMock`.

``create_app()`` builds it; ``app.state.mock`` is the instance (the Python API tests use). Three groups of
routes:

- the API (in the OpenAPI schema, Bearer auth): submit, both result routes, cancel (extension), history,
  delete, the upload ticket and the legacy binary upload, the webhook secret, the balance;
- storage (no auth, like presigned/CDN URLs): the ticket's PUT target, uploaded media, job outputs;
- ``/__mock/*`` admin (open unless ``MockConfig.admin_token``; not in the schema): clock, journal, scenarios, webhooks, reset
  (``mock_server.admin``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request, UploadFile
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts import (
    BinaryUploadResult,
    DeleteRequest,
    DeleteResult,
    HistoryRequest,
    LipsyncRequest,
    UploadInstruction,
    UploadTicket,
    UploadTicketRequest,
    WebhookSecret,
    media_type_of,
)
from lipsync.web import (
    API_DESCRIPTION,
    ApiLimits,
    BearerAuth,
    RequestGuard,
    WavespeedHandlers,
    bearer_auth,
    envelope_response,
    install_error_handlers,
    install_openapi,
    operation_id,
    wavespeed_router,
)
from lipsync.web.playground import mount_playground
from mock_server.config import MockConfig
from mock_server.fastpath import FastPath
from mock_server.guard import guard_options
from mock_server.handlers import SCENARIO_HEADER, handle_poll, handle_submit, mock_error, note
from mock_server.jobs import output_path
from mock_server.journal import MAX_BODY_BYTES
from mock_server.mock import MockError, WavespeedMock
from mock_server.output import sample_mp4
from mock_server.uploads import media_path, put_path

__all__ = ["SCENARIO_HEADER", "create_app"]

_TICK_INTERVAL_S = 0.25


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _auth(mock: WavespeedMock) -> BearerAuth:
    # Read per request so mock.configure(api_keys=...) takes effect at once; None accepts any non-empty key.
    return bearer_auth(lambda: mock.api_keys or (), allow_any=lambda: mock.api_keys is None)


def _auth_note(mock: WavespeedMock) -> str:
    """How this mock authenticates, for its schema and /docs (the Bearer scheme itself is the server's)."""
    if mock.api_keys is None:
        return (
            "**Authentication (this mock):** started without API keys, it accepts *any* non-empty Bearer key "
            "(a missing one is still 401). Start it with `--api-key KEY` (or `MockConfig(api_keys=(...))`) to "
            "require yours, as the server does."
        )
    return "**Authentication (this mock):** only its configured Bearer keys are accepted, as on the server."


def _handlers(mock: WavespeedMock) -> WavespeedHandlers[Request]:
    """The mock's side of the WaveSpeed routes (declared once in ``lipsync.web``); the context is the request."""
    auth = _auth(mock)

    async def authenticate(request: Request, token: str | None) -> Request:
        auth.check(token)
        return request

    async def submit_lipsync(body: LipsyncRequest, request: Request, webhook: str | None) -> Response:
        return handle_submit(mock, request, body, webhook)

    async def get_result(prediction_id: str, request: Request) -> Response:
        return handle_poll(mock, request, prediction_id)

    async def cancel_prediction(prediction_id: str, request: Request) -> Response:
        note(request, kind="cancel", prediction_id=prediction_id)
        try:
            return envelope_response(mock.cancel(prediction_id))
        except MockError as exc:
            return mock_error(exc)

    async def list_predictions(query: HistoryRequest, request: Request) -> Response:
        note(request, kind="history")
        return envelope_response(mock.history(query))

    async def delete_predictions(body: DeleteRequest, request: Request) -> Response:
        note(request, kind="delete")
        return envelope_response(DeleteResult(deleted_count=mock.delete(body.ids)))

    async def create_upload(body: UploadTicketRequest, request: Request) -> Response:
        note(request, kind="upload_ticket")
        try:
            upload = mock.new_upload(body.filename, body.size, body.content_type)
        except MockError as exc:
            return mock_error(exc)
        base = mock.config.public_url or _base_url(request)
        headers = {"Content-Type": body.content_type} if body.content_type else {}
        ticket = UploadTicket(
            type=media_type_of(body.content_type),
            filename=body.filename,
            size=body.size,
            download_url=base + media_path(upload.id, upload.filename),
            upload=UploadInstruction(url=base + put_path(upload.id), headers=headers),
        )
        return envelope_response(ticket)

    async def upload_binary(file: UploadFile, request: Request) -> Response:
        note(request, kind="upload_binary")
        data = await file.read()
        filename = file.filename or "upload"
        try:
            upload = mock.new_upload(filename, len(data), file.content_type, data)
        except MockError as exc:
            return mock_error(exc)
        base = mock.config.public_url or _base_url(request)
        result = BinaryUploadResult(
            type=media_type_of(file.content_type),
            download_url=base + media_path(upload.id, filename),
            filename=filename,
            size=len(data),
        )
        return envelope_response(result)

    async def get_webhook_secret(request: Request) -> Response:
        return envelope_response(WebhookSecret(secret=mock.config.webhook_secret))

    async def get_balance(request: Request) -> Response:
        return envelope_response({"balance": mock.config.balance})

    return WavespeedHandlers(
        authenticate=authenticate,
        submit_lipsync=submit_lipsync,
        get_result=get_result,
        get_prediction=get_result,
        cancel_prediction=cancel_prediction,
        list_predictions=list_predictions,
        delete_predictions=delete_predictions,
        create_upload=create_upload,
        upload_binary=upload_binary,
        get_webhook_secret=get_webhook_secret,
        get_balance=get_balance,
    )


def _storage_router(mock: WavespeedMock) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.put(put_path("{upload_id}"))
    async def put_upload(upload_id: str, request: Request) -> Response:
        note(request, kind="upload_put")
        try:
            mock.put_upload(upload_id, await request.body())
        except MockError as exc:
            return mock_error(exc)
        return Response(status_code=200)

    @router.api_route("/storage/media/{upload_id}/{filename}", methods=["GET", "HEAD"])
    async def get_media(upload_id: str, filename: str, request: Request) -> Response:
        note(request, kind="download")
        try:
            upload = mock.uploaded(upload_id)
        except MockError as exc:
            return mock_error(exc)
        return Response(upload.data, media_type=upload.content_type or "application/octet-stream")

    @router.api_route(output_path("{prediction_id}"), methods=["GET", "HEAD"])
    async def get_output(prediction_id: str, request: Request) -> Response:
        note(request, kind="output", prediction_id=prediction_id)
        try:
            mock.output_for(prediction_id)
        except MockError as exc:
            return mock_error(exc)
        return Response(sample_mp4(), media_type="video/mp4")

    return router


class JournalMiddleware:
    """Records every non-admin request in ``mock.journal`` (pure ASGI: cheap, and sees the raw body)."""

    def __init__(self, app: ASGIApp, mock: WavespeedMock) -> None:
        self.app = app
        self.mock = mock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(("/__mock", "/openapi.json", "/docs", "/redoc")):
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        journal_note: dict[str, Any] = {}
        scope["mock.note"] = journal_note
        chunks: list[bytes] = []
        size = 0
        status = 500

        async def receive_and_keep() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                size += len(body)
                if size <= MAX_BODY_BYTES:
                    chunks.append(body)
            return message

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive_and_keep, send_and_note)
        finally:
            self.mock.journal.record(
                time=self.mock.clock.now(),
                wall_time=time.time(),
                method=scope["method"],
                path=path,
                status=status,
                duration_ms=round((time.perf_counter() - t0) * 1000, 3),
                prediction_id=journal_note.get("prediction_id"),
                scenario=journal_note.get("scenario"),
                body_size=size,
                raw_headers=tuple(scope["headers"]),
                raw_query=scope.get("query_string", b""),
                raw_body=b"".join(chunks) if size <= MAX_BODY_BYTES else None,
                kind=journal_note.get("kind", "other"),
            )


def create_app(
    mock: WavespeedMock | MockConfig | None = None,
    **config: Any,
) -> FastAPI:
    """The mock app over *mock* (an instance, a config, or keyword settings of :class:`MockConfig`)."""
    from mock_server.admin import admin_router

    if isinstance(mock, WavespeedMock):
        if config:
            mock.configure(**config)
        instance = mock
    else:
        instance = WavespeedMock(mock if mock is not None else MockConfig(**config))
        if mock is not None and config:
            instance.configure(**config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        instance.webhooks.bind(loop)

        async def ticker() -> None:
            # Ends jobs that have a webhook and nobody polling them once their (wall or virtual) time is up.
            while True:
                await asyncio.sleep(_TICK_INTERVAL_S)
                instance.tick()

        task = loop.create_task(ticker())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            instance.webhooks.bind(None)

    app = FastAPI(
        title="WaveSpeed-compatible lip-sync API (mock)",
        version="3.0.0",
        description=API_DESCRIPTION + "\n\n" + _auth_note(instance),
        generate_unique_id_function=operation_id,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    install_openapi(app)

    @app.exception_handler(MockError)
    async def _onmock_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MockError)
        return mock_error(exc)

    limits = ApiLimits(max_upload_bytes=instance.config.max_upload_bytes)
    app.include_router(wavespeed_router(_handlers(instance), limits))
    app.include_router(_storage_router(instance))
    app.include_router(admin_router(instance))
    mount_playground(app)  # the playground at GET / (it talks to the API above)
    # Starlette nests the last-added middleware outermost: the journal sees every request, fast or not.
    app.add_middleware(FastPath, mock=instance, auth=_auth(instance))
    app.add_middleware(RequestGuard, **guard_options(instance, _auth(instance)))  # bodies bounded before auth
    app.add_middleware(JournalMiddleware, mock=instance)
    app.state.mock = instance
    return app
