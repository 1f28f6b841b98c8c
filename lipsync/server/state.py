"""The app's wired backends (``app.state.server``) and the FastAPI dependencies that hand them to routes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lipsync.server.auth import Keyring, Principal
from lipsync.server.execution import Notifier
from lipsync.server.interfaces import Clock, Fetcher, JobRecord, JobStore, Runner, Storage, WebhookSender
from lipsync.server.netguard import AddressPolicy
from lipsync.server.resolver import InputResolver
from lipsync.server.settings import ServerSettings
from lipsync.server.signing import UrlSigner
from lipsync.server.views import Links
from lipsync.web import api_error

__all__ = ["ApiContext", "ApiDep", "ServerState", "api_context", "base_url_of", "server_of", "wait_terminal"]

# The same scheme object shape as the mock's, so both OpenAPI documents declare the same security scheme.
_BEARER = HTTPBearer(auto_error=False, description="WaveSpeed-style API key: `Authorization: Bearer <key>`")
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


async def api_context(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
) -> ApiContext:
    """401 envelope unless ``Authorization: Bearer <key>`` names a configured key.

    ``async def`` on purpose: FastAPI runs plain ``def`` dependencies in a thread pool.
    """
    state = server_of(request)
    if credentials is None or not credentials.credentials:
        raise api_error(401, "Missing API key: send 'Authorization: Bearer <key>'", headers=_CHALLENGE)
    principal = state.keyring.authenticate(credentials.credentials)
    if principal is None:
        raise api_error(401, "Invalid API key", headers=_CHALLENGE)
    return ApiContext(state, principal, request)


ApiDep = Annotated[ApiContext, Depends(api_context)]


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
