"""API keys, kept only as SHA-256 hashes, and the owner id each key's jobs are filed under.

Keys come from ``LIPSYNC_API_KEYS`` (comma-separated). An entry ``sha256:<64 hex>`` is an already-hashed
key, so a deployment need not keep plaintext keys in its environment at all. Plaintext entries are hashed
at start-up and dropped. A presented key is hashed and compared with every stored hash in constant time.

The owner id (``k_`` + 12 hex of the hash) names a key in job records and webhook secrets without
revealing it; jobs are visible only to the key that created them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lipsync.server.settings import ServerSettings
from lipsync.server.signing import UPLOAD_PREFIX
from lipsync.web import BodyLimits, extract_bearer

__all__ = ["Keyring", "Principal", "generate_api_key", "guard_options", "hash_key"]

_HASHED = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_api_key() -> str:
    return "ls_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as."""

    owner: str


class Keyring:
    def __init__(self, entries: Iterable[str]) -> None:
        hashes: list[bytes] = []
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            match = _HASHED.match(entry)
            hashes.append(bytes.fromhex(match.group(1) if match else hash_key(entry)))
        self._hashes = tuple(dict.fromkeys(hashes))

    def __len__(self) -> int:
        return len(self._hashes)

    def authenticate(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found: bytes | None = None
        # Every stored hash is compared (no early exit), so timing does not tell which key matched.
        for stored in self._hashes:
            if hmac.compare_digest(digest, stored):
                found = stored
        return Principal(owner="k_" + found.hex()[:12]) if found is not None else None


def guard_options(settings: ServerSettings, keyring: Keyring) -> dict[str, Any]:
    """``RequestGuard``'s arguments for the server: its limits, its key check, and the signed upload
    target (credential in the URL, capped while streaming by the size the ticket signed)."""

    def authenticate(authorization: str | None) -> bool:
        token = extract_bearer(authorization)
        return token is not None and keyring.authenticate(token) is not None

    limits = BodyLimits.for_media(
        json_bytes=settings.max_json_bytes,
        media_bytes=settings.max_input_bytes,
        anonymous_bytes=settings.max_unauthenticated_bytes,
        idle_timeout_s=settings.body_timeout_s,
    )
    return {"limits": limits, "authenticate": authenticate, "signed": (UPLOAD_PREFIX,)}
