"""A server in its own process, for measuring what a request costs it (``/proc/<pid>/status``), and a raw
HTTP/1.1 client that can send bodies far larger than it keeps (and stops when the server answers).

``python -m tests.server.guard_server DATA_DIR [SETTING=VALUE ...]`` serves the app over in-memory backends
and a fake engine on a free loopback port and prints its base URL on the first line of stdout
(``start_server``). ``tests/server/test_request_guard.py`` and ``bench/request_guard_rss.py`` use it, so the
client's memory does not blur the server's.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lipsync.server.serving import base_url_of, bind_socket, uvicorn_config
from tests.server.conftest import make_settings
from tests.server.served import fake_app

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
CHUNK = 256 * 1024


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


def start_server(data_dir: Path, *, root: Path = ROOT, **settings: object) -> ServerProcess:
    """``guard_server`` of the tree at *root* in a subprocess, with these settings (``make_settings``)."""
    args = [f"{k}={v}" for k, v in settings.items()]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.server.guard_server", str(data_dir), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=root,
    )
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    assert base_url.startswith("http://"), f"server did not start (exit {proc.poll()})"
    return ServerProcess(proc, base_url)


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


def main(argv: list[str]) -> None:
    import uvicorn

    overrides = dict(arg.split("=", 1) for arg in argv[1:])
    settings = make_settings(Path(argv[0]), **overrides)

    app = fake_app(settings)
    sock = bind_socket("127.0.0.1", 0)
    print(base_url_of(sock), flush=True)
    uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1:])
