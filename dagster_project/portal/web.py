"""What every page handler needs: the portal of the request, the session's account and CSRF
token (or the refusal), a form checked against its CSRF token, a ``kpi`` command run for the
page, the client's address, the home page of an account.

A page of a signed-in account is ``@signed_in(<roles>) async def handler(page: Page)``: the
decorator answers for a missing session or another role (``_require``), and ``Page`` renders
for the account, refuses a form without its CSRF token and runs ``kpi`` commands.

The page modules import them from here, never from ``app`` (which imports the page
modules): no import cycle inside the portal."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dagster_project.portal import security
from dagster_project.portal.accounts import Account
from dagster_project.portal.core import Portal
from dagster_project.portal.runner import kpi_command

CSRF_REFUSED = "Jeton de sécurité (CSRF) absent ou invalide."


def _portal(request: Request) -> Portal:
    return request.app.state.portal


def _require(request: Request, *roles: str):
    """(account, csrf) of a logged-in session with one of ``roles``, else a response."""
    portal = _portal(request)
    account, csrf, expired = portal.current(request)
    if account is None:
        if request.method != "GET":
            return (
                None,
                None,
                portal.error(
                    request,
                    401,
                    "Votre session a expiré ou n'est pas ouverte : reconnectez-vous. "
                    "Rien n'a été enregistré.",
                    title="Session expirée",
                ),
            )
        target = "/connexion?expiree=1" if expired else "/connexion"
        return None, None, RedirectResponse(target, status_code=303)
    if roles and account.role not in roles:
        return (
            account,
            csrf,
            portal.error(
                request, 403, "Cette page n'est pas ouverte à votre compte.", account, csrf
            ),
        )
    return account, csrf, None


class Refused(Exception):
    """Raised inside a ``signed_in`` page to answer with ``response`` (a refusal) instead."""

    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


@dataclass
class Page:
    """One request of a signed-in account (``signed_in``): its pages and errors rendered for
    that account, its form checked against the session's CSRF token, ``kpi`` run for it."""

    request: Request
    portal: Portal
    account: Account
    csrf: str

    def render(self, template: str, context: dict, status: int = 200) -> Response:
        return self.portal.render(
            self.request, template, context, status, account=self.account, csrf=self.csrf
        )

    def error(self, status: int, message: str) -> Response:
        return self.portal.error(self.request, status, message, self.account, self.csrf)

    def refuse(self, status: int, message: str) -> NoReturn:
        """Stop the page here: answer with the error page (``status``, ``message``)."""
        raise Refused(self.error(status, message))

    async def form(self, refusal: str = CSRF_REFUSED, **limits):
        """The request's form (``limits``: Starlette's ``max_files``, ``max_fields``); refused
        with 403 and ``refusal`` when its CSRF token is absent or not the session's."""
        form = await self.request.form(**limits)
        if not security.tokens_equal(form.get("csrf"), self.csrf):
            self.refuse(403, refusal)
        return form

    async def kpi(self, *args: str) -> tuple[int, str]:
        """(exit code, output) of ``kpi <args>`` on the portal's warehouse
        (``runner.kpi_command``), run out of the event loop."""
        return await run_in_threadpool(kpi_command, self.portal.settings, *args)


def signed_in(*roles: str) -> Callable:
    """A page served only to a signed-in account with one of ``roles`` (any account when
    none): ``handler(page: Page)`` becomes the route's endpoint; a missing session or another
    role gets ``_require``'s answer (login page, 401, 403), a ``Refused`` its response."""

    def decorate(handler: Callable[[Page], Awaitable[Response]]):
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            account, csrf, error = _require(request, *roles)
            if error is not None:
                return error
            try:
                return await handler(Page(request, _portal(request), account, csrf))
            except Refused as refused:
                return refused.response

        endpoint.roles = roles
        return endpoint

    return decorate


def home_of(account: Account) -> str:
    return {"department": "/direction", "steering": "/pilotage", "auditor": "/audit"}[account.role]


def client_of(request: Request) -> str:
    return request.client.host if request.client else "inconnu"
