"""The distribution a client project installs: build the wheel, install ``[mock]`` into a fresh virtual
environment (no torch, nothing from this checkout on the path) and use it as a client's CI would.

This is the documented install line of docs/install.md, run for real: the wheel must carry ``contracts``,
``mock_server`` (with its pytest plugin entry point) and the typed client, and must not pull torch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

CLIENT_TEST = textwrap.dedent(
    """
    from contracts import LipsyncRequest
    from lipsync.client import Client


    def test_the_fixture_serves_a_prediction(wavespeed_mock):
        LipsyncRequest(video="https://media.example/v.mp4", audio="https://media.example/a.wav")
        with Client(api_key="k", base_url=wavespeed_mock.base_url) as client:
            job = client.submit(video="https://media.example/v.mp4", audio="https://media.example/a.wav")
            assert job.status in ("created", "processing")
    """
)


def _run(*args: str | Path, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_the_mock_extra_installs_from_the_wheel_without_torch(tmp_path: Path) -> None:
    # Build from a copy of what the wheel is made of, so the build leaves nothing in this checkout.
    source = tmp_path / "source"
    for name in ("contracts", "lipsync", "mock_server"):
        shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    dist = tmp_path / "dist"
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        dist,
        source,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("lipsync_api-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", f"{wheel}[mock]", "pytest", cwd=tmp_path)

    probe = (
        "import importlib.util, contracts, mock_server.pytest_plugin, lipsync.client, mock_server.app;"
        "print(contracts.__file__);"
        "print('torch' if importlib.util.find_spec('torch') else 'absent')"
    )
    where, torch = _run(python, "-c", probe, cwd=tmp_path).split()
    assert Path(where).is_relative_to(env_dir), where  # imported from the install, not this checkout
    assert torch == "absent"

    project = tmp_path / "client_project"
    project.mkdir()
    (project / "test_client.py").write_text(CLIENT_TEST)
    out = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert "1 passed" in out
