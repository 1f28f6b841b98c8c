"""Request bodies are bounded before authentication and while streaming, measured on a server process.

The server runs in its own process (``guard_server``), so its resident memory (``/proc/<pid>/status``)
shows what a request made it hold; the client speaks raw HTTP/1.1 on a socket so it can send bodies far
larger than it keeps (and stop when the server answers).
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.server.conftest import API_KEY, SUBMIT

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
CHUNK = 256 * 1024
#: How much the server's resident memory may grow while refusing a body of hundreds of MB.
RSS_SLACK_BYTES = 8 * MB


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    base_url: str

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    sent: int


def start_server(data_dir: Path, **settings: object) -> ServerProcess:
    args = [f"{k}={v}" for k, v in settings.items()]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.server.guard_server", str(data_dir), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    assert base_url.startswith("http://"), f"server did not start (exit {proc.poll()})"
    return ServerProcess(proc, base_url)


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


def _parse(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2 :]
        body = out
    return status, json.loads(body)


def send_body(
    base_url: str,
    path: str,
    *,
    total: int,
    headers: dict[str, str],
    declare_length: bool = True,
    pause_after: int | None = None,
    preamble: bytes = b"",
) -> Reply:
    """POST *total* bytes of filler (declared by Content-Length, or chunked) until the server answers.

    With *pause_after*, stop sending after that many bytes and wait for the answer (a stalled client);
    *preamble* (counted in *total*) opens the body.
    """
    url = urlsplit(base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=60)
    lines = [f"POST {path} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {total}" if declare_length else "Transfer-Encoding: chunked")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sock.setblocking(False)
    filler = b"x" * CHUNK
    sent = 0
    try:
        while sent < total and (pause_after is None or sent < pause_after):
            readable, writable, _ = select.select([sock], [sock], [], 30)
            if readable:
                break  # the server answered before the body was complete
            assert writable, "the server neither read nor answered for 30 s"
            piece = (preamble[sent:] if sent < len(preamble) else filler)[
                : min(CHUNK, (pause_after or total) - sent)
            ]
            frame = piece if declare_length else b"%x\r\n%s\r\n" % (len(piece), piece)
            try:
                sent += sock.send(frame) if declare_length else (sock.sendall(frame) or len(piece))
            except (BlockingIOError, InterruptedError):
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        raw = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            raw += data
    finally:
        sock.close()
    status, body = _parse(raw)
    return Reply(status, body, sent)


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
