"""Bits shared by the route modules: response docs and the prediction-id path templates."""

from __future__ import annotations

from typing import Any

from contracts import ErrorEnvelope, Paths

RESULT = Paths.RESULT.format(id="{prediction_id}")
PREDICTION = Paths.PREDICTION.format(id="{prediction_id}")
CANCEL = Paths.CANCEL.format(id="{prediction_id}")

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorEnvelope, "description": "Unknown (or deleted) prediction"}
}
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorEnvelope, "description": "Rate limited; see Retry-After"}
}
