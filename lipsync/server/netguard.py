"""Which addresses the server may connect to on a user's behalf (input URLs, webhooks): the SSRF guard.

Rules: only http and https; the host name is resolved here and every address it resolves to must be
public (not loopback, private, link-local, multicast, reserved, unspecified or otherwise non-global,
IPv4-mapped IPv6 unwrapped first). The connection is then made to the address that was checked (the URL
is rewritten to the IP, with the original ``Host`` header and TLS server name), so a DNS answer that
changes between the check and the connect (DNS rebinding) cannot redirect it. Callers apply the check
again to every redirect target.

``allow`` (``LIPSYNC_FETCH_ALLOW``) lists exceptions for development and tests: a host name (exact,
case-insensitive) is trusted whatever it resolves to; an IP or CIDR admits those addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

__all__ = ["AddressPolicy", "PinnedTarget", "Refused", "Resolver", "system_resolver"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]


class Refused(Exception):
    """The URL may not be fetched (scheme, address class, or a name that does not resolve)."""


class AddressRefused(Refused):
    """The URL's host is (or resolves to) a loopback, private or otherwise non-public address."""


async def system_resolver(host: str, port: int) -> list[str]:
    """All addresses of *host* (A and AAAA) through the system resolver."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def blocked_reason(ip: IPAddress) -> str | None:
    """Why connecting to *ip* is refused by default, or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for attr, reason in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(ip, attr):
            return reason
    if not ip.is_global:
        return "non-public"
    return None


@dataclass(frozen=True, slots=True)
class PinnedTarget:
    """Where to actually connect for *original_url*."""

    original_url: str
    url: str  # the URL with the checked IP as its host
    host_header: str
    server_name: str  # TLS SNI and certificate name


class AddressPolicy:
    def __init__(self, allow: Sequence[str] = (), *, resolver: Resolver | None = None) -> None:
        self.allowed_hosts: set[str] = set()
        self.allowed_networks: list[IPNetwork] = []
        for entry in allow:
            text = entry.strip().lower()
            if not text:
                continue
            try:
                self.allowed_networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                self.allowed_hosts.add(text)
        self._resolve = resolver or system_resolver

    @property
    def relaxed(self) -> bool:
        """True when exceptions are configured (``lipsync serve`` warns about it)."""
        return bool(self.allowed_hosts or self.allowed_networks)

    def check_address(self, ip: IPAddress) -> None:
        if any(ip in net for net in self.allowed_networks if net.version == ip.version):
            return
        reason = blocked_reason(ip)
        if reason is not None:
            raise AddressRefused(f"address {ip} is {reason}")

    async def pin(self, url: str) -> PinnedTarget:
        """Check *url* and return the connection target; raise Refused."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise Refused(f"scheme {parts.scheme or '(none)'!r} is not allowed (http and https only)")
        host = (parts.hostname or "").lower()
        if not host:
            raise Refused("URL has no host")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise Refused("URL has an invalid port") from None
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            try:
                found = await self._resolve(host, port)
            except OSError as exc:
                raise Refused(f"host {host!r} does not resolve ({exc})") from None
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
            if not addresses:
                raise Refused(f"host {host!r} does not resolve")
        if host not in self.allowed_hosts:
            for ip in addresses:
                try:
                    self.check_address(ip)
                except Refused as exc:
                    if literal is not None:
                        raise
                    raise Refused(f"host {host!r} resolves to a refused address: {exc}") from None
        chosen = addresses[0]
        ip_host = f"[{chosen}]" if chosen.version == 6 else str(chosen)
        default_port = 443 if scheme == "https" else 80
        netloc = ip_host if port == default_port else f"{ip_host}:{port}"
        host_header = host if port == default_port else f"{host}:{port}"
        if ":" in host and literal is not None and literal.version == 6:
            host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
        pinned = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
        return PinnedTarget(original_url=url, url=pinned, host_header=host_header, server_name=host)
