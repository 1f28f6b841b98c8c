"""Which addresses the server may connect to on a user's behalf (input URLs, webhooks): the SSRF guard.

Rules: only http and https; the host name is resolved here and every address it resolves to must be
public (not loopback, private, link-local, multicast, reserved, unspecified or otherwise non-global).
An IPv6 address that carries an IPv4 one (IPv4-mapped ``::ffff:0:0/96``, 6to4 ``2002::/16``, NAT64
``64:ff9b::/96``, Teredo ``2001::/32``) is judged by the IPv4 address(es) inside it too, since a gateway on
the path may deliver it there. The connection is then made to the address that was checked (the URL
is rewritten to the IP, with the original ``Host`` header and TLS server name), so a DNS answer that
changes between the check and the connect (DNS rebinding) cannot redirect it. Callers apply the check
again to every redirect target.

``guarded_request`` sends one request that way (the server's fetcher and webhooks, and the mock's
webhooks, use it). ``allow`` (``LIPSYNC_FETCH_ALLOW``) lists exceptions for development and tests: a host name (exact,
case-insensitive) is trusted whatever it resolves to; an IP or CIDR admits those addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

__all__ = [
    "USER_AGENT",
    "AddressPolicy",
    "PinnedTarget",
    "Refused",
    "Resolver",
    "guarded_request",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

USER_AGENT = "lipsync-server (+https://github.com/bytedance/LatentSync compatible)"


class Refused(Exception):
    """The URL may not be fetched (scheme, address class, or a name that does not resolve)."""


class AddressRefused(Refused):
    """The URL's host is (or resolves to) a loopback, private or otherwise non-public address."""


async def system_resolver(host: str, port: int) -> list[str]:
    """All addresses of *host* (A and AAAA) through the system resolver."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[ipaddress.IPv4Address, str]]:
    """The IPv4 addresses an IPv6 address carries, each with the name of the form that carries it."""
    found: list[tuple[ipaddress.IPv4Address, str]] = []
    if ip.ipv4_mapped is not None:
        found.append((ip.ipv4_mapped, "IPv4-mapped"))
    if ip.sixtofour is not None:
        found.append((ip.sixtofour, "6to4"))
    if ip in _NAT64:
        found.append((ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"))
    if ip.teredo is not None:
        server, client = ip.teredo
        found += [(server, "Teredo server"), (client, "Teredo client")]
    return found


def blocked_reason(ip: IPAddress) -> str | None:
    """Why connecting to *ip* is refused by default, or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        for inner, form in embedded_ipv4(ip):
            reason = blocked_reason(inner)
            if reason is not None:
                return f"{reason} ({form} {inner})"
        if ip.ipv4_mapped is not None:
            return None  # judged by the IPv4 address alone (::ffff:0:0/96 itself is not "global")
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


async def guarded_request(
    client: httpx.AsyncClient,
    policy: AddressPolicy,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    """One request to a checked, pinned address (no redirects followed); the response is streamed."""
    target = await policy.pin(url)
    sent = {"User-Agent": USER_AGENT, **(headers or {}), "Host": target.host_header}
    extensions = {"sni_hostname": target.server_name} if target.url.startswith("https:") else {}
    request = client.build_request(method, target.url, headers=sent, content=content, extensions=extensions)
    return await client.send(request, stream=True)
