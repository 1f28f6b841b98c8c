"""Device and precision selection (lipsync.engine.device)."""

from __future__ import annotations

import pytest
import torch

from lipsync.engine.device import parse_dtype, select_audio_dtype, select_device, select_dtype
from lipsync.errors import EngineError

HAS_CUDA = torch.cuda.is_available()


def test_auto_picks_cuda_when_present_else_cpu() -> None:
    assert select_device(None).type == ("cuda" if HAS_CUDA else "cpu")
    assert select_device("auto") == select_device(None)
    assert select_device("CPU") == torch.device("cpu")
    assert select_device(torch.device("cpu")) == torch.device("cpu")


def test_invalid_device_names() -> None:
    with pytest.raises(EngineError, match="unsupported device"):
        select_device("tpu")
    if HAS_CUDA:
        with pytest.raises(EngineError, match="visible"):
            select_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(EngineError, match="CUDA is not available"):
            select_device("cuda:1")


def test_cpu_precision() -> None:
    cpu = torch.device("cpu")
    assert select_dtype(cpu) is torch.float32
    assert select_dtype(cpu, "auto") is torch.float32
    assert select_dtype(cpu, "bf16") is torch.bfloat16
    assert select_dtype("cpu", "fp32") is torch.float32
    with pytest.raises(EngineError, match="fp16 is not supported on the CPU"):
        select_dtype(cpu, "fp16")
    assert select_audio_dtype(cpu) is torch.float32


def test_dtype_names() -> None:
    assert parse_dtype("float16") is torch.float16
    assert parse_dtype("BF16") is torch.bfloat16
    assert parse_dtype(torch.float32) is torch.float32
    with pytest.raises(EngineError, match="unsupported precision"):
        parse_dtype("int8")


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_cuda_precision_follows_the_reference_rule() -> None:
    gpu = select_device("cuda")
    major = torch.cuda.get_device_capability(gpu)[0]
    # Reference: fp16 only on compute capability >= 8, fp32 below; whisper fp16 on any GPU.
    assert select_dtype(gpu) is (torch.float16 if major >= 8 else torch.float32)
    assert select_audio_dtype(gpu) is torch.float16
    assert select_dtype(gpu, "fp32") is torch.float32
    if torch.cuda.is_bf16_supported():
        assert select_dtype(gpu, "bf16") is torch.bfloat16
