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
from lipsync.server.settings import ServerSettings
from lipsync.server.signing import UrlSigner
from lipsync.server.views import Links
from lipsync.web import api_error

__all__ = [
    "PrincipalDep",
    "ServerState",
    "StateDep",
    "base_url_of",
    "require_key",
    "wait_terminal",
]

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


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


StateDep = Annotated[ServerState, Depends(get_state)]


def require_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)], state: StateDep
) -> Principal:
    """401 envelope unless ``Authorization: Bearer <key>`` names a configured key."""
    if credentials is None or not credentials.credentials:
        raise api_error(401, "Missing API key: send 'Authorization: Bearer <key>'", headers=_CHALLENGE)
    principal = state.keyring.authenticate(credentials.credentials)
    if principal is None:
        raise api_error(401, "Invalid API key", headers=_CHALLENGE)
    return principal


PrincipalDep = Annotated[Principal, Depends(require_key)]


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
