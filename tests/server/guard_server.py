"""A server in its own process, for measuring what a request costs it (``/proc/<pid>/status``).

``python -m tests.server.guard_server DATA_DIR [SETTING=VALUE ...]`` serves the app over in-memory backends
and a fake engine on a free loopback port and prints its base URL on the first line of stdout. The test
and ``bench/request_guard_rss.py`` start it so the client's memory does not blur the server's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lipsync.server import create_app
from lipsync.server.interfaces import Engine
from lipsync.server.memory import MemoryJobStore, MemoryStorage
from lipsync.server.serving import base_url_of, bind_socket, uvicorn_config
from lipsync.server.worker import InProcessRunner
from tests.server.conftest import make_settings
from tests.server.fakes import FakeEngine, FakeFetcher, RecordingWebhooks


def main(argv: list[str]) -> None:
    import uvicorn

    overrides = dict(arg.split("=", 1) for arg in argv[1:])
    settings = make_settings(Path(argv[0]), **overrides)

    def factory(device: str) -> Engine:
        return FakeEngine()

    app = create_app(
        settings,
        store=MemoryJobStore(),
        storage=MemoryStorage(),
        runner=InProcessRunner(factory),
        fetcher=FakeFetcher(),
        webhooks=RecordingWebhooks(),
    )
    sock = bind_socket("127.0.0.1", 0)
    print(base_url_of(sock), flush=True)
    uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1:])
