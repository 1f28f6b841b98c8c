"""Keep native libraries' start-up chatter (TFLite, glog/absl in MediaPipe) out of the user's terminal.

MediaPipe's C++ code writes straight to file descriptor 2 ("Created TensorFlow Lite XNNPACK delegate",
"All log messages before absl::InitializeLog()", "Feedback manager requires a model with a single
signature") when its graphs are built; no environment variable silences all of it. Building the graphs
with fd 2 pointed at a temporary file and replaying that file at DEBUG keeps the lines available
(``--log-level debug``) without alarming anyone at INFO.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["quiet_native_stderr"]

log = logging.getLogger("lipsync.native")


@contextlib.contextmanager
def quiet_native_stderr(source: str) -> Iterator[None]:
    """Send what native code writes to fd 2 inside the block to the ``lipsync.native`` logger (DEBUG).

    Meant for one-off set-up calls (building a detector), not hot paths: fd 2 is process-wide, so another
    thread's stderr writes during the block are captured too (and replayed, not lost).
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreter): nothing to quieten
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError, OSError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode("utf-8", "replace").splitlines():
                if line.strip():
                    log.debug("%s: %s", source, line)
