"""Fixtures for the client tests: a respx router, a fake clock, and clients of both kinds.

Every scenario runs against ``Client`` and ``AsyncClient`` (``client_kind``); the async one is driven from
the test through an anyio blocking portal, so one test body exercises both implementations.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import anyio.from_thread
import httpx
import pytest
import respx

from lipsync.client import AsyncClient, Client, RetryPolicy
from tests.client._recorded import BASE


class FakeClock:
    """Monotonic and wall clocks that only move when the client "sleeps"; records every requested delay."""

    def __init__(self) -> None:
        self.now = 0.0
        self.wall_start = 1_750_000_000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall_start + self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, f"negative sleep {seconds}"
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


class Blocking:
    """Calls an AsyncClient's coroutine methods through a portal, so tests read the same for both kinds."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, client: AsyncClient) -> None:
        self._portal = portal
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *a, **k: self._portal.call(functools.partial(attr, *a, **k))
        return attr

    def close(self) -> None:
        self._portal.call(self._client.aclose)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    # assert_all_mocked: a request to an unmocked URL fails the test instead of leaving the machine.
    with respx.MockRouter(assert_all_called=False, assert_all_mocked=True) as r:
        yield r


#: Retry timing without jitter, so expected delays follow from the documented formula.
NO_JITTER = RetryPolicy(jitter=0.0)

ClientFactory = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def client_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(client_kind: str, router: respx.MockRouter, clock: FakeClock) -> Iterator[ClientFactory]:
    """``make_client(**overrides)`` -> a Client, or an AsyncClient behind a blocking facade."""
    made: list[Any] = []
    with anyio.from_thread.start_blocking_portal() as portal:

        def factory(**overrides: Any) -> Any:
            kwargs: dict[str, Any] = {
                "base_url": BASE,
                "api_key": "test-key",
                "env": {},
                "retry": NO_JITTER,
                "clock": clock,
                "transport": httpx.MockTransport(
                    router.handler if client_kind == "sync" else router.async_handler
                ),
            }
            kwargs.update(overrides)
            if client_kind == "sync":
                client: Any = Client(sleep=clock.sleep, **kwargs)
            else:
                client = Blocking(portal, AsyncClient(sleep=clock.async_sleep, **kwargs))
            made.append(client)
            return client

        yield factory
        for client in made:
            client.close()
