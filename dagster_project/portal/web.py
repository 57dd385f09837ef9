"""What every page handler needs: the portal of the request, the session's account and CSRF
token (or the refusal), a form checked against its CSRF token, the client's address, the
home page of an account.

The page modules import them from here, never from ``app`` (which imports the page
modules): no import cycle inside the portal."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse

from dagster_project.portal import security
from dagster_project.portal.accounts import Account


def _portal(request: Request):
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


async def _form_with_csrf(request: Request, csrf: str, **limits):
    form = await request.form(**limits)
    if not security.tokens_equal(form.get("csrf"), csrf):
        return form, False
    return form, True


def home_of(account: Account) -> str:
    return {"department": "/direction", "steering": "/pilotage", "auditor": "/audit"}[account.role]


def client_of(request: Request) -> str:
    return request.client.host if request.client else "inconnu"
