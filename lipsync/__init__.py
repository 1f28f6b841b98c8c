"""lipsync: LatentSync lip-sync inference behind a WaveSpeed-compatible API.

Heavy parts (torch engine, server) are imported lazily so that ``import lipsync`` and
``lipsync.client`` work on the torch-free ``[mock]`` install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from lipsync.pipeline import LipSync

__all__ = ["LipSync", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "LipSync":
        from lipsync.pipeline import LipSync

        return LipSync
    raise AttributeError(f"module 'lipsync' has no attribute {name!r}")
