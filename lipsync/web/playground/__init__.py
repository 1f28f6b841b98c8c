"""The browser playground: static files shipped in this package, served next to the API.

``mount_playground(app)`` is the one place that serves them; the server (``lipsync serve``, and through
``create_app`` the Modal ``api`` function) and the mock each call it once. The page talks to the public API
only (same origin, relative URLs), so it works unchanged against the server, the mock, Modal and behind a
proxy that serves the API under a path prefix (``LIPSYNC_PUBLIC_URL``).

Routes (none in the OpenAPI schema):

- ``GET /`` and ``GET /playground``: the page (``index.html``). Both are one path segment deep, so the
  page's relative asset URLs (``playground/app.js``) resolve to the same files from either.
- ``GET /playground/`` redirects to ``../playground`` for the same reason.
- ``GET /playground/<file>``: the ES modules and the style sheet.

Every response of the page carries a strict Content-Security-Policy (scripts only from this origin, no
inline script or style, no framing); the API's own responses are left untouched.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "PAGE_PATHS", "STATIC_DIR", "mount_playground", "playground_routes"]

#: Where the page's files live inside the installed package (package data, see pyproject.toml).
STATIC_DIR = Path(str(files(__name__) / "static"))

#: The paths that answer with the page itself.
PAGE_PATHS = ("/", "/playground")

#: Scripts and styles only from this origin and never inline. Media and uploads may live on another
#: origin (S3 presigned URLs, a pasted input URL), so media-src/connect-src allow http(s) too.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: http: https:",
        "connect-src 'self' http: https:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    )
)

_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load, so an upgraded server never runs yesterday's modules against today's API.
    "Cache-Control": "no-cache",
}
_RAW_PAGE_HEADERS = [(k.lower().encode(), v.encode()) for k, v in _PAGE_HEADERS.items()]


class _WithPageHeaders:
    """ASGI wrapper adding the page's security headers to every response of *app*."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_RAW_PAGE_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=_PAGE_HEADERS)


async def _to_page(request: Request) -> Response:
    # Relative, so the redirect stays under a proxy's path prefix.
    return RedirectResponse("../playground", status_code=307, headers=_PAGE_HEADERS)


def playground_routes() -> list[BaseRoute]:
    """The page's routes, for an app that assembles its routes itself."""
    page: list[BaseRoute] = [
        Route(path, _page, methods=["GET", "HEAD"], include_in_schema=False) for path in PAGE_PATHS
    ]
    return [
        *page,
        Route("/playground/", _to_page, methods=["GET", "HEAD"], include_in_schema=False),
        Mount("/playground", app=_WithPageHeaders(StaticFiles(directory=STATIC_DIR)), name="playground"),
    ]


def mount_playground(app: Starlette) -> None:
    """Serve the playground from *app* (a FastAPI or Starlette app) at ``/`` and ``/playground``."""
    app.router.routes.extend(playground_routes())
