"""Shared test helpers: where ../shared lives.

Tests that need ../shared (fixtures, media) find it next to the repository root or through
LIPSYNC_SHARED_DIR. When it is missing they skip with the reason — except under CI=true, where a
missing fixture is a failure (a skip must never stand in for a pass in CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# MKL picks its FFT/LAPACK/BLAS kernels by CPU model (AVX-512 where the CPU has it), so the same
# float32 maths rounds differently from one machine to the next. Pinning one branch makes the parity tests
# (mel, alignment crops) reproducible at tight tolerances on any AVX2 CPU. AVX2 rather than the generic
# "COMPATIBLE" branch: both give the same parity here (mel 1.2e-7, crops bit-exact), but COMPATIBLE's GEMM
# makes a 4-window Whisper batch differ from one window at a time by 2.4e-6 (test_audio pins 1e-6), AVX2's
# does not. MKL reads this once, at its first call, so it is set here, at the root conftest's import (after
# importing pytest or torch is fine); tests/engine/test_mkl_branch.py checks that it took effect.
MKL_BRANCH = "AVX2"
os.environ["MKL_CBWR"] = MKL_BRANCH

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    env = os.environ.get("LIPSYNC_SHARED_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared"


SHARED_DIR = _shared_dir()
FIXTURES_DIR = SHARED_DIR / "reference" / "fixtures"
MEDIA_DIR = SHARED_DIR / "media"


def require_path(path: Path) -> Path:
    """Return *path* if it exists; otherwise skip (locally) or fail (under CI=true)."""
    if path.exists():
        return path
    msg = f"missing shared test data: {path} (set LIPSYNC_SHARED_DIR)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return require_path(FIXTURES_DIR)


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return require_path(MEDIA_DIR)
