"""The app factory: WaveSpeed's routes over injected backends.

``create_app(settings, store=..., storage=..., runner=..., fetcher=..., webhooks=...)`` wires any
implementations of the ``interfaces`` protocols (tests: in-memory ones and a fake engine; Modal: Dict,
Volume and spawn). ``create_default_app(settings)`` wires the embedded defaults: SQLite in WAL mode, a
local directory (or S3 when ``LIPSYNC_S3_BUCKET`` is set), worker processes and the SSRF-guarded fetcher.

The lifespan starts the runner, takes over input resolutions left unfinished (see ``resolver.py``), and
runs a maintenance task that re-queues or fails jobs whose lease expired, takes over resolutions whose
resolver stopped, and purges jobs (and their files) older than the retention period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI

from lipsync import __version__
from lipsync.server.auth import Keyring
from lipsync.server.backends import build_fetcher, build_policy, build_storage, build_webhooks
from lipsync.server.execution import Notifier
from lipsync.server.inputs import InputDeps
from lipsync.server.interfaces import (
    Clock,
    Fetcher,
    JobStore,
    Runner,
    RunnerContext,
    Storage,
    SystemClock,
    WebhookSender,
)
from lipsync.server.resolver import InputResolver
from lipsync.server.routes import account, files, health, history, predictions, uploads
from lipsync.server.settings import ServerSettings, load_or_create_secret
from lipsync.server.signing import UrlSigner
from lipsync.server.state import ServerState
from lipsync.server.views import Links
from lipsync.web import ERROR_RESPONSES, install_error_handlers, install_openapi, operation_id
from lipsync.web.playground import mount_playground

__all__ = ["create_app", "create_default_app"]

log = logging.getLogger(__name__)

_PURGE_EVERY_S = 3600.0

DESCRIPTION = (
    "The `bytedance/lipsync/audio-to-video` API of WaveSpeed AI, as served by the lipsync mock and the "
    "self-hosted server. Every response is the `{code, message, data}` envelope; submit and poll answer "
    "HTTP 200."
)


async def _maintenance(state: ServerState, context: RunnerContext) -> None:
    from lipsync.server.worker import sweep_expired

    interval = max(0.2, min(state.settings.lease_s / 4, 5.0))
    last_purge = 0.0
    while True:
        await asyncio.sleep(interval)
        try:
            for job in await sweep_expired(context):
                await state.runner.submit(job)  # re-queued: wake a worker
            await state.resolver.recover()  # resolutions whose resolver stopped
            now = state.clock.now()
            if now - last_purge >= _PURGE_EVERY_S:
                last_purge = now
                for job in await state.store.purge(before=now - state.settings.retention_s):
                    await state.storage.delete_prefix(f"inputs/{job.id}")
                    await state.storage.delete_prefix(f"outputs/{job.id}")
        except Exception:  # keep maintaining; one failed sweep must not end the loop
            log.exception("maintenance pass failed")


def create_app(
    settings: ServerSettings,
    *,
    store: JobStore,
    storage: Storage,
    runner: Runner,
    fetcher: Fetcher,
    webhooks: WebhookSender,
    clock: Clock | None = None,
) -> FastAPI:
    """The API over the given backends. Refuses to start without at least one API key."""
    keyring = Keyring(settings.api_keys)
    if not len(keyring):
        raise ValueError("no API keys configured: set LIPSYNC_API_KEYS (lipsync serve generates one)")
    clock = clock or SystemClock()
    signer = UrlSigner(load_or_create_secret(settings))
    links = Links(signer, storage, clock, url_ttl_s=settings.url_ttl_s)
    notifier = Notifier(webhooks, links)
    resolver = InputResolver(
        InputDeps(settings=settings, storage=storage, fetcher=fetcher, signer=signer),
        store=store,
        runner=runner,
        notifier=notifier,
        clock=clock,
    )
    state = ServerState(
        settings=settings,
        store=store,
        storage=storage,
        runner=runner,
        fetcher=fetcher,
        webhooks=webhooks,
        clock=clock,
        keyring=keyring,
        signer=signer,
        links=links,
        notifier=notifier,
        policy=build_policy(settings),
        resolver=resolver,
    )
    context = RunnerContext(store=store, storage=storage, notifier=notifier, clock=clock, settings=settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runner.start(context)  # ProcessRunner: releases what a stopped server held (data-dir lock)
        await state.resolver.recover()
        maintenance = asyncio.create_task(_maintenance(state, context), name="maintenance")
        try:
            yield
        finally:
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
            await state.resolver.stop()  # unfinished resolutions are taken over at the next start
            await runner.stop()
            await notifier.drain(timeout=settings.webhook_timeout_s)
            await store.close()

    app = FastAPI(
        title="WaveSpeed-compatible lip-sync API",
        version=__version__,
        description=DESCRIPTION,
        generate_unique_id_function=operation_id,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    install_openapi(app)
    # Every route of ``api`` authenticates through its ``ApiDep`` parameter (one dependency per request).
    api = APIRouter(responses=ERROR_RESPONSES)
    for module in (predictions, history, uploads, account):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(uploads.storage_router)
    app.include_router(files.router)
    app.include_router(health.router)
    mount_playground(app)
    app.state.server = state
    return app


def create_default_app(settings: ServerSettings | None = None) -> FastAPI:
    """The embedded defaults: SQLite (WAL) + local directory (or S3) + worker processes + guarded fetcher."""
    from lipsync.server.sqlite_store import SQLiteJobStore
    from lipsync.server.worker import ProcessRunner

    settings = settings or ServerSettings()
    return create_app(
        settings,
        store=SQLiteJobStore(settings.db_path),
        storage=build_storage(settings),
        runner=ProcessRunner(settings),
        fetcher=build_fetcher(settings),
        webhooks=build_webhooks(settings),
    )
