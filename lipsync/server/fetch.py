"""Downloading input URLs safely: the SSRF guard on every hop, a size cap and a time cap.

Redirects are followed here, one at a time (httpx's own following would skip the address check), and
the body is streamed to disk and cut off at ``max_bytes``. Whether the bytes are media is checked by the
caller (``inputs.py``) for every kind of input alike.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urljoin

import httpx

from lipsync.errors import MediaFetchError
from lipsync.server.interfaces import FetchResult
from lipsync.web.netguard import AddressPolicy, AddressRefused, Refused, guarded_request

__all__ = ["LOCAL_FETCH_HINT", "HttpFetcher", "guarded_request"]

#: Said with every refusal of a non-public address: in development the media usually sits on this machine,
#: and the two ways to use it are an explicit allowance or the upload route (which needs no fetch at all).
LOCAL_FETCH_HINT = (
    "Non-public addresses are refused to protect the server's network; to fetch from this machine in "
    "development allow it with LIPSYNC_FETCH_ALLOW=127.0.0.1 (lipsync serve --fetch-allow 127.0.0.1, "
    "make serve FETCH_ALLOW=127.0.0.1), or upload the file first and submit its download_url: "
    "POST /api/v3/media/uploads (wavespeed SDK: client.upload(path); lipsync.client: pass a pathlib.Path)"
)

_REDIRECTS = (301, 302, 303, 307, 308)


class HttpFetcher:
    """The production Fetcher (http/https only; ``data:`` URIs never reach it)."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        max_bytes: int,
        timeout_s: float = 60.0,
        max_redirects: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self._transport = transport

    def _client(self) -> httpx.AsyncClient:
        # A fresh client per download: connections are made to pinned IPs with per-host TLS names, and a
        # shared pool could hand one host's TLS connection to another host on the same address.
        # trust_env=False: an environment proxy would make the connection somewhere we did not check.
        return httpx.AsyncClient(
            transport=self._transport,
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(self.timeout_s),
        )

    async def fetch(self, url: str, dest: Path) -> FetchResult:
        try:
            async with asyncio.timeout(self.timeout_s), self._client() as client:
                return await self._fetch(client, url, dest)
        except TimeoutError:
            raise MediaFetchError(f"download took longer than {self.timeout_s:g} s") from None
        except AddressRefused as exc:
            raise MediaFetchError(f"refused to fetch: {exc}. {LOCAL_FETCH_HINT}") from None
        except Refused as exc:
            raise MediaFetchError(f"refused to fetch: {exc}") from None
        except httpx.HTTPError as exc:
            raise MediaFetchError(f"download failed: {type(exc).__name__}: {exc}") from None

    async def _fetch(self, client: httpx.AsyncClient, url: str, dest: Path) -> FetchResult:
        current = url
        for _hop in range(self.max_redirects + 1):
            response = await guarded_request(client, self.policy, "GET", current)
            try:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise MediaFetchError(f"redirect without a Location header from {current}")
                    current = urljoin(current, location)
                    continue
                if response.status_code != 200:
                    raise MediaFetchError(f"the media server answered status {response.status_code}")
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                    raise MediaFetchError(f"input is larger than the {self.max_bytes} byte limit")
                size = await self._save(response, dest)
                content_type = response.headers.get("content-type")
                return FetchResult(size=size, content_type=content_type, final_url=current)
            finally:
                await response.aclose()
        raise MediaFetchError(f"more than {self.max_redirects} redirects")

    async def _save(self, response: httpx.Response, dest: Path) -> int:
        total = 0
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as fh:
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > self.max_bytes:
                    raise MediaFetchError(f"input is larger than the {self.max_bytes} byte limit")
                fh.write(chunk)
        if total == 0:
            raise MediaFetchError("the media server sent an empty body")
        return total
