"""What became of a FunctionCall, in the job's terms: still going, or ended and how.

``FunctionCall.get(timeout=0)`` answers with the builtin ``TimeoutError`` while the call is queued or
running (Modal is still running it, or retrying it after a crash or a preemption), returns the result once
it ended normally, raises the call's error after its last retry, raises ``FunctionTimeoutError`` when
Modal's timeout stopped it, and raises ``OutputExpiredError`` once the result is gone. A cancelled call
raises ``InputCancellation`` (a BaseException, caught by name here and nowhere else).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from modal.exception import ConnectionError as ModalConnectionError
from modal.exception import FunctionTimeoutError, InputCancellation, OutputExpiredError

from contracts import TaskErrorCode
from lipsync.server.execution import safe_error_text
from lipsync.server.modal_backends.handles import CallHandle, CallLookup

__all__ = ["CallOutcome", "inspect_call", "lookup_outcome"]

log = logging.getLogger(__name__)

CallState = Literal["pending", "returned", "failed", "timeout", "cancelled", "expired", "unknown"]


@dataclass(frozen=True)
class CallOutcome:
    state: CallState
    detail: str = ""

    @property
    def ended(self) -> bool:
        return self.state not in ("pending", "unknown")

    def job_error(self, call_id: str, *, timeout_s: float | None = None) -> tuple[str, int]:
        """The ``(error, code)`` of a job whose call ended like this without recording an outcome."""
        if self.state == "timeout":
            limit = f" ({timeout_s:g} s)" if timeout_s else ""
            return (
                f"timeout: the GPU worker was stopped by Modal's function timeout{limit}",
                int(TaskErrorCode.TIMEOUT),
            )
        if self.state == "expired":
            return (
                f"internal_error: the GPU worker's result (Modal FunctionCall {call_id}) expired before this "
                "server collected it; the job's outcome is unknown, please submit it again",
                int(TaskErrorCode.INTERNAL_ERROR),
            )
        if self.state == "cancelled":
            return (
                f"internal_error: the GPU worker (Modal FunctionCall {call_id}) was cancelled",
                int(TaskErrorCode.INTERNAL_ERROR),
            )
        if self.state == "returned":
            return (
                f"internal_error: the GPU worker (Modal FunctionCall {call_id}) ended without recording "
                "an outcome",
                int(TaskErrorCode.INTERNAL_ERROR),
            )
        return (
            safe_error_text(
                f"internal_error: the GPU worker failed after Modal's retries (FunctionCall {call_id}): "
                f"{self.detail}"
            ),
            int(TaskErrorCode.INTERNAL_ERROR),
        )


def inspect_call(call: CallHandle) -> CallOutcome:
    """Poll once without waiting (blocking: run it in a thread)."""
    try:
        call.get(timeout=0)
    except OutputExpiredError:  # before TimeoutError-like checks: it is modal's TimeoutError, not the builtin
        return CallOutcome("expired")
    except FunctionTimeoutError as exc:
        return CallOutcome("timeout", str(exc))
    except TimeoutError:
        return CallOutcome("pending")
    except InputCancellation:
        return CallOutcome("cancelled")
    except ModalConnectionError as exc:  # we could not ask; the call itself may be fine
        return CallOutcome("unknown", str(exc))
    except Exception as exc:
        return CallOutcome("failed", f"{type(exc).__name__}: {exc}")
    return CallOutcome("returned")


def lookup_outcome(lookup: CallLookup, call_id: str) -> CallOutcome:
    """``inspect_call(lookup(call_id))``, with lookup failures (an unknown id, Modal unreachable) as unknown."""
    try:
        call = lookup(call_id)
    except Exception as exc:
        log.warning("cannot look up FunctionCall %s: %s", call_id, exc)
        return CallOutcome("unknown", str(exc))
    return inspect_call(call)
