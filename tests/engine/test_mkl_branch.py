"""tests/conftest.py pins MKL to one code path for the parity tests; check that it took effect.

MKL reads ``MKL_CBWR`` once, at its first call, so setting it too late is silently ignored. The branch MKL
runs is read back through ``mkl_serv_cbwr_get`` (exported by torch's statically linked MKL) and compared
with fresh interpreters started with and without the variable.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import MKL_BRANCH

_READ_BRANCH = """
import ctypes, pathlib, torch
lib = ctypes.CDLL(str(pathlib.Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
get = lib.mkl_serv_cbwr_get
get.restype, get.argtypes = ctypes.c_int, [ctypes.c_int]
print(get(1))  # MKL_CBWR_BRANCH
"""


def _mkl_branch_getter() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        get = lib.mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return None
    get.restype, get.argtypes = ctypes.c_int, [ctypes.c_int]
    return get


def _branch_in_fresh_interpreter(mkl_cbwr: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    if mkl_cbwr is not None:
        env["MKL_CBWR"] = mkl_cbwr
    out = subprocess.run(
        [sys.executable, "-c", _READ_BRANCH], env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def test_parity_tests_run_the_pinned_mkl_branch() -> None:
    get = _mkl_branch_getter()
    if not torch.backends.mkl.is_available() or get is None:
        pytest.skip("this torch build has no MKL: there is no CPU-specific branch to pin")
    assert os.environ["MKL_CBWR"] == MKL_BRANCH
    current = get(1)
    assert current == _branch_in_fresh_interpreter(MKL_BRANCH)
    assert current != _branch_in_fresh_interpreter(None)  # the check can tell the branches apart
