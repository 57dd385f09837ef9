"""The portal's web application (Starlette): the routes of every page module, the security
headers, the error pages.

``create_app(config)`` builds it; ``kpi portal`` serves it with uvicorn. Pages are rendered
on the server (Jinja2, autoescape on: every cell text, file name and reason is escaped);
the only script (``static/portal.js``) follows a run and is not needed to deliver. Each
audience has its module of pages: ``auth`` (login), ``department``, ``api``, ``steering``,
``audit``; they share the ``Portal`` object (``core``) and the request helpers (``web``).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from dagster_project.portal import api, audit, auth, department, security, steering
from dagster_project.portal.core import Portal, PortalConfig

HERE = Path(__file__).parent


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                path = scope.get("path", "")
                for name, value in security.SECURITY_HEADERS.items():
                    if name.encode() in present:
                        continue
                    if path.startswith("/audit/fichiers/") and name == "content-security-policy":
                        value = "default-src 'self' 'unsafe-inline' data:; frame-ancestors 'none'"
                    headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(config: PortalConfig) -> Starlette:
    portal = Portal(config)

    async def not_found(request: Request, exc: HTTPException):
        account, csrf, _ = portal.current(request)
        status = getattr(exc, "status_code", 404)
        message = {404: "Page introuvable.", 405: "Méthode non autorisée."}.get(
            status, "Requête refusée."
        )
        return portal.error(request, status, message, account, csrf, title="Erreur")

    routes = [
        *auth.routes(),
        *department.routes(),
        *api.routes(),
        *steering.routes(),
        *audit.routes(),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: not_found},
    )
    app.state.portal = portal
    return app
