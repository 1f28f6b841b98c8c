"""Reading reference-format checkpoints and checking them strictly against a model's state-dict layout.

The reference loader uses ``load_state_dict(strict=False)``, so a checkpoint of the wrong version silently
leaves layers at random init (LatentSync issue #171). We refuse any missing key, unexpected key or wrong
shape and name them in a :class:`~lipsync.errors.WeightsError`.

Memory: ``torch.load(mmap=True)`` maps the file instead of reading it, and the caller assigns the mapped
tensors into a meta-device model (``load_state_dict(assign=True)``), so the weights exist once in memory.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from lipsync.errors import WeightsError

__all__ = ["StateDictSource", "check_state_dict", "read_state_dict"]

StateDictSource = str | os.PathLike[str] | Mapping[str, torch.Tensor]

_MAX_LISTED = 12


def _load_file(path: Path) -> object:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        return torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except RuntimeError as exc:
        # Legacy (pre-zipfile) pickles cannot be memory-mapped; read them the ordinary way.
        if "mmap" not in str(exc) and "zip" not in str(exc).lower():
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def read_state_dict(source: StateDictSource, *, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Return the flat state dict held by ``source``.

    ``source`` is a path to a reference ``.pt`` file (``{"global_step", "state_dict"}``), a bare state-dict
    ``.pt``, a ``.safetensors`` file, or an in-memory mapping (either form). Unreadable files raise
    :class:`WeightsError`.
    """
    obj: object
    if isinstance(source, Mapping):
        obj = source
    else:
        path = Path(source)
        if not path.is_file():
            raise WeightsError(f"{what} not found: {path}")
        try:
            obj = _load_file(path)
        except (
            RuntimeError,
            pickle.UnpicklingError,
            EOFError,
            OSError,
            ValueError,
            zipfile.BadZipFile,
        ) as exc:
            raise WeightsError(f"{what} {path} is not a readable torch checkpoint: {exc}") from exc
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{what} does not hold a state dict (got {type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{what}: entries that are not named tensors: {_names(bad)}")
    return dict(obj)


def _names(keys: list[str] | list[object]) -> str:
    shown = ", ".join(str(k) for k in keys[:_MAX_LISTED])
    more = len(keys) - _MAX_LISTED
    return shown + (f", … and {more} more" if more > 0 else "")


def check_state_dict(
    expected: Mapping[str, torch.Size], state_dict: Mapping[str, torch.Tensor], *, what: str = "checkpoint"
) -> None:
    """Raise :class:`WeightsError` unless ``state_dict`` has exactly the keys and shapes of ``expected``."""
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [
        f"{k} (expected {tuple(shape)}, got {tuple(state_dict[k].shape)})"
        for k, shape in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(shape)
    ]
    not_float = [k for k, v in state_dict.items() if k in expected and not v.is_floating_point()]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_names(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_names(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} wrong shape(s): {_names(wrong)}")
    if not_float:
        problems.append(f"{len(not_float)} non-floating tensor(s): {_names(not_float)}")
    if problems:
        raise WeightsError(f"{what} does not match the model layout: " + "; ".join(problems))
