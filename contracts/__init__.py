"""Everything the lip-sync API exchanges, as pydantic v2 models (no FastAPI, no torch).

The server, the mock, the client and client projects' tests all import these, so they cannot drift.
"""

from __future__ import annotations

from contracts._common import (
    API_PREFIX,
    DEFAULT_BASE_URL,
    MODEL_ID,
    TERMINAL_STATUSES,
    Paths,
    PredictionStatus,
    TaskErrorCode,
    result_url,
    utc_now_iso,
)
from contracts._envelope import Envelope, ErrorEnvelope, error_envelope, ok
from contracts._faces import FaceAuto, FaceBoxes, FaceChoice, FacePoint, FaceReport, NormalisedBox
from contracts._history import DeleteRequest, DeleteResult, HistoryPage, HistoryRequest, WebhookSecret
from contracts._options import LOCAL, Bounds, LoopMode, ModelVersion, OnNoFace, RunOptions
from contracts._prediction import Prediction, PredictionUrls, Timings
from contracts._request import (
    MAX_URL_LENGTH,
    MEDIA_REF_PATTERN,
    WEBHOOK_URL_PATTERN,
    LipsyncRequest,
    MediaRef,
    data_uri_size,
    describe_validation_error,
    is_data_uri,
    parse_data_uri,
)
from contracts._uploads import (
    DEFAULT_MAX_UPLOAD_BYTES,
    BinaryUploadResult,
    UploadInstruction,
    UploadTicket,
    UploadTicketRequest,
    media_type_of,
)
from contracts._webhooks import SIGNATURE_VERSION, WebhookVerificationError, sign, signature_headers, verify

PredictionResponse = Envelope[Prediction]
UploadTicketResponse = Envelope[UploadTicket]
BinaryUploadResponse = Envelope[BinaryUploadResult]
HistoryResponse = Envelope[HistoryPage]
DeleteResponse = Envelope[DeleteResult]
WebhookSecretResponse = Envelope[WebhookSecret]

#: What a webhook callback body is: the bare prediction object, no envelope.
WebhookPayload = Prediction

__all__ = [
    "API_PREFIX",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "LOCAL",
    "MAX_URL_LENGTH",
    "MEDIA_REF_PATTERN",
    "MODEL_ID",
    "SIGNATURE_VERSION",
    "TERMINAL_STATUSES",
    "WEBHOOK_URL_PATTERN",
    "BinaryUploadResponse",
    "BinaryUploadResult",
    "Bounds",
    "DeleteRequest",
    "DeleteResponse",
    "DeleteResult",
    "Envelope",
    "ErrorEnvelope",
    "FaceAuto",
    "FaceBoxes",
    "FaceChoice",
    "FacePoint",
    "FaceReport",
    "HistoryPage",
    "HistoryRequest",
    "HistoryResponse",
    "LipsyncRequest",
    "LoopMode",
    "MediaRef",
    "ModelVersion",
    "NormalisedBox",
    "OnNoFace",
    "Paths",
    "Prediction",
    "PredictionResponse",
    "PredictionStatus",
    "PredictionUrls",
    "RunOptions",
    "TaskErrorCode",
    "Timings",
    "UploadInstruction",
    "UploadTicket",
    "UploadTicketRequest",
    "UploadTicketResponse",
    "WebhookPayload",
    "WebhookSecret",
    "WebhookSecretResponse",
    "WebhookVerificationError",
    "data_uri_size",
    "describe_validation_error",
    "error_envelope",
    "is_data_uri",
    "media_type_of",
    "ok",
    "parse_data_uri",
    "result_url",
    "sign",
    "signature_headers",
    "utc_now_iso",
    "verify",
]
