"""Bounded submit + poll load against `lipsync mock` on loopback; prints requests/s and p50/p99 latency.

    .venv/bin/python bench/mock_load.py [--requests 40000] [--connections 32] [--rounds 3] [--target both]

Starts `lipsync mock` as a subprocess (virtual clock; default bounded journal of 1,000 requests and job store
of 10,000 jobs), drives it with a small keep-alive HTTP/1.1 client on asyncio (uvloop) over a fixed number
of connections, each looping submit -> N polls, for a fixed total number of requests after a warm-up. Then
it reads the journal's bound and the server's resident memory, and stops it. ``--target bare`` measures the
yardstick of the issue instead (a bare FastAPI app with a dict of jobs, same uvicorn settings);
``both`` alternates the two, round by round, so they share the machine's conditions.

The client runs on the same cores as the server (a Python client costs more CPU than wrk), so the figures
are a lower bound of what the server sustains alone. On a shared machine, compare targets within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUBMIT = "/api/v3/bytedance/lipsync/audio-to-video"
BODY = json.dumps(
    {"audio": "https://media.example/speech.wav", "video": "https://media.example/face.mp4"}
).encode()
KEY = "bench-key"


# -- the servers -------------------------------------------------------------------------------------------------
def bare_app() -> Any:
    """The yardstick: a bare FastAPI app with a dict of jobs (no auth, journal, scenarios or validation)."""
    from fastapi import FastAPI

    app = FastAPI()
    jobs: dict[str, dict[str, object]] = {}
    ids = itertools.count()

    @app.post(SUBMIT)
    async def submit(body: dict[str, str]) -> dict[str, object]:
        pid = f"{next(ids):032x}"
        jobs[pid] = {"id": pid, "status": "created", "outputs": [], "input": body}
        return {"code": 200, "message": "success", "data": jobs[pid]}

    @app.get("/api/v3/predictions/{pid}/result")
    async def result(pid: str) -> dict[str, object]:
        return {"code": 200, "message": "success", "data": jobs[pid]}

    return app


def serve_bare() -> None:
    import uvicorn

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mock_server.server import base_url_of, bind_socket, uvicorn_config

    sock = bind_socket("127.0.0.1", 0)
    print(f"WaveSpeed mock listening on {base_url_of(sock)}", flush=True)
    uvicorn.Server(uvicorn_config(bare_app())).run(sockets=[sock])


def server_command(target: str) -> list[str]:
    if target == "bare":
        return [sys.executable, str(Path(__file__).resolve()), "--serve-bare"]
    exe = shutil.which("lipsync") or str(Path(sys.executable).with_name("lipsync"))
    base = [exe] if Path(exe).exists() else [sys.executable, "-c", "from lipsync.cli import app; app()"]
    return [*base, "mock", "--port", "0", "--clock", "virtual", "--api-key", KEY]


# -- the client --------------------------------------------------------------------------------------------------
class Connection:
    """One keep-alive HTTP/1.1 connection; request() returns (status, body)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length = 0
        for line in header.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload

    def close(self) -> None:
        self.writer.close()


async def worker(
    conn: Connection, quota: list[int], polls: int, latencies: list[float], errors: list[int]
) -> None:
    while quota[0] > 0:
        quota[0] -= 1
        t0 = time.perf_counter()
        status, payload = await conn.request("POST", SUBMIT, BODY)
        latencies.append(time.perf_counter() - t0)
        if status != 200:
            errors.append(status)
            continue
        pid = json.loads(payload)["data"]["id"]
        for _ in range(polls):
            if quota[0] <= 0:
                break
            quota[0] -= 1
            t0 = time.perf_counter()
            status, _ = await conn.request("GET", f"/api/v3/predictions/{pid}/result")
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(status)


async def load(
    host: str, port: int, total: int, connections: int, polls: int
) -> tuple[float, list[float], list[int]]:
    conns = [Connection(host, port) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in conns))
    try:
        latencies: list[float] = []
        errors: list[int] = []
        quota = [total]
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c, quota, polls, latencies, errors) for c in conns))
        return time.perf_counter() - t0, latencies, errors
    finally:
        for c in conns:
            c.close()


async def journal_bound(host: str, port: int) -> str:
    conn = Connection(host, port)
    await conn.open()
    try:
        _, payload = await conn.request("GET", "/__mock/requests?limit=1")
    finally:
        conn.close()
    data = json.loads(payload)["data"]
    return f"journal holds at most {data['maxlen']} (dropped {data['dropped']})"


# -- measuring ---------------------------------------------------------------------------------------------------
@dataclass
class Result:
    target: str
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    rss_mib: tuple[float | None, float | None]
    note: str = ""

    def line(self) -> str:
        before, after = self.rss_mib
        rss = f", RSS {before:.0f}->{after:.0f} MiB" if before and after else ""
        note = f", {self.note}" if self.note else ""
        return (
            f"{self.target:5s} {self.rps:7.0f} req/s  p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:6.1f} ms  "
            f"max {self.max_ms:6.1f} ms  errors {self.errors}{rss}{note}"
        )


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def percentile(values: Sequence[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


def measure(target: str, args: argparse.Namespace) -> Result:
    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        run = asyncio.run
    cmd = server_command(target)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("WaveSpeed mock listening on "):
                raise SystemExit(f"{target} did not start: {line!r}")
            host, port_text = line.rsplit(" ", 1)[1].strip().removeprefix("http://").rsplit(":", 1)
            port = int(port_text)
            run(load(host, port, args.warmup, args.connections, args.polls_per_submit))
            before = rss_mib(proc.pid)
            elapsed, lat, errors = run(
                load(host, port, args.requests, args.connections, args.polls_per_submit)
            )
            after = rss_mib(proc.pid)
            note = run(journal_bound(host, port)) if target == "mock" else ""
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    ms = [x * 1000 for x in lat]
    return Result(
        target,
        args.requests / elapsed,
        percentile(ms, 50),
        percentile(ms, 99),
        max(ms),
        len(errors),
        (before, after),
        note,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=40_000, help="measured requests per round")
    parser.add_argument("--warmup", type=int, default=4_000, help="unmeasured requests first")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--polls-per-submit", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--target", choices=["mock", "bare", "both"], default="mock")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare()
        return 0
    targets = ["mock", "bare"] if args.target == "both" else [args.target]
    print(
        f"{args.requests} requests/round after {args.warmup} warm-up, {args.connections} connections, "
        f"submit + {args.polls_per_submit} polls, cpus={os.cpu_count()}, loadavg {os.getloadavg()[0]:.2f}"
    )
    results: dict[str, list[Result]] = {t: [] for t in targets}
    for _ in range(args.rounds):
        for target in targets:
            result = measure(target, args)
            results[target].append(result)
            print("  " + result.line(), flush=True)
    if args.rounds > 1:
        print("median:")
        for target, rs in results.items():
            print(
                f"  {target:5s} {statistics.median(r.rps for r in rs):7.0f} req/s  "
                f"p99 {statistics.median(r.p99_ms for r in rs):6.1f} ms"
            )
    print(f"loadavg at the end {os.getloadavg()[0]:.2f}")
    return 1 if any(r.errors for rs in results.values() for r in rs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
