"""Start-up settings of one mock instance (the pytest marker, ``lipsync mock`` and ``create_app`` take these)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contracts import DEFAULT_MAX_UPLOAD_BYTES
from lipsync.web import DEFAULT_JSON_BYTES
from mock_server.scenarios import parse_scenario

__all__ = ["DEFAULT_API_KEY", "DEFAULT_WEBHOOK_SECRET", "LOOPBACK", "MockConfig"]

DEFAULT_API_KEY = "mock-key"
DEFAULT_WEBHOOK_SECRET = "whsec_mock-webhook-secret"
#: Webhook targets a mock on loopback may call: the developer's own receivers (the SSRF guard's exceptions).
LOOPBACK = ("localhost", "127.0.0.0/8", "::1")


@dataclass(frozen=True)
class MockConfig:
    #: Accepted Bearer keys; ``None`` accepts any non-empty key (a missing header is still a 401).
    api_keys: tuple[str, ...] | None = None
    #: The scenario of jobs whose submit names none (``X-Mock-Scenario`` overrides it per request).
    scenario: str = "success"
    #: Seed of the id generator: the same seed and the same calls give the same prediction/upload ids.
    seed: int = 0
    #: ``virtual`` (frozen until advanced; tests) or ``system`` (wall time; ``lipsync mock``).
    clock: Literal["virtual", "system"] = "virtual"
    #: Base URL written into urls.get / outputs / upload URLs; None: taken from each request's Host.
    public_url: str | None = None
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    #: How long enable_sync_mode "waits" (clock seconds) before answering processing + code 5004.
    sync_timeout_s: int = 90
    #: Bounds, so a long-running mock or a load test cannot grow memory without limit (oldest dropped first).
    journal_size: int = 1000
    max_jobs: int = 10_000
    #: Cap of one upload (413 above it; the schema states it) and of all uploads kept in memory together.
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    #: Cap of a JSON request body (data: URIs included), as the server's ``LIPSYNC_MAX_JSON_BYTES``.
    max_json_bytes: int = DEFAULT_JSON_BYTES
    #: Base of the exponential back-off between webhook re-deliveries (real seconds).
    webhook_retry_backoff_s: float = 0.2
    #: Account balance reported by GET /api/v3/balance.
    balance: float = 100.0
    #: Bearer token the ``/__mock/*`` admin routes (journal included) require; None: open (loopback only:
    #: ``lipsync mock`` refuses a non-loopback address without one).
    admin_token: str | None = None
    #: Exceptions to the SSRF guard mock webhooks go through (hosts, IPs, CIDRs, as LIPSYNC_FETCH_ALLOW).
    webhook_allow: tuple[str, ...] = LOOPBACK
    #: Show ``Authorization`` and other secret headers in ``GET /__mock/requests`` (redacted by default;
    #: the Python API, ``mock.journal``, always has them).
    journal_secrets: bool = False
    #: Serve plain valid submits and polls without FastAPI's routing (same handlers, same bytes; see fastpath).
    fast_path: bool = True

    def __post_init__(self) -> None:
        parse_scenario(self.scenario)  # fail at start-up, not on the first submit
        if self.api_keys is not None and not all(self.api_keys):
            raise ValueError("api_keys must not contain empty keys (use None to accept any key)")
        if self.admin_token is not None and not self.admin_token:
            raise ValueError("admin_token must not be empty (use None for open admin routes)")
        if self.max_jobs < 1 or self.journal_size < 1:
            raise ValueError("max_jobs and journal_size must be at least 1")
