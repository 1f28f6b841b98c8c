"""The SSRF guard and the fetcher: refused addresses and schemes, redirects, size and time caps."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from lipsync.errors import MediaFetchError
from lipsync.server.fetch import LOCAL_FETCH_HINT, HttpFetcher
from lipsync.server.serving import ServerThread
from lipsync.web.netguard import AddressPolicy, Refused, blocked_reason
from tests.server.conftest import AUDIO, Harness, make_settings
from tests.server.fakes import make_mp4

PUBLIC_IP = "93.184.215.14"
DNS = {"cdn.example": [PUBLIC_IP], "evil.example": ["10.0.0.7"], "mixed.example": [PUBLIC_IP, "127.0.0.1"]}


async def fake_dns(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise OSError("Name or service not known")
    return DNS[host]


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/x.mp4", "loopback"),
        ("http://127.8.9.10:8080/x.mp4", "loopback"),
        ("http://10.1.2.3/x.mp4", "private"),
        ("http://192.168.0.10/x.mp4", "private"),
        ("http://172.16.5.5/x.mp4", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/x.mp4", "loopback"),
        ("http://[::ffff:127.0.0.1]/x.mp4", "loopback"),
        ("http://[fd00::1]/x.mp4", "private"),
        ("http://[fe80::1]/x.mp4", "link-local"),
        ("http://0.0.0.0/x.mp4", "unspecified"),
        ("http://224.0.0.1/x.mp4", "multicast"),
        ("http://240.0.0.1/x.mp4", "reserved"),
        ("http://100.64.1.1/x.mp4", "non-public"),
        ("http://evil.example/x.mp4", "private"),
        ("http://mixed.example/x.mp4", "loopback"),
    ],
)
def test_refused_addresses(url: str, reason: str) -> None:
    policy = AddressPolicy(resolver=fake_dns)
    with pytest.raises(Refused, match=reason):
        run(policy.pin(url))


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://cdn.example/a.mp4", "gopher://x/", "//cdn.example/a"]
)
def test_refused_schemes(url: str) -> None:
    with pytest.raises(Refused, match="scheme"):
        run(AddressPolicy(resolver=fake_dns).pin(url))


def test_unresolvable_host_is_refused() -> None:
    with pytest.raises(Refused, match="does not resolve"):
        run(AddressPolicy(resolver=fake_dns).pin("https://nowhere.example/a.mp4"))


def test_public_host_is_pinned_to_the_checked_address() -> None:
    target = run(AddressPolicy(resolver=fake_dns).pin("https://cdn.example:8443/a/b.mp4?x=1"))
    assert target.url == f"https://{PUBLIC_IP}:8443/a/b.mp4?x=1"  # type: ignore[attr-defined]
    assert target.host_header == "cdn.example:8443"  # type: ignore[attr-defined]
    assert target.server_name == "cdn.example"  # type: ignore[attr-defined]


def test_allow_list_admits_chosen_hosts_ips_and_networks() -> None:
    policy = AddressPolicy(["127.0.0.1", "10.0.0.0/8", "evil.example"], resolver=fake_dns)
    assert policy.relaxed
    run(policy.pin("http://127.0.0.1:9000/a.mp4"))
    run(policy.pin("http://10.200.0.1/a.mp4"))
    run(policy.pin("http://evil.example/a.mp4"))
    with pytest.raises(Refused):
        run(policy.pin("http://127.0.0.2/a.mp4"))
    with pytest.raises(Refused):
        run(policy.pin("http://[::1]/a.mp4"))
    assert not AddressPolicy().relaxed


def test_blocked_reason_accepts_public_addresses() -> None:
    assert blocked_reason(ipaddress.ip_address(PUBLIC_IP)) is None
    assert blocked_reason(ipaddress.ip_address("2606:4700::1111")) is None


# ---- the fetcher over a mock transport (public names resolved by fake DNS) ------------------------------


MEDIA = make_mp4()


def fetcher_with(
    handler: Callable[[httpx.Request], httpx.Response] | Callable[[httpx.Request], object], **kw: object
) -> HttpFetcher:
    options: dict[str, object] = {"max_bytes": 1_000_000, "timeout_s": 5.0, "max_redirects": 3}
    options.update(kw)
    return HttpFetcher(
        AddressPolicy(resolver=fake_dns),
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


def test_fetch_connects_to_the_pinned_address_with_the_original_host(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=MEDIA, headers={"content-type": "video/mp4"})

    result = run(fetcher_with(handler).fetch("https://cdn.example/v.mp4", tmp_path / "v"))
    assert (tmp_path / "v").read_bytes() == MEDIA and result.size == len(MEDIA)  # type: ignore[attr-defined]
    assert seen[0].url.host == PUBLIC_IP and seen[0].headers["host"] == "cdn.example"


def test_redirect_to_loopback_is_refused(tmp_path: Path) -> None:
    hits: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hits.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://127.0.0.1:8000/admin"})

    with pytest.raises(MediaFetchError, match=r"refused to fetch: address 127\.0\.0\.1 is loopback"):
        run(fetcher_with(handler).fetch("https://cdn.example/v.mp4", tmp_path / "v"))
    assert len(hits) == 1  # the redirect target was never contacted


def test_redirect_to_a_name_resolving_privately_is_refused(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"location": "//evil.example/x"})

    with pytest.raises(MediaFetchError, match="private"):
        run(fetcher_with(handler).fetch("https://cdn.example/v.mp4", tmp_path / "v"))


def test_redirect_to_file_scheme_is_refused(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "file:///etc/passwd"})

    with pytest.raises(MediaFetchError, match="scheme 'file'"):
        run(fetcher_with(handler).fetch("https://cdn.example/v.mp4", tmp_path / "v"))


def test_public_redirects_are_followed_up_to_the_limit(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        hop = int(request.url.params.get("hop", "0"))
        if hop < 2:
            return httpx.Response(307, headers={"location": f"/v.mp4?hop={hop + 1}"})
        return httpx.Response(200, content=MEDIA)

    result = run(fetcher_with(handler).fetch("https://cdn.example/v.mp4", tmp_path / "v"))
    assert result.final_url == "https://cdn.example/v.mp4?hop=2"  # type: ignore[attr-defined]
    with pytest.raises(MediaFetchError, match="more than 1 redirects"):
        run(fetcher_with(handler, max_redirects=1).fetch("https://cdn.example/v.mp4", tmp_path / "w"))


def test_size_cap_by_declared_length_and_while_streaming(tmp_path: Path) -> None:
    def declared(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 2000)

    with pytest.raises(MediaFetchError, match="larger than the 1000 byte limit"):
        run(fetcher_with(declared, max_bytes=1000).fetch("https://cdn.example/v.mp4", tmp_path / "v"))

    def undeclared(request: httpx.Request) -> httpx.Response:
        async def body() -> object:
            for _ in range(10):
                yield b"y" * 500

        return httpx.Response(200, content=body())

    with pytest.raises(MediaFetchError, match="larger than the 1000 byte limit"):
        run(fetcher_with(undeclared, max_bytes=1000).fetch("https://cdn.example/v.mp4", tmp_path / "w"))


def test_time_cap(tmp_path: Path) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, content=MEDIA)

    with pytest.raises(MediaFetchError, match=r"longer than 0\.2 s"):
        run(fetcher_with(slow, timeout_s=0.2).fetch("https://cdn.example/v.mp4", tmp_path / "v"))


def test_http_errors_are_fetch_errors(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, content=b"nope")

    with pytest.raises(MediaFetchError, match="answered status 404"):
        run(fetcher_with(handler).fetch("https://cdn.example/v.mp4", tmp_path / "v"))


# ---- a real HTTP server on loopback ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def media_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    async def video(request: Request) -> Response:
        hits.append(request.url.path)
        return Response(MEDIA, media_type="video/mp4")

    async def html(request: Request) -> Response:
        hits.append(request.url.path)
        return Response("<!doctype html><h1>Login</h1>", media_type="video/mp4")

    async def to_v6(request: Request) -> Response:
        hits.append(request.url.path)
        port = request.url.port
        return RedirectResponse(f"http://[::1]:{port}/v.mp4", status_code=302)

    app = Starlette(routes=[Route("/v.mp4", video), Route("/page.mp4", html), Route("/hop", to_v6)])
    with ServerThread(app) as server:
        yield server.base_url, hits


def test_real_loopback_server_is_refused_without_the_allow_setting(
    media_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, hits = media_server
    hits.clear()
    fetcher = HttpFetcher(AddressPolicy(), max_bytes=10_000_000)
    with pytest.raises(MediaFetchError, match="loopback"):
        run(fetcher.fetch(f"{base}/v.mp4", tmp_path / "v"))
    assert hits == []  # refused before connecting


def test_real_loopback_server_with_the_allow_setting(
    media_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, hits = media_server
    hits.clear()
    fetcher = HttpFetcher(AddressPolicy(["127.0.0.1"]), max_bytes=10_000_000)
    run(fetcher.fetch(f"{base}/v.mp4", tmp_path / "v"))
    assert (tmp_path / "v").read_bytes() == MEDIA
    with pytest.raises(MediaFetchError, match=r"address ::1 is loopback"):
        run(fetcher.fetch(f"{base}/hop", tmp_path / "w"))  # allowed host, redirect to a refused one
    assert hits == ["/v.mp4", "/hop"]


def test_submit_with_the_real_fetcher(
    harness_factory: Callable[..., Harness], media_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    """Refused and non-media URLs end the job failed (1402 / 1401, naming the field); the submit is 200."""
    from lipsync.server.backends import build_fetcher

    def outcome(h: Harness, body: dict[str, object]) -> dict[str, object]:
        r = h.submit(body)
        assert r.status_code == 200 and r.json()["data"]["status"] == "created", r.text
        return h.wait_status(r.json()["data"]["id"], {"completed", "failed"})

    base, hits = media_server
    hits.clear()
    strict = harness_factory(fetcher=build_fetcher(make_settings(tmp_path)))
    data = outcome(strict, {"video": f"{base}/v.mp4", "audio": AUDIO.replace("https://media.example", base)})
    assert (data["status"], data["code"]) == ("failed", 1402)
    assert data["error"] == (
        "media_not_reachable: input 'video': could not fetch the URL: "
        f"refused to fetch: address 127.0.0.1 is loopback. {LOCAL_FETCH_HINT}"
    )
    assert "LIPSYNC_FETCH_ALLOW" in data["error"] and "--fetch-allow" in data["error"]
    assert "POST /api/v3/media/uploads" in data["error"] and "client.upload" in data["error"]
    assert hits == []  # refused before connecting

    relaxed = harness_factory(fetcher=build_fetcher(make_settings(tmp_path, fetch_allow="127.0.0.1")))
    data = outcome(relaxed, {"video": f"{base}/page.mp4", "audio": f"{base}/v.mp4"})
    assert (data["status"], data["code"]) == ("failed", 1401)
    assert data["error"] == (
        "media_unreadable: input 'video': not a media file (it looks like text or an HTML/JSON page)"
    )
    data = outcome(relaxed, {"video": f"{base}/v.mp4", "audio": f"{base}/hop"})
    assert (data["status"], data["code"]) == ("failed", 1402)
    assert "input 'audio'" in str(data["error"]) and "address ::1 is loopback" in str(data["error"])
    data = outcome(relaxed, {"video": f"{base}/v.mp4", "audio": f"{base}/v.mp4"})
    assert data["status"] == "completed"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[2002:7f00:1::]/x.mp4", r"loopback \(6to4 127.0.0.1\)"),
        ("http://[2002:a9fe:a9fe::1]/x.mp4", r"link-local \(6to4 169.254.169.254\)"),
        ("http://[64:ff9b::7f00:1]/x.mp4", r"loopback \(NAT64 127.0.0.1\)"),
        ("http://[64:ff9b::a00:1]/x.mp4", r"private \(NAT64 10.0.0.1\)"),
        # Teredo: the client address is stored inverted (0x80ff:fffe -> 127.0.0.1)
        ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/x.mp4", r"loopback \(Teredo client 127.0.0.1\)"),
    ],
)
def test_ipv4_embedded_in_ipv6_is_judged_by_the_ipv4_address(url: str, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        run(AddressPolicy(resolver=fake_dns).pin(url))


def test_a_public_6to4_address_is_allowed() -> None:
    target = run(AddressPolicy(resolver=fake_dns).pin("http://[2002:808:808::1]/x.mp4"))
    assert target.url == "http://[2002:808:808::1]/x.mp4"  # type: ignore[attr-defined]
