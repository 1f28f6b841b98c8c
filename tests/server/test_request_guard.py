"""Request bodies are bounded before authentication and while streaming, measured on a server process.

The server runs in its own process (``guard_server``), so its resident memory (``/proc/<pid>/status``)
shows what a request made it hold; the client speaks raw HTTP/1.1 on a socket so it can send bodies far
larger than it keeps (and stop when the server answers).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import API_KEY, SUBMIT
from tests.server.guard_server import MB, ServerProcess, send_body, start_server

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")

#: How much the server's resident memory may grow while refusing a body of hundreds of MB.
RSS_SLACK_BYTES = 8 * MB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("guard"), max_input_bytes=MB, body_timeout_s=1.0)
    try:
        yield running
    finally:
        running.proc.terminate()
        running.proc.wait(timeout=30)
        if running.proc.stdout is not None:
            running.proc.stdout.close()


def test_an_unauthenticated_200_mb_body_is_refused_without_the_server_holding_it(
    server: ServerProcess,
) -> None:
    before = server.rss_bytes()
    reply = send_body(
        server.base_url,
        SUBMIT,
        total=200 * MB,
        headers={"Content-Type": "application/json", "Authorization": "Bearer wrong-key"},
    )
    grown = server.rss_bytes() - before
    assert reply.status == 413
    assert reply.body["code"] == 413
    assert "65536 bytes" in reply.body["message"]
    assert "without a valid API key" in reply.body["message"]
    assert grown < RSS_SLACK_BYTES, f"server RSS grew by {grown / MB:.1f} MB"


def test_an_unauthenticated_chunked_body_is_cut_off_while_streaming(server: ServerProcess) -> None:
    before = server.rss_bytes()
    reply = send_body(
        server.base_url,
        SUBMIT,
        total=200 * MB,
        headers={"Content-Type": "application/json"},
        declare_length=False,
    )
    grown = server.rss_bytes() - before
    assert reply.status == 413
    assert "without a valid API key" in reply.body["message"]
    assert reply.sent < 200 * MB
    assert grown < RSS_SLACK_BYTES, f"server RSS grew by {grown / MB:.1f} MB"


def test_the_multipart_cap_holds_mid_stream(server: ServerProcess) -> None:
    boundary = "guard-boundary"
    reply = send_body(
        server.base_url,
        "/api/v3/media/upload/binary",
        total=50 * MB,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Authorization": f"Bearer {API_KEY}",
        },
        declare_length=False,
        preamble=(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode(),
    )
    assert reply.status == 413
    assert "file uploads" in reply.body["message"]
    assert str(MB + 64 * 1024) in reply.body["message"]
    assert reply.sent < 50 * MB


def test_an_oversize_declared_json_body_with_a_key_gets_413_naming_the_limit(server: ServerProcess) -> None:
    reply = send_body(
        server.base_url,
        SUBMIT,
        total=17 * MB,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
    )
    assert reply.status == 413
    assert reply.body["message"] == ("Request body too large: the limit for request bodies is 16777216 bytes")


def test_a_stalled_body_is_answered_408(server: ServerProcess) -> None:
    reply = send_body(
        server.base_url,
        SUBMIT,
        total=1000,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
        pause_after=10,
    )
    assert reply.status == 408
    assert reply.body["message"] == "Request body timed out: no data for 1 seconds"
