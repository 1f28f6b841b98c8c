"""Choosing the torch device and the compute precision.

The automatic choice follows the reference (``scripts/inference.py``): the U-Net and the VAE run in float16
on CUDA GPUs of compute capability 8 or newer (Ampere+) and in float32 everywhere else (CPU, V100, T4, RTX 20xx);
the Whisper encoder runs its activations in float16 on *any* CUDA GPU. Anything else (bfloat16, float32 on a
new GPU, a given GPU index) is an explicit override, because it changes outputs relative to the reference.
"""

from __future__ import annotations

import torch

from lipsync.errors import EngineError

__all__ = ["DTYPE_NAMES", "parse_dtype", "select_audio_dtype", "select_device", "select_dtype"]

#: Accepted spellings of each precision.
DTYPE_NAMES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "float": torch.float32,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
}


def select_device(requested: str | torch.device | None = None) -> torch.device:
    """Resolve ``None``/``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises :class:`EngineError` when a GPU is asked for and not there, so a misconfigured server fails at
    start-up with a message instead of silently running 100x slower on the CPU.
    """
    if isinstance(requested, torch.device):
        requested = str(requested)
    name = (requested or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else _cpu()
    if name == "cpu":
        return _cpu()
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise EngineError(f"device {requested!r} requested but CUDA is not available on this machine")
        index_text = name.partition(":")[2]
        if not index_text:
            return torch.device("cuda", torch.cuda.current_device())
        if not index_text.isdigit():
            raise EngineError(f"invalid device {requested!r}: expected 'cuda:<index>'")
        index = int(index_text)
        count = torch.cuda.device_count()
        if index >= count:
            raise EngineError(f"device {requested!r} requested but only {count} CUDA device(s) are visible")
        return torch.device("cuda", index)
    raise EngineError(f"unsupported device {requested!r}: use 'auto', 'cpu', 'cuda' or 'cuda:<index>'")


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    """``"fp32"|"fp16"|"bf16"`` (and the long spellings) to a torch dtype."""
    if isinstance(name, torch.dtype):
        if name not in DTYPE_NAMES.values():
            raise EngineError(f"unsupported precision {name}: use fp32, fp16 or bf16")
        return name
    key = name.strip().lower()
    if key not in DTYPE_NAMES:
        raise EngineError(f"unsupported precision {name!r}: use 'auto', 'fp32', 'fp16' or 'bf16'")
    return DTYPE_NAMES[key]


def select_dtype(device: torch.device | str, requested: str | torch.dtype | None = None) -> torch.dtype:
    """Precision for the U-Net and the VAE on *device*.

    ``None``/``"auto"``: float32 on CPU; on CUDA float16 when the GPU's compute capability is >= 8 (as the
    reference), else float32. An explicit request is checked against what the device can do.
    """
    device = torch.device(device)
    if requested is None or (isinstance(requested, str) and requested.strip().lower() == "auto"):
        if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8:
            return torch.float16
        return torch.float32
    dtype = parse_dtype(requested)
    if device.type == "cpu" and dtype is torch.float16:
        # Many CPU kernels (conv, group norm) have no float16 path, or a very slow one.
        raise EngineError("fp16 is not supported on the CPU: use fp32 (default) or bf16")
    if device.type == "cuda" and dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise EngineError(f"bf16 requested but {torch.cuda.get_device_name(device)} does not support it")
    return dtype


def select_audio_dtype(device: torch.device | str, requested: str | torch.dtype | None = None) -> torch.dtype:
    """Precision for the Whisper encoder: the reference runs it in float16 on every CUDA GPU, float32 on CPU."""
    device = torch.device(device)
    if requested is None or (isinstance(requested, str) and requested.strip().lower() == "auto"):
        return torch.float16 if device.type == "cuda" else torch.float32
    return select_dtype(device, requested)


def _cpu() -> torch.device:
    return torch.device("cpu")
