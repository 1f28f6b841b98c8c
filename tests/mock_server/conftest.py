"""Helpers for the mock's own tests: an httpx client routed into the mock by the plugin's respx fixture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from contracts import Paths
from mock_server.mock import WavespeedMock

BASE = "https://api.wavespeed.ai"
KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
INPUTS = {"audio": "https://media.example/speech.wav", "video": "https://media.example/face.mp4"}


@pytest.fixture
def api(wavespeed_mock: WavespeedMock) -> Iterator[httpx.Client]:
    """A sync httpx client with a key, whose traffic the wavespeed_mock fixture routes into the mock."""
    with httpx.Client(base_url=BASE, headers=AUTH) as client:
        yield client


def submit(
    client: httpx.Client, *, headers: dict[str, str] | None = None, params: Any = None, **body: Any
) -> httpx.Response:
    return client.post(Paths.SUBMIT, json={**INPUTS, **body}, headers=headers, params=params)


def submit_ok(client: httpx.Client, **kw: Any) -> dict[str, Any]:
    response = submit(client, **kw)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def poll(client: httpx.Client, prediction_id: str, *, route: str = Paths.RESULT) -> httpx.Response:
    return client.get(route.format(id=prediction_id))


def poll_data(client: httpx.Client, prediction_id: str) -> dict[str, Any]:
    response = poll(client, prediction_id)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data
