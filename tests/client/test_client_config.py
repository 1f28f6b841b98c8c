"""Configuration precedence, the transport seams, lifecycle, and the exception tree."""

from __future__ import annotations

import anyio
import httpx
import pytest
import respx

from contracts import DEFAULT_BASE_URL
from lipsync.client import (
    NOT_GIVEN,
    APIError,
    AsyncClient,
    AuthenticationError,
    Client,
    ClientError,
    JobFailed,
    JobTimeout,
    NotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
    ValidationError,
)
from lipsync.errors import LipsyncError
from tests.client._recorded import BASE, PROCESSING, RESULT_URL, TASK_ID, ok

ENV = {
    "LIPSYNC_BASE_URL": "http://lipsync.env:8000/",
    "LIPSYNC_API_KEY": "lipsync-env-key",
    "WAVESPEED_API_KEY": "wavespeed-env-key",
}


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_arguments_beat_the_environment(cls: type[Client] | type[AsyncClient]) -> None:
    c = cls("https://explicit.example/", "explicit-key", env=ENV)
    assert (c.base_url, c.api_key) == ("https://explicit.example", "explicit-key")


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_lipsync_variables_beat_wavespeed_key(cls: type[Client] | type[AsyncClient]) -> None:
    c = cls(env=ENV)
    assert (c.base_url, c.api_key) == ("http://lipsync.env:8000", "lipsync-env-key")


def test_wavespeed_key_is_the_fallback_and_wavespeed_the_default_url() -> None:
    c = Client(env={"WAVESPEED_API_KEY": "wavespeed-env-key"})
    assert (c.base_url, c.api_key) == (DEFAULT_BASE_URL, "wavespeed-env-key")
    assert Client(env={}).api_key is None


def test_explicit_none_skips_the_environment() -> None:
    c = Client(None, None, env=ENV)
    assert (c.base_url, c.api_key) == (DEFAULT_BASE_URL, None)
    # The sentinel is what "not passed" means.
    assert Client(NOT_GIVEN, NOT_GIVEN, env=ENV).api_key == "lipsync-env-key"


def test_empty_environment_values_count_as_unset() -> None:
    c = Client(env={"LIPSYNC_BASE_URL": " ", "LIPSYNC_API_KEY": "", "WAVESPEED_API_KEY": "k"})
    assert (c.base_url, c.api_key) == (DEFAULT_BASE_URL, "k")


def test_the_real_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # The one place the process environment itself is the thing under test.
    monkeypatch.setenv("LIPSYNC_BASE_URL", "http://from-os-environ:9")
    monkeypatch.delenv("LIPSYNC_API_KEY", raising=False)
    monkeypatch.setenv("WAVESPEED_API_KEY", "os-key")
    c = Client()
    assert (c.base_url, c.api_key) == ("http://from-os-environ:9", "os-key")


@pytest.mark.parametrize("bad", ["api.wavespeed.ai", "ftp://x.example", "http://"])
def test_base_url_must_be_absolute_http(bad: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        Client(bad, env={})


def test_transport_and_http_client_are_exclusive() -> None:
    with httpx.Client() as http, pytest.raises(ValueError, match="either"):
        Client(BASE, transport=httpx.MockTransport(lambda r: httpx.Response(200)), http_client=http, env={})


def test_timeout_sentinel_none_and_number() -> None:
    assert Client(env={}).timeout.read == 60.0
    assert Client(env={}, timeout=None).timeout.read is None
    assert Client(env={}, timeout=5).timeout.connect == 5.0


def test_a_given_http_client_is_used_and_left_open() -> None:
    with respx.MockRouter(assert_all_mocked=True) as router:
        router.get(RESULT_URL).mock(return_value=ok(PROCESSING))
        http = httpx.Client(transport=httpx.MockTransport(router.handler))
        with Client(BASE, "k", http_client=http, env={}) as c:
            assert c.get(TASK_ID).status == "processing"
        assert not http.is_closed
        http.close()


def test_own_http_client_is_closed_by_the_context_manager() -> None:
    with Client(BASE, env={}, transport=httpx.MockTransport(lambda r: httpx.Response(200))) as c:
        pass
    assert c._http.is_closed


def test_async_context_manager_closes_and_accepts_an_async_progress_callback() -> None:
    seen: list[str] = []

    async def on_progress(p: object) -> None:
        await anyio.sleep(0)
        seen.append(getattr(p, "status", "?"))

    async def main() -> None:
        with respx.MockRouter(assert_all_mocked=True) as router:
            router.get(RESULT_URL).mock(
                side_effect=[ok(PROCESSING), ok({**PROCESSING, "status": "completed"})]
            )
            sleeps: list[float] = []

            async def sleep(s: float) -> None:
                sleeps.append(s)

            async with AsyncClient(
                BASE, "k", env={}, transport=httpx.MockTransport(router.async_handler), sleep=sleep
            ) as c:
                await c.wait(TASK_ID, poll_interval=0.25, on_progress=on_progress)
            assert c._http.is_closed
            assert sleeps == [0.25]

    anyio.run(main)
    assert seen == ["processing", "completed"]


def test_exception_tree() -> None:
    for api_error in (ValidationError, AuthenticationError, NotFoundError, RateLimitError, ServerError):
        assert issubclass(api_error, APIError)
    for cls in (APIError, TransportError, JobFailed, JobTimeout):
        assert issubclass(cls, ClientError)
    assert issubclass(ClientError, LipsyncError)
    exit_codes = {
        cls.exit_code
        for cls in (
            ClientError,
            APIError,
            AuthenticationError,
            NotFoundError,
            RateLimitError,
            ServerError,
            TransportError,
            JobFailed,
            JobTimeout,
        )
    }
    assert len(exit_codes) == 9, "each client error type has its own exit code"


def test_exceptions_carry_their_context() -> None:
    err = RateLimitError(
        429, 429, "slow down", {"code": 429}, request_id="req-1", job_id="j", retry_after=3.0
    )
    assert (err.status_code, err.code, err.retry_after, err.job_id, err.request_id) == (
        429,
        429,
        3.0,
        "j",
        "req-1",
    )
    assert str(err).startswith("HTTP 429: slow down")
    assert "req-1" in str(err)
    failed = JobFailed("job-9", 1401, "Invalid parameter 'seed'")
    assert (failed.job_id, failed.code, failed.wavespeed_code, failed.exit_code) == ("job-9", 1401, 1401, 2)
    assert str(failed).startswith("[1401] Invalid parameter 'seed'")
    timeout = JobTimeout("job-9", 12.5)
    assert (timeout.job_id, timeout.waited_s) == ("job-9", 12.5)
    assert "12.5" in str(timeout)
