"""The recorded responses the client tests use are valid under the committed contracts."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import BinaryUploadResponse, PredictionResponse, UploadTicketResponse
from tests.client._recorded import (
    BINARY_RESULT,
    COMPLETED,
    CREATED,
    FAILED_1402,
    PROCESSING,
    TICKET,
    envelope,
)


@pytest.mark.parametrize("data", [CREATED, PROCESSING, COMPLETED, FAILED_1402], ids=lambda d: d["status"])
def test_prediction_examples_follow_the_contract(data: dict[str, Any]) -> None:
    parsed = PredictionResponse.model_validate(envelope(data))
    assert parsed.model_dump(mode="json") == envelope(data)


def test_upload_examples_follow_the_contract() -> None:
    assert UploadTicketResponse.model_validate(envelope(TICKET)).data.upload.method == "PUT"
    assert (
        BinaryUploadResponse.model_validate(envelope(BINARY_RESULT)).data.download_url
        == BINARY_RESULT["download_url"]
    )
