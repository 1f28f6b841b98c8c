"""Bounded submit + poll load against `lipsync serve` (embedded defaults, fake engine) on loopback.

    nice -n 10 .venv/bin/python bench/api_load.py [--clients 50] [--requests 10000] [--poll-interval 0.05]

Starts `lipsync serve` as a subprocess exactly as a user would (SQLite in WAL mode, local storage, one worker
process, API-key auth, request validation, input probing), with a fake engine that writes a small MP4 at
once (``LIPSYNC_ENGINE_FACTORY=tests.server.fakes:ok_engine``) so the figures measure the API, not the model.
Two media files are uploaded once (ticket + PUT); every job references their download URLs, which the
server resolves locally and probes with PyAV, as it would for any uploaded input.

*clients* keep-alive HTTP/1.1 connections each loop submit -> poll every *poll-interval* until the job
ends, until *requests* requests have been sent in total. Then every submitted job is checked: lost = the
server no longer knows it (404), stuck = not finished within a grace period, failed = ended failed.
The client shares the machine's cores with the server (and its worker), so the figures are a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from fastapi import Request

REPO = Path(__file__).resolve().parents[1]
SUBMIT = "/api/v3/bytedance/lipsync/audio-to-video"
API_KEY = "bench-key"


class Connection:
    """One keep-alive HTTP/1.1 connection; ``request`` returns (status, body). Small on purpose: a full
    client library would spend more CPU per request than the server being measured."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            await self._connect()
        assert self.reader is not None and self.writer is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


def start_server(
    data_dir: Path, engine: str, store_url: str | None = None
) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIPSYNC_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "LIPSYNC_API_KEYS": API_KEY,
            "LIPSYNC_ENGINE_FACTORY": f"tests.server.fakes:{engine}",
            "LIPSYNC_DEVICES": "cpu",
            "LIPSYNC_MAX_ACTIVE_JOBS_PER_KEY": "100000",
        }
    )
    if store_url:
        env["LIPSYNC_STORE_URL"] = store_url
    exe = str(Path(sys.executable).with_name("lipsync"))
    proc = subprocess.Popen(
        [exe, "serve", "--port", "0", "--data-dir", str(data_dir), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if not first.startswith("lipsync server listening on "):
        proc.kill()
        raise SystemExit(f"server did not start: {first!r}")
    return proc, first.split()[-1]


def serve_baseline() -> None:
    """A bare FastAPI app with an in-memory dict (same routes, no auth/validation/persistence): the ceiling."""
    import uuid

    import uvicorn
    from fastapi import FastAPI

    sys.path.insert(0, str(REPO))
    from lipsync.server.serving import base_url_of, bind_socket, uvicorn_config

    app = FastAPI()
    jobs: dict[str, dict[str, object]] = {}

    @app.post(SUBMIT)
    async def submit(request: Request) -> dict[str, object]:
        body = await request.json()
        job = {"id": uuid.uuid4().hex, "status": "completed", "outputs": [body.get("video")]}
        jobs[str(job["id"])] = job
        return {"code": 200, "message": "success", "data": job}

    @app.get("/api/v3/predictions/{job_id}/result")
    async def result(job_id: str) -> dict[str, object]:
        return {"code": 200, "message": "success", "data": jobs[job_id]}

    sock = bind_socket("127.0.0.1", 0)
    print(f"lipsync server listening on {base_url_of(sock)}", flush=True)
    uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])


def start_baseline() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-baseline"], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    return proc, first.split()[-1]


def upload_inputs(base_url: str) -> dict[str, str]:
    import httpx

    sys.path.insert(0, str(REPO))
    from tests.server.fakes import make_mp4, make_wav

    urls = {}
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        for field, name, data in (("video", "face.mp4", make_mp4()), ("audio", "speech.wav", make_wav())):
            ticket = client.post("/api/v3/media/uploads", json={"filename": name, "size": len(data)}).json()
            put = client.put(ticket["data"]["upload"]["url"], content=data)
            put.raise_for_status()
            urls[field] = ticket["data"]["download_url"]
    return urls


class Stats:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {"submit": [], "poll": []}
        self.statuses: dict[int, int] = {}
        self.submitted: list[str] = []
        self.sent = 0


