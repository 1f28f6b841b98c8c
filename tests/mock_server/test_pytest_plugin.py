"""The pytest plugin as a client project uses it: generated test files run in a child pytest (pytester)."""

from __future__ import annotations

import pytest

# pytester is a pytest built-in plugin that is off by default; requiring it here keeps it local to this module.
pytest_plugins = ["pytester"]

_CLIENT_TESTS = """
import httpx
import pytest

SUBMIT = "/api/v3/bytedance/lipsync/audio-to-video"
INPUTS = {"audio": "https://x.example/a.wav", "video": "https://x.example/v.mp4"}
AUTH = {"Authorization": "Bearer k"}


def test_fixture_routes_the_default_base_url(wavespeed_mock):
    with httpx.Client(base_url="https://api.wavespeed.ai", headers=AUTH) as client:
        pid = client.post(SUBMIT, json=INPUTS).json()["data"]["id"]
        statuses = [client.get(f"/api/v3/predictions/{pid}/result").json()["data"]["status"] for _ in range(2)]
    assert statuses == ["processing", "completed"]
    assert len(wavespeed_mock.journal.polls(pid)) == 2


@pytest.mark.wavespeed_mock(base_url="https://lipsync.internal", scenario="fail; code=1402", api_keys=["k"])
def test_marker_configures_base_url_scenario_and_keys(wavespeed_mock):
    with httpx.Client(base_url="https://lipsync.internal") as client:
        assert client.post(SUBMIT, json=INPUTS, headers={"Authorization": "Bearer nope"}).status_code == 401
        r = client.post(SUBMIT, json=INPUTS, headers=AUTH)
        assert r.headers["x-mock-scenario"] == "fail; code=1402"
        pid = r.json()["data"]["id"]
        wavespeed_mock.advance(60)
        data = client.get(f"/api/v3/predictions/{pid}/result", headers=AUTH).json()["data"]
    assert (data["status"], data["code"]) == ("failed", 1402)


@pytest.mark.anyio
async def test_async_clients_are_routed_too(wavespeed_mock):
    async with httpx.AsyncClient(base_url="https://api.wavespeed.ai", headers=AUTH) as client:
        r = await client.post(SUBMIT, json={**INPUTS, "enable_sync_mode": True})
        out = await client.get(r.json()["data"]["outputs"][0])
    assert out.status_code == 200 and out.content[4:8] == b"ftyp"


def test_other_hosts_are_not_let_out(wavespeed_mock):
    with pytest.raises(Exception, match="not mocked"):
        httpx.get("https://example.com/")


def test_server_fixture_is_a_real_socket(wavespeed_server):
    assert wavespeed_server.base_url.startswith("http://127.0.0.1:")
    r = httpx.post(wavespeed_server.base_url + SUBMIT, json=INPUTS, headers=AUTH)
    assert r.status_code == 200


@pytest.mark.wavespeed_mock(api_keys=["only"])
def test_server_fixture_takes_the_marker_and_starts_fresh(wavespeed_server):
    assert len(wavespeed_server.jobs) == 0
    r = httpx.post(wavespeed_server.base_url + SUBMIT, json=INPUTS, headers=AUTH)
    assert r.status_code == 401
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_generated_client_tests_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_client=_CLIENT_TESTS)
    pytester.makeconftest('import pytest\n\n@pytest.fixture\ndef anyio_backend():\n    return "asyncio"\n')
    # A child process: the plugin is found through its entry point exactly as in a client project.
    result = pytester.runpytest_subprocess("-q", "-p", "anyio", "-W", "error")
    result.assert_outcomes(passed=6)


def test_marker_is_registered_and_bad_options_are_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.wavespeed_mock(scenaro="slow")
def test_typo(wavespeed_mock):
    pass
"""
    )
    result = pytester.runpytest_inprocess("-q", "--strict-markers")
    result.stdout.fnmatch_lines(["*unknown @pytest.mark.wavespeed_mock option(s)*scenaro*"])
    assert result.ret != 0
    markers = pytester.runpytest_inprocess("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.wavespeed_mock(*"])
