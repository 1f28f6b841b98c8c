"""What the contract suite needs from an app under test: the ``ContractTarget`` protocol.

An app implementing the WaveSpeed lip-sync API (the mock, the real server, a deployment) is tested by
giving the suite one object with these members. ``BaseTarget`` implements the generic ones; a target
subclasses it and fills in how to reach the app and how to make a job fail or keep running.
See ``tests/contract/README.md``.
"""

from __future__ import annotations

import io
import time
import wave
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import httpx

from contracts import Paths

__all__ = ["BaseTarget", "ContractTarget", "JobSpec", "MediaFile", "tiny_wav"]


@dataclass(frozen=True)
class JobSpec:
    """How to submit one job: the JSON body and any extra request headers."""

    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaFile:
    filename: str
    content: bytes
    content_type: str


@runtime_checkable
class ContractTarget(Protocol):
    #: Shown in test ids and failure messages.
    name: str
    #: A client for the app: ``base_url`` set, no auth header. Absolute URLs the app hands out (outputs,
    #: upload targets, download URLs) must be reachable through it too (``fetch``).
    client: httpx.Client
    #: A key the app accepts.
    api_key: str

    def openapi(self) -> dict[str, Any]:
        """The app's OpenAPI document."""
        ...

    def media_inputs(self) -> dict[str, str]:
        """A ``{"video": ..., "audio": ...}`` pair (URLs or data: URIs) the app accepts and processes."""
        ...

    def media_files(self) -> dict[str, MediaFile]:
        """The same media as bytes, ``{"video": ..., "audio": ...}``, for the upload tests."""
        ...

    def completing_job(self) -> JobSpec:
        """A job that ends ``completed``."""
        ...

    def failing_job(self, code: int) -> JobSpec:
        """A job that ends ``failed`` with task code *code*: 1402 (media unreachable), 1403 (no face)."""
        ...

    def running_job(self) -> JobSpec:
        """A job that stays created/processing until cancelled (long enough for a cancel to land)."""
        ...

    def step(self) -> None:
        """Let time pass for the jobs (advance a virtual clock, or wait a little for a worker)."""
        ...

    def drive_to_completion(self, prediction_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """Poll until the prediction ends; return its final ``data``."""
        ...

    def fetch(self, url: str) -> httpx.Response:
        """GET a URL the app returned (output, download_url)."""
        ...

    def put(self, url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        """PUT to an upload ticket's target (no API key, only the ticket's headers)."""
        ...


class BaseTarget:
    """Generic parts of a target. Subclasses set ``name``, ``client``, ``api_key`` and implement the media
    and job hooks; ``step`` defaults to a short real wait (override it with a virtual clock if you have one)."""

    name: str
    client: httpx.Client
    api_key: str
    step_s: float = 0.05

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def openapi(self) -> dict[str, Any]:
        response = self.client.get("/openapi.json")
        response.raise_for_status()
        schema: dict[str, Any] = response.json()
        return schema

    def completing_job(self) -> JobSpec:
        return JobSpec(self.media_inputs())  # type: ignore[attr-defined]

    def step(self) -> None:
        time.sleep(self.step_s)

    def drive_to_completion(self, prediction_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.client.get(Paths.RESULT.format(id=prediction_id), headers=self.auth)
            assert response.status_code == 200, (
                f"{self.name}: poll answered {response.status_code}: {response.text}"
            )
            data: dict[str, Any] = response.json()["data"]
            if data["status"] in ("completed", "failed"):
                return data
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {prediction_id} still {data['status']} after {timeout_s} s")
            self.step()

    def fetch(self, url: str) -> httpx.Response:
        return self.client.get(url)

    def put(self, url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.client.put(url, content=content, headers=headers)


def tiny_wav(seconds: float = 0.4, rate: int = 16_000) -> bytes:
    """A short silent mono 16-bit WAV (for targets that do not decode audio)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return buf.getvalue()
