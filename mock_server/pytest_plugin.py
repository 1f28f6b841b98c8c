"""pytest plugin (entry point ``wavespeed_mock``): the WaveSpeed mock for client projects' tests.

Fixtures
--------
``wavespeed_mock``
    Routes httpx traffic (sync and async clients) for a base URL — default ``https://api.wavespeed.ai`` —
    into an in-process mock through respx. No socket, no network. Yields the :class:`WavespeedMock`
    (``.advance()``, ``.journal``, ``.set_scenario()``, ``.queue_scenario()``, ``.deliveries``...), with
    ``.base_url`` set and ``.respx`` the respx router (add routes of your own to it).

``wavespeed_server``
    The mock on a free loopback port with uvicorn, for clients that do not use httpx (the official
    ``wavespeed`` SDK uses requests). One server per test session, reset before every test. Yields the
    :class:`WavespeedMock` with ``.base_url`` like ``http://127.0.0.1:41234``.

Marker
------
``@pytest.mark.wavespeed_mock(**options)`` configures either fixture for one test (or a class/module):
every :class:`mock_server.config.MockConfig` field (``scenario="fail; code=1402"``, ``api_keys=["k"]``,
``seed=7``, ``clock="system"``, ``sync_timeout_s=...``, ``webhook_secret=...``...), plus for
``wavespeed_mock`` only: ``base_url=`` and ``pass_through=[url prefixes]`` (default: loopback addresses,
so a webhook receiver on 127.0.0.1 is reached for real).

This module imports nothing heavy at load time: it is loaded by every pytest run where the package is
installed, including projects that installed only the torch-free base.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mock_server.mock import WavespeedMock
    from mock_server.server import MockServer

MARKER = "wavespeed_mock"
DEFAULT_PASS_THROUGH = ("http://127.0.0.1", "http://localhost", "http://[::1]")
_ROUTING_OPTIONS = ("base_url", "pass_through")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(base_url=..., scenario=..., api_keys=..., seed=..., **MockConfig fields): "
        "configure the wavespeed_mock / wavespeed_server fixtures (see mock_server.pytest_plugin).",
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The marker's keyword options, nearest marker winning per key (test over class over module)."""
    merged: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes keyword options only, got {marker.args!r}")
        merged.update(marker.kwargs)
    return merged


def _config(options: dict[str, Any]) -> Any:
    import dataclasses

    from mock_server.config import MockConfig

    fields = {f.name for f in dataclasses.fields(MockConfig)}
    unknown = sorted(set(options) - fields - set(_ROUTING_OPTIONS))
    if unknown:
        raise pytest.UsageError(
            f"unknown @pytest.mark.{MARKER} option(s) {unknown}; known: {sorted(fields | set(_ROUTING_OPTIONS))}"
        )
    values = {k: v for k, v in options.items() if k in fields}
    if values.get("api_keys") is not None:
        values["api_keys"] = tuple(values["api_keys"])
    return MockConfig(**values)


@pytest.fixture
def wavespeed_mock(request: pytest.FixtureRequest) -> Iterator[WavespeedMock]:
    import respx

    from contracts import DEFAULT_BASE_URL
    from mock_server.app import create_app
    from mock_server.bridge import ASGIBridge

    options = _options(request)
    base_url = str(options.get("base_url", DEFAULT_BASE_URL)).rstrip("/")
    pass_through = tuple(options.get("pass_through", DEFAULT_PASS_THROUGH))
    app = create_app(_config(options))
    mock: WavespeedMock = app.state.mock
    mock.base_url = base_url

    with ASGIBridge(app) as bridge:
        router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
        router.route(url__startswith=base_url + "/").mock(side_effect=bridge.handle_request)
        for prefix in pass_through:
            if not base_url.startswith(prefix):
                router.route(url__startswith=prefix).pass_through()
        mock.respx = router  # type: ignore[attr-defined]
        with router:
            yield mock


@pytest.fixture(scope="session")
def _wavespeed_server_session() -> Iterator[MockServer]:
    from mock_server.server import MockServer

    with MockServer() as server:
        yield server


@pytest.fixture
def wavespeed_server(
    request: pytest.FixtureRequest, _wavespeed_server_session: MockServer
) -> Iterator[WavespeedMock]:
    options = _options(request)
    for key in _ROUTING_OPTIONS:
        if key in options:
            raise pytest.UsageError(f"{key}= applies to the wavespeed_mock fixture, not wavespeed_server")
    mock = _wavespeed_server_session.mock
    mock.configure(_config(options))  # a fresh state per test: jobs, journal, clock, ids, scenarios
    yield mock
    from mock_server.config import MockConfig

    mock.configure(MockConfig())
