"""Engine factories for ``lipsync serve`` in the playground's browser tests (``LIPSYNC_ENGINE_FACTORY``)."""

from __future__ import annotations

import os
from typing import NoReturn


def exiting_engine(device: str) -> NoReturn:
    """Ends its worker process while the engine loads (as a crash in a native library would): the
    runner restarts the worker, ever more slowly."""
    os._exit(4)
