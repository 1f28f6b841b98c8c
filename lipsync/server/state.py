"""The app's wired backends (``app.state.server``) and the FastAPI dependencies that hand them to routes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from fastapi import Request

from lipsync.server.auth import Keyring, Principal
from lipsync.server.execution import Notifier
from lipsync.server.interfaces import Clock, Fetcher, JobRecord, JobStore, Runner, Storage, WebhookSender
from lipsync.server.resolver import InputResolver
from lipsync.server.settings import ServerSettings
from lipsync.server.signing import UrlSigner
from lipsync.server.views import Links
from lipsync.web import api_error
from lipsync.web.netguard import AddressPolicy

__all__ = ["ApiContext", "ServerState", "authenticate", "base_url_of", "server_of", "wait_terminal"]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass
class ServerState:
    settings: ServerSettings
    store: JobStore
    storage: Storage
    runner: Runner
    fetcher: Fetcher
    webhooks: WebhookSender
    clock: Clock
    keyring: Keyring
    signer: UrlSigner
    links: Links
    notifier: Notifier
    policy: AddressPolicy
    resolver: InputResolver


def server_of(request: Request) -> ServerState:
    """The wired backends of the app serving *request*."""
    state: ServerState = request.app.state.server
    return state


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What an authenticated API route works with (one dependency: each level of FastAPI dependency
    resolution costs more per request than a result poll's own work)."""

    state: ServerState
    principal: Principal
    request: Request

    @property
    def owner(self) -> str:
        return self.principal.owner

    @property
    def base_url(self) -> str:
        return base_url_of(self.request, self.state.settings)


async def authenticate(request: Request, token: str | None) -> ApiContext:
    """The request's context, or the 401 envelope unless *token* (the ``Authorization: Bearer`` value) is a
    configured key. The route factory (``lipsync.web.wavespeed_router``) reads the header."""
    state = server_of(request)
    if not token:
        raise api_error(401, "Missing API key: send 'Authorization: Bearer <key>'", headers=_CHALLENGE)
    principal = state.keyring.authenticate(token)
    if principal is None:
        raise api_error(401, "Invalid API key", headers=_CHALLENGE)
    return ApiContext(state, principal, request)


def base_url_of(request: Request, settings: ServerSettings) -> str:
    """The base URL links are built on: the configured public URL, else the one the client used."""
    return (settings.public_base_url or str(request.base_url)).rstrip("/")


async def wait_terminal(state: ServerState, job_id: str, timeout_s: float) -> JobRecord | None:
    """Poll the store until the job ends or *timeout_s* passes (wall time); returns its last state."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = await state.store.get(job_id)
        remaining = deadline - time.monotonic()
        if job is None or job.is_terminal or remaining <= 0:
            return job
        await asyncio.sleep(min(state.settings.poll_interval_s, remaining))
