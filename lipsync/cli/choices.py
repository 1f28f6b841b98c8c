"""Option choices the commands share, read from the release table and the detector registry.

The values are validated by what consumes them (``LipSync``, the server settings), which raise the typed
errors the CLI reports as ``error: invalid_input: … (field: …)`` with exit code 2; so the options stay
plain strings and only their metavar and help list the choices. Both sources are torch- and numpy-free, so
``lipsync --help`` stays fast and works in the base (client-only) install.
"""

from __future__ import annotations

from lipsync.engine.releases import RELEASES, VERSIONS
from lipsync.media.faces.registry import DETECTOR_NAMES, DETECTORS

__all__ = ["DETECTOR_HELP", "DETECTOR_METAVAR", "VERSION_HELP", "VERSION_METAVAR"]

VERSION_METAVAR = "[" + "|".join(VERSIONS) + "]"
VERSION_HELP = (
    "LatentSync release: " + ", ".join(f"{r.version} ({r.resolution} px)" for r in RELEASES.values()) + "."
)
DETECTOR_METAVAR = "[" + "|".join(DETECTOR_NAMES) + "]"
DETECTOR_HELP = "Face detector. " + "; ".join(f"{s.name}: {s.description}" for s in DETECTORS.values()) + "."
