"""Server resident memory while it refuses an unauthenticated 200 MB JSON body (issue 13's closing number).

    .venv/bin/python bench/request_guard_rss.py [--mb 200] [--tree PATH]

Starts ``tests.server.guard_server`` (the app over in-memory backends, a fake engine) as a subprocess of
the tree at *--tree* (default: this one; point it at a tree without ``RequestGuard`` for the "before"
figure, with ``tests/server/guard_server.py`` and ``served.py`` copied in), sends the body with a wrong
key from a raw socket, and prints the server's VmRSS before and after and the answer's status and message.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.server.guard_server import MB, send_body, start_server  # noqa: E402

SUBMIT = "/api/v3/bytedance/lipsync/audio-to-video"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--tree", type=Path, default=REPO)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_server(Path(data_dir), root=args.tree)
        try:
            before = server.rss_bytes()
            reply = send_body(
                server.base_url,
                SUBMIT,
                total=args.mb * MB,
                headers={"Content-Type": "application/json", "Authorization": "Bearer wrong-key"},
            )
            after = server.rss_bytes()
        finally:
            server.proc.terminate()
            server.proc.wait(timeout=60)
    print(f"tree {args.tree}: {args.mb} MB body, {reply.sent / MB:.1f} MB sent before the answer")
    print(f"  answer {reply.status}: {reply.body.get('message')}")
    print(f"  server RSS {before / MB:.1f} MB -> {after / MB:.1f} MB ({(after - before) / MB:+.1f} MB)")


if __name__ == "__main__":
    main()
