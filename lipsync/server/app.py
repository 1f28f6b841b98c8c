"""The app factory: WaveSpeed's routes over injected backends.

``create_app(settings, store=..., storage=..., runner=..., fetcher=..., webhooks=...)`` wires any
implementations of the ``interfaces`` protocols (tests: in-memory ones and a fake engine; Modal: Dict,
Volume and spawn). ``create_default_app(settings)`` wires the embedded defaults: SQLite in WAL mode, a
local directory (or S3 when ``LIPSYNC_S3_BUCKET`` is set), worker processes and the SSRF-guarded fetcher.

The lifespan starts the runner, takes over input resolutions left unfinished (see ``resolver.py``), and
runs a maintenance task that re-queues or fails jobs whose lease expired, takes over resolutions whose
resolver stopped, and purges jobs (and their files) older than the retention period, uploads whose link
expired and input folders no job owns (``housekeeping.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from lipsync import __version__
from lipsync.server import routes
from lipsync.server.auth import Keyring, guard_options
from lipsync.server.backends import build_fetcher, build_policy, build_storage, build_store, build_webhooks
from lipsync.server.execution import Notifier
from lipsync.server.housekeeping import ORPHAN_GRACE_S, purge_expired_uploads, sweep_orphan_inputs
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
from lipsync.server.routes import files, health, uploads
from lipsync.server.settings import ServerSettings, load_or_create_secret
from lipsync.server.signing import UrlSigner
from lipsync.server.state import ServerState
from lipsync.server.views import Links
from lipsync.web import (
    API_DESCRIPTION,
    ApiLimits,
    RequestGuard,
    install_error_handlers,
    install_openapi,
    operation_id,
    wavespeed_router,
)
from lipsync.web.netguard import AddressPolicy
from lipsync.web.playground import mount_playground

__all__ = ["create_app", "create_default_app"]

log = logging.getLogger(__name__)

_PURGE_EVERY_S = 3600.0


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
                settings = state.settings
                for job in await state.store.purge(before=now - settings.retention_s):
                    await state.storage.delete_prefix(f"inputs/{job.id}")
                    await state.storage.delete_prefix(f"outputs/{job.id}")
                upload_life = settings.url_ttl_s + settings.job_timeout_s
                await purge_expired_uploads(state.storage, before=now - upload_life)
                await sweep_orphan_inputs(state.storage, state.store, before=now - ORPHAN_GRACE_S)
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
    policy: AddressPolicy | None = None,
) -> FastAPI:
    """The API over the given backends. Refuses to start without at least one API key.

    *policy* decides which webhook hosts are acceptable (default: from ``settings.fetch_allow``, resolving
    names with the system resolver)."""
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
        policy=policy or build_policy(settings),
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
        description=API_DESCRIPTION,
        generate_unique_id_function=operation_id,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(wavespeed_router(routes.handlers(), ApiLimits(settings.max_input_bytes)))
    app.include_router(uploads.storage_router)
    app.include_router(files.router)
    app.include_router(health.router)
    app.add_middleware(RequestGuard, **guard_options(settings, keyring))  # bodies bounded before auth
    mount_playground(app)  # the playground at GET / (it talks to the API above)
    app.state.server = state
    return app


def create_default_app(settings: ServerSettings | None = None) -> FastAPI:
    """The embedded defaults: the store of ``LIPSYNC_STORE_URL`` (SQLite in WAL mode unless set) + local
    directory (or S3) + worker processes + guarded fetcher."""
    from lipsync.server.worker import ProcessRunner

    settings = settings or ServerSettings()
    return create_app(
        settings,
        store=build_store(settings),
        storage=build_storage(settings),
        runner=ProcessRunner(settings),
        fetcher=build_fetcher(settings),
        webhooks=build_webhooks(settings),
    )