async def client_loop(
    conn: Connection, stats: Stats, budget: list[int], body: bytes, poll_interval: float
) -> None:
    result_path = "/api/v3/predictions/{}/result"
    while budget[0] > 0:
        budget[0] -= 1
        t0 = time.perf_counter()
        status, raw = await conn.request("POST", SUBMIT, body)
        stats.latencies["submit"].append(time.perf_counter() - t0)
        stats.statuses[status] = stats.statuses.get(status, 0) + 1
        if status != 200:
            continue
        job_id = json.loads(raw)["data"]["id"]
        stats.submitted.append(job_id)
        while budget[0] > 0:
            await asyncio.sleep(poll_interval)
            budget[0] -= 1
            t0 = time.perf_counter()
            status, raw = await conn.request("GET", result_path.format(job_id))
            stats.latencies["poll"].append(time.perf_counter() - t0)
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            if status == 200 and json.loads(raw)["data"]["status"] in ("completed", "failed"):
                break


async def check_jobs(host: str, port: int, ids: Sequence[str], grace_s: float) -> dict[str, int]:
    conn = Connection(host, port)
    outcome = {"completed": 0, "failed": 0, "lost": 0, "stuck": 0}
    deadline = time.monotonic() + grace_s
    try:
        for job_id in ids:
            while True:
                status, raw = await conn.request("GET", f"/api/v3/predictions/{job_id}/result")
                if status == 404:
                    outcome["lost"] += 1
                    break
                state = json.loads(raw)["data"]["status"]
                if state in ("completed", "failed"):
                    outcome[state] += 1
                    break
                if time.monotonic() > deadline:
                    outcome["stuck"] += 1
                    break
                await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return outcome


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run(args: argparse.Namespace, base_url: str, inputs: dict[str, str]) -> None:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps(inputs).encode()
    conns = [Connection(host, int(port)) for _ in range(args.clients)]
    # Warm-up (not counted): connections, first imports, SQLite pages.
    warm = Stats()
    await asyncio.gather(*(client_loop(c, warm, [4], body, args.poll_interval) for c in conns))
    stats = Stats()
    budget = [args.requests]
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(c, stats, budget, body, args.poll_interval) for c in conns))
    elapsed = time.perf_counter() - started
    for c in conns:
        await c.close()
    outcome = await check_jobs(host, int(port), warm.submitted + stats.submitted, args.grace)
    everything = stats.latencies["submit"] + stats.latencies["poll"]
    print(f"engine={args.engine} clients={args.clients} requests={len(everything)} elapsed={elapsed:.2f}s")
    print(f"throughput: {len(everything) / elapsed:.0f} requests/s")
    for name, values in (("all", everything), *stats.latencies.items()):
        mean = statistics.fmean(values) * 1000 if values else float("nan")
        print(
            f"  {name:6s} n={len(values):6d}  p50={pct(values, 0.50):6.1f} ms  p99={pct(values, 0.99):6.1f} ms  "
            f"mean={mean:6.1f} ms"
        )
    print(f"HTTP statuses: {dict(sorted(stats.statuses.items()))}")
    print(
        f"jobs: submitted={len(warm.submitted) + len(stats.submitted)} completed={outcome['completed']} "
        f"failed={outcome['failed']} lost={outcome['lost']} stuck={outcome['stuck']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--poll-interval", type=float, default=0.05, help="seconds between a client's polls")
    parser.add_argument("--grace", type=float, default=120.0, help="seconds for queued jobs to finish")
    parser.add_argument(
        "--engine",
        default="ok_engine",
        choices=["ok_engine", "timed_engine"],
        help="fake engine: ok_engine finishes at once (submit-heavy mix); timed_engine takes "
        "$LIPSYNC_FAKE_ENGINE_SECONDS (0.2 s) per job, so clients mostly poll",
    )
    parser.add_argument(
        "--baseline", action="store_true", help="measure a bare in-memory FastAPI app instead"
    )
    parser.add_argument(
        "--store-url", default=None, help="LIPSYNC_STORE_URL of the server (default: SQLite in its data dir)"
    )
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_baseline:
        serve_baseline()
        return 0
    with tempfile.TemporaryDirectory(prefix="lipsync-bench-") as tmp:
        if args.baseline:
            proc, base_url = start_baseline()
            args.engine = "baseline (bare FastAPI, in-memory dict)"
        else:
            proc, base_url = start_server(Path(tmp) / "data", args.engine, args.store_url)
        try:
            inputs = (
                {"video": "https://m.example/v.mp4", "audio": "https://m.example/a.wav"}
                if args.baseline
                else upload_inputs(base_url)
            )
            asyncio.run(run(args, base_url, inputs))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
