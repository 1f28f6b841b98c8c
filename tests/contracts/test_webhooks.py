"""WaveSpeed v3 webhook signatures: sign/verify round trip, tampering and staleness."""

from __future__ import annotations

import hashlib
import hmac

import pytest

import contracts as c

SECRET = "whsec_c2VjcmV0LWtleQ=="
BODY = b'{"id":"t1","status":"completed"}'


def test_signature_is_hmac_of_id_ts_body_with_raw_utf8_key() -> None:
    # Computed independently of contracts.sign: the key is the secret minus "whsec_", NOT base64-decoded.
    expected = hmac.new(b"c2VjcmV0LWtleQ==", b"t1.1700000000." + BODY, hashlib.sha256).hexdigest()
    assert c.sign(SECRET, "t1", 1700000000, BODY) == f"v3,{expected}"


def test_roundtrip() -> None:
    headers = c.signature_headers(SECRET, "t1", BODY, timestamp=1700000000)
    c.verify(SECRET, headers, BODY, now=1700000100)


def test_tampered_body_is_rejected() -> None:
    headers = c.signature_headers(SECRET, "t1", BODY, timestamp=1700000000)
    with pytest.raises(c.WebhookVerificationError, match="does not match"):
        c.verify(SECRET, headers, BODY.replace(b"completed", b"failed"), now=1700000000)


def test_wrong_secret_is_rejected() -> None:
    headers = c.signature_headers(SECRET, "t1", BODY, timestamp=1700000000)
    with pytest.raises(c.WebhookVerificationError):
        c.verify("whsec_other", headers, BODY, now=1700000000)


def test_stale_timestamp_is_rejected() -> None:
    headers = c.signature_headers(SECRET, "t1", BODY, timestamp=1700000000)
    with pytest.raises(c.WebhookVerificationError, match="tolerance"):
        c.verify(SECRET, headers, BODY, now=1700000000 + 301)


def test_missing_header_is_rejected() -> None:
    headers = c.signature_headers(SECRET, "t1", BODY, timestamp=1700000000)
    del headers["webhook-signature"]
    with pytest.raises(c.WebhookVerificationError, match="missing header"):
        c.verify(SECRET, headers, BODY, now=1700000000)


def test_rotated_keys_any_signature_matches() -> None:
    headers = c.signature_headers(SECRET, "t1", BODY, timestamp=1700000000)
    headers["webhook-signature"] = "v3,deadbeef " + headers["webhook-signature"]
    c.verify(SECRET, headers, BODY, now=1700000000)
