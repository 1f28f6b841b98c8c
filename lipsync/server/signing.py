"""Signed, expiring URLs for downloads and uploads, and per-key webhook secrets.

A download link is ``{base}/files/{key}?expires=<epoch>&sig=<hmac>``; an upload target is
``{base}/uploads/{key}?expires=...&max=<bytes>&sig=...`` (the SDK's PUT carries no Authorization header,
so the URL itself is the credential). The HMAC covers the purpose, the key, the expiry and the size cap,
so a download signature cannot be replayed as an upload and no parameter can be edited.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

__all__ = ["DOWNLOAD_PREFIX", "UPLOAD_PREFIX", "SignedRef", "UrlSigner"]

DOWNLOAD_PREFIX = "/files/"
UPLOAD_PREFIX = "/uploads/"


@dataclass(frozen=True, slots=True)
class SignedRef:
    """A verified reference to one of our own stored objects."""

    key: str
    expires: int


def _same(given: str, expected: str) -> bool:
    # As bytes: ``compare_digest`` refuses non-ASCII str (a TypeError, i.e. a 500, for a forged ``sig``).
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


class UrlSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("signing secret must be at least 16 bytes")
        self._secret = secret

    def _mac(self, purpose: str, key: str, expires: int, extra: str = "") -> str:
        msg = f"{purpose}\n{key}\n{expires}\n{extra}".encode()
        digest = hmac.new(self._secret, msg, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")

    # -- downloads -------------------------------------------------------------------------------------

    def download_url(self, base_url: str, key: str, *, expires: int) -> str:
        query = urlencode({"expires": expires, "sig": self._mac("get", key, expires)})
        return f"{base_url.rstrip('/')}{DOWNLOAD_PREFIX}{quote(key)}?{query}"

    def check_download(self, key: str, expires: int, sig: str, *, now: float) -> bool:
        return expires >= now and _same(sig, self._mac("get", key, expires))

    def parse_download_url(self, url: str, *, now: float) -> SignedRef | None:
        """If *url* is a valid, unexpired download link of ours (any host: proxies rename), its reference."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.path.startswith(DOWNLOAD_PREFIX):
            return None
        key = parts.path[len(DOWNLOAD_PREFIX) :]
        query = parse_qs(parts.query)
        try:
            expires = int(query["expires"][0])
            sig = query["sig"][0]
        except (KeyError, IndexError, ValueError):
            return None
        key = unquote(key)
        if not self.check_download(key, expires, sig, now=now):
            return None
        return SignedRef(key=key, expires=expires)

    # -- uploads ---------------------------------------------------------------------------------------

    def upload_url(self, base_url: str, key: str, *, expires: int, max_bytes: int) -> str:
        sig = self._mac("put", key, expires, str(max_bytes))
        query = urlencode({"expires": expires, "max": max_bytes, "sig": sig})
        return f"{base_url.rstrip('/')}{UPLOAD_PREFIX}{quote(key)}?{query}"

    def check_upload(self, key: str, expires: int, max_bytes: int, sig: str, *, now: float) -> bool:
        return expires >= now and _same(sig, self._mac("put", key, expires, str(max_bytes)))

    # -- webhooks --------------------------------------------------------------------------------------

    def webhook_secret(self, owner: str) -> str:
        """The ``whsec_`` secret callbacks for *owner*'s jobs are signed with (stable across restarts)."""
        digest = hmac.new(self._secret, f"webhook\n{owner}".encode(), hashlib.sha256).hexdigest()
        return f"whsec_{digest[:48]}"
