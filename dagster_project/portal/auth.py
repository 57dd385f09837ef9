"""Signing in and out: the login form, its checks, the session cookie, the logout.

The login form carries a token of its own cookie (``security.new_login_token``); failed
attempts are counted per login and per address and blocked for a while after too many
(``store.login_blocked``); a successful login opens a session (only its id's hash is stored)
and sets the signed, ``HttpOnly``, ``SameSite=Strict`` session cookie. Every login, failure
and logout is written in the journal. ``/`` sends a signed-in account to its home page.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from dagster_project.portal import security
from dagster_project.portal.web import Page, _portal, client_of, home_of, signed_in


async def login_page(request: Request):
    portal = _portal(request)
    account, _csrf, _expired = portal.current(request)
    if account is not None:
        return RedirectResponse(home_of(account), status_code=303)
    return _login_form(request, {})


def _login_form(request: Request, context: dict, status: int = 200):
    portal = _portal(request)
    token, cookie = security.new_login_token(portal.key)
    if request.query_params.get("expiree"):
        context.setdefault("notice", "Votre session a expiré : reconnectez-vous.")
    response = portal.render(request, "login.html", {"login_csrf": token, **context}, status)
    portal.set_cookie(response, security.LOGIN_COOKIE, cookie, 3600)
    return response


async def login_submit(request: Request):
    portal = _portal(request)
    form = await request.form(max_files=0, max_fields=5)
    login = str(form.get("identifiant", "")).strip()[:100]
    password = str(form.get("mot_de_passe", ""))[:200]
    if not security.login_token_ok(
        portal.key, request.cookies.get(security.LOGIN_COOKIE), form.get("csrf")
    ):
        return _login_form(
            request,
            {
                "error": "Le formulaire a expiré ou ne vient pas de ce portail : "
                "saisissez à nouveau vos identifiants.",
                "login": login,
            },
            403,
        )
    client = client_of(request)
    wait = portal.store.login_blocked(login, client)
    if wait:
        portal.store.log(None, "connexion refusée (trop d'essais)", login=login, client=client)
        response = _login_form(
            request,
            {
                "error": f"Trop d'essais de connexion : réessayez dans {max(1, wait // 60)} "
                "minute(s).",
                "login": login,
            },
            429,
        )
        response.headers["retry-after"] = str(wait)
        return response
    errors = {}
    if not login:
        errors["identifiant"] = "Saisissez votre identifiant."
    if not password:
        errors["mot_de_passe"] = "Saisissez votre mot de passe."
    account = portal.store.authenticate(login, password) if not errors else None
    if account is None:
        if not errors:
            portal.store.record_failure(login, client)
            portal.store.log(None, "connexion échouée", login=login, client=client)
            errors["mot_de_passe"] = "Identifiant ou mot de passe incorrect."
        return _login_form(request, {"errors": errors, "login": login}, 400)
    portal.store.clear_failures(login)
    session_id, _csrf, expires = portal.store.open_session(
        account.login, portal.config.session_seconds
    )
    portal.store.log(account, "connexion", client=client)
    response = RedirectResponse(home_of(account), status_code=303)
    portal.set_cookie(
        response,
        security.SESSION_COOKIE,
        security.session_cookie_value(portal.key, session_id, expires),
        portal.config.session_seconds,
    )
    response.delete_cookie(security.LOGIN_COOKIE, path="/")
    return response


@signed_in()
async def logout(page: Page):
    portal, request = page.portal, page.request
    await page.form(max_files=0, max_fields=3)
    session_id, _ = security.session_id_of(portal.key, request.cookies.get(security.SESSION_COOKIE))
    if session_id:
        portal.store.end_session(session_id)
    portal.store.log(page.account, "déconnexion", client=client_of(request))
    response = RedirectResponse("/connexion", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE, path="/")
    return response


@signed_in()
async def home(page: Page):
    return RedirectResponse(home_of(page.account), status_code=303)


def routes() -> list[Route]:
    return [
        Route("/", home),
        Route("/connexion", login_page, methods=["GET"]),
        Route("/connexion", login_submit, methods=["POST"]),
        Route("/deconnexion", logout, methods=["POST"]),
    ]
