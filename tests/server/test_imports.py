"""The API process stays light: importing the server (and the worker module) loads neither torch nor PyAV."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

MODULES = [
    "app", "auth", "backends", "engine_adapter", "execution", "fetch", "inputs", "interfaces", "keys",
    "local_storage", "media_check", "memory", "s3_storage", "serving", "settings", "signing",
    "sqlite_store", "state", "transitions", "views", "webhooks", "worker",
]  # fmt: skip


def test_server_modules_do_not_import_torch() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {MODULES!r}: importlib.import_module('lipsync.server.' + m)\n"
        "print(sorted(name for name in ('torch', 'av', 'boto3', 'cv2') if name in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
