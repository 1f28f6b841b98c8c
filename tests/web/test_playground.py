"""The playground's serving: one mount, on the server, the mock and Modal, with a strict CSP on the page only.

What the page does in a browser is tested in ``test_playground_browser.py`` (headless Chromium).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lipsync.server.modal_backends import create_modal_api
from lipsync.web.playground import CONTENT_SECURITY_POLICY, PAGE_PATHS, STATIC_DIR
from mock_server.app import create_app as create_mock_app
from tests.conftest import REPO_ROOT
from tests.modal.conftest import FakeDeployment
from tests.server.conftest import API_KEY, Harness, make_settings

ASSETS = sorted(p.name for p in STATIC_DIR.iterdir() if p.suffix in {".js", ".css"})


@pytest.fixture(params=["server", "mock", "modal"])
def client(
    request: pytest.FixtureRequest, harness_factory: Callable[..., Harness], tmp_path: Path
) -> Iterator[TestClient]:
    if request.param == "server":
        yield harness_factory().client
    elif request.param == "mock":
        with TestClient(create_mock_app()) as mock:
            yield mock
    else:
        deployment = FakeDeployment(tmp_path, make_settings(tmp_path))
        with TestClient(create_modal_api(deployment.api)) as modal:
            yield modal


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_the_page_is_served_with_a_strict_csp(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == (STATIC_DIR / "index.html").read_text()
    csp = response.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert "unsafe" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("asset", ASSETS)
def test_assets_are_served_with_the_page_headers(client: TestClient, asset: str) -> None:
    response = client.get(f"/playground/{asset}")
    assert response.status_code == 200
    expected = "text/javascript" if asset.endswith(".js") else "text/css"
    assert response.headers["content-type"].startswith(expected)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.content == (STATIC_DIR / asset).read_bytes()


def test_the_trailing_slash_redirects_relatively(client: TestClient) -> None:
    # Relative, so it stays under a proxy's path prefix; the page's relative asset URLs need the
    # slash-less path.
    response = client.get("/playground/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "../playground"


def test_the_api_keeps_its_own_headers_and_schema(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert "content-security-policy" not in response.headers
    paths = response.json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/playground")]


def test_the_server_page_needs_no_key_but_the_api_still_does(client: TestClient) -> None:
    assert client.get("/").status_code == 200
    assert client.post("/api/v3/predictions", json={}).status_code == 401
    assert (
        client.post(
            "/api/v3/predictions", json={}, headers={"Authorization": f"Bearer {API_KEY}"}
        ).status_code
        == 200
    )


class _Scripts(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, inline handlers and inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, _value in attrs:
            if name.startswith("on") or name == "style":
                self.inline.append(f"<{tag} {name}=...>")
        if tag == "script":
            self._in_script = True
            if named.get("src"):
                assert named.get("type") == "module", "scripts are ES modules"
                self.external.append(str(named["src"]))
        if tag == "style":
            self.inline.append("<style>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data.strip()[:40])


def test_the_page_has_nothing_inline_and_nothing_from_elsewhere() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    parser = _Scripts()
    parser.feed(html)
    assert parser.inline == []
    assert parser.external == ["playground/app.js"]
    for text in [html, *((STATIC_DIR / a).read_text() for a in ASSETS)]:
        assert "//cdn" not in text and "https://" not in text.replace("https://…", "")


def test_every_static_file_is_package_data() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["lipsync"]
    package_root = REPO_ROOT / "lipsync"
    shipped = [p.relative_to(package_root).as_posix() for p in STATIC_DIR.iterdir()]
    assert shipped and all(any(fnmatch(f, pattern) for pattern in patterns) for f in shipped)
