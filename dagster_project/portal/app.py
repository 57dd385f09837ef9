"""The portal's web application (Starlette): pages, API, security.

``create_app(config)`` builds it; ``kpi portal`` serves it with uvicorn. Pages are rendered
on the server (Jinja2, autoescape on: every cell text, file name and reason is escaped);
the only script (``static/portal.js``) follows a run and is not needed to deliver.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dagster_project.campaign.dates import parse_today
from dagster_project.campaign.plan import Campaign, CampaignError, load_campaign
from dagster_project.campaign.status import StatusRow, campaign_status
from dagster_project.campaign.templates.workbook import write_templates
from dagster_project.contracts.model import default_contracts
from dagster_project.defs.schedules import campaign_years, closing_date, is_open
from dagster_project.ingest.readers.sheet import MAX_FILE_BYTES
from dagster_project.portal import audit, security, steering
from dagster_project.portal.deliveries import UploadRefused, publication_state, receive
from dagster_project.portal.runner import PipelineRunner, fr_time
from dagster_project.portal.store import Account, PortalStore, secret_key, state_dir
from dagster_project.portal.web import _form_with_csrf, _portal, _require, home_of
from dagster_project.settings import Settings

HERE = Path(__file__).parent
MULTIPART_SLACK = 64 * 1024  # the form's own bytes around the file
API_PREFIX = "/api/v1"


@dataclass
class PortalConfig:
    settings: Settings
    state: Path | None = None
    pipeline: str = "kpi-run"
    https: bool = False  # behind an HTTPS reverse proxy: Secure cookies
    session_seconds: int = 8 * 3600
    max_upload_bytes: int = MAX_FILE_BYTES
    extra: dict = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.state or state_dir(self.settings)

    def today(self) -> dt.date:
        return parse_today(self.settings.today)


# --- helpers ---------------------------------------------------------------------------------


def fr_date(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    with contextlib.suppress(ValueError):
        return fr_date(dt.datetime.fromisoformat(str(value)))
    return str(value)


def fr_number(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}".replace(",", "\u202f").replace(".", ",")
    return f"{int(value):,}".replace(",", "\u202f")


def client_of(request: Request) -> str:
    return request.client.host if request.client else "inconnu"


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(("html", "xml"), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fr_date"] = fr_date
    env.filters["fr_number"] = fr_number
    return env


class Portal:
    """The application's state, shared by the request handlers."""

    def __init__(self, config: PortalConfig):
        self.config = config
        self.settings = config.settings
        self.state = config.state_dir
        self.state.mkdir(parents=True, exist_ok=True)
        self.store = PortalStore(self.state / "portail.sqlite")
        self.key = secret_key(self.state)
        self.env = _templates()
        self.contracts = default_contracts()
        self.runner = PipelineRunner(
            self.settings, mode=config.pipeline, on_finished=self._run_finished
        )

    # --- rendering -------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        context: dict | None = None,
        status: int = 200,
        account: Account | None = None,
        csrf: str | None = None,
    ) -> HTMLResponse:
        ctx = {
            "request": request,
            "account": account,
            "csrf": csrf,
            "today": self.config.today(),
            "flash": request.query_params.get("message"),
        }
        ctx.update(context or {})
        html = self.env.get_template(template).render(**ctx)
        return HTMLResponse(html, status_code=status)

    def error(
        self,
        request: Request,
        status: int,
        message: str,
        account: Account | None = None,
        csrf: str | None = None,
        title: str = "Refusé",
    ):
        if request.url.path.startswith(API_PREFIX):
            return JSONResponse({"erreur": message}, status_code=status)
        return self.render(
            request,
            "error.html",
            {"title": title, "message": message, "status": status},
            status=status,
            account=account,
            csrf=csrf,
        )

    # --- sessions --------------------------------------------------------------------------

    def current(self, request: Request) -> tuple[Account | None, str | None, bool]:
        """(account, CSRF token, expired) of the request's session cookie."""
        session_id, expired = security.session_id_of(
            self.key, request.cookies.get(security.SESSION_COOKIE)
        )
        if session_id is None:
            return None, None, expired
        found = self.store.session(session_id)
        if found is None:
            return None, None, True
        account, csrf, _expires = found
        return account, csrf, False

    def set_cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="strict",
            secure=self.config.https,
        )

    # --- campaign --------------------------------------------------------------------------

    def campaigns(self) -> list[Campaign]:
        found = []
        for year in campaign_years(self.settings.sources_dir):
            with contextlib.suppress(CampaignError):
                found.append(load_campaign(self.settings.sources_dir, year))
        return found

    def campaign(self, year: int) -> Campaign | None:
        try:
            return load_campaign(self.settings.sources_dir, year)
        except CampaignError:
            return None

    def open_campaigns(self) -> list[Campaign]:
        today = self.config.today()
        return [c for c in self.campaigns() if is_open(c, today)]

    def status_rows(self, year: int) -> list[StatusRow]:
        """The campaign's status from the published copy (read-only; never waits for a run):
        what was processed by the last published run, plus the files waiting in sources/."""
        import duckdb

        from dagster_project.ingest.store import ensure_ingest_tables

        published = self.settings.warehouse
        if published.exists():
            con = duckdb.connect(str(published.resolve()), read_only=True)
        else:
            con = duckdb.connect(":memory:")
            ensure_ingest_tables(con)
        try:
            return campaign_status(con, self.settings.sources_dir, year, self.config.today())
        finally:
            con.close()

    def history(self, year: int, department: str, source_id: str) -> list[dict]:
        import duckdb

        published = self.settings.warehouse
        if not published.exists():
            return []
        con = duckdb.connect(str(published.resolve()), read_only=True)
        try:
            cursor = con.execute(
                "select file_name, received_at, processed_at, outcome, problem_count, row_count, "
                "in_force, delivery_id from ingest.deliveries where campaign_year = ? and "
                "department = ? and source_id = ? order by received_at desc, file_name desc",
                [year, department, source_id],
            )
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        finally:
            con.close()

    def _run_finished(self, record) -> None:
        self.store.log(
            None,
            "exécution terminée",
            login="portail",
            detail=f"kpi run --select {' '.join(record.sources)} : {record.state_fr} "
            f"({record.ended_at - record.started_at:.0f} s)",
        )

    def follow(self, upload: dict) -> dict:
        """Where an upload stands: verdict, run, publication of its figures."""
        state = {
            "upload_id": upload["upload_id"],
            "verdict": "accepté" if upload["outcome"] == "accepted" else "rejeté",
            "termine": upload["outcome"] != "accepted",
        }
        if upload["outcome"] != "accepted":
            state["etape"] = "fichier rejeté : il n'est pas entré dans les livraisons"
            return state
        published = publication_state(self.settings.warehouse, upload["delivery_id"])
        received = dt.datetime.fromisoformat(upload["received_at"]).timestamp()
        run = self.runner.state_of(upload["source_id"], received)
        state["execution"] = run
        state["publie"] = published["published"]
        state["valeurs"] = published.get("values", 0)
        state["exemples"] = published.get("examples", [])
        if published["published"] and published["outcome"] == "accepted":
            state["termine"] = True
            state["etape"] = (
                f"chiffres publiés : {published['values']} valeur(s) de la copie publiée "
                "proviennent de ce fichier"
                + (" ; il est la livraison en vigueur" if published["in_force"] else "")
            )
        elif published["published"]:
            state["termine"] = True
            state["etape"] = (
                "l'exécution a rejeté ce fichier (les livraisons de référence ont changé "
                "depuis le dépôt) : voir l'historique de la source"
            )
        elif run and ("échec" in run or "bloquant" in run):
            state["termine"] = True
            state["etape"] = run + " ; la Direction du Pilotage Stratégique est prévenue"
        else:
            state["etape"] = run or (
                "fichier déposé dans les livraisons ; en attente de l'exécution du pipeline "
                "(capteur Dagster)"
            )
        return state


# --- request handling helpers ------------------------------------------------------------------


# --- login -------------------------------------------------------------------------------------


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


async def logout(request: Request):
    portal = _portal(request)
    account, csrf, error = _require(request)
    if error is not None:
        return error
    form, ok = await _form_with_csrf(request, csrf, max_files=0, max_fields=3)
    if not ok:
        return portal.error(
            request, 403, "Jeton de sécurité (CSRF) absent ou invalide.", account, csrf
        )
    session_id, _ = security.session_id_of(portal.key, request.cookies.get(security.SESSION_COOKIE))
    if session_id:
        portal.store.end_session(session_id)
    portal.store.log(account, "déconnexion", client=client_of(request))
    response = RedirectResponse("/connexion", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE, path="/")
    return response


async def home(request: Request):
    account, _csrf, error = _require(request)
    if error is not None:
        return error
    return RedirectResponse(home_of(account), status_code=303)


# --- department pages ------------------------------------------------------------------------


def _entries_for(portal: Portal, account: Account, campaign: Campaign):
    return [e for e in campaign.entries if account.may_deliver_for(e.department)]


async def department_home(request: Request):
    portal = _portal(request)
    account, csrf, error = _require(request, "department")
    if error is not None:
        return error
    campaigns = []
    for campaign in portal.open_campaigns():
        entries = _entries_for(portal, account, campaign)
        if not entries:
            continue
        rows = {
            (r.department, r.source_id): r
            for r in portal.status_rows(campaign.year)
            if account.may_deliver_for(r.department)
        }
        campaigns.append(
            {
                "campaign": campaign,
                "closing": closing_date(campaign),
                "entries": [(e, rows.get((e.department, e.source_id))) for e in entries],
            }
        )
    return portal.render(
        request,
        "department.html",
        {"campaigns": campaigns, "title": "Mes livraisons"},
        account=account,
        csrf=csrf,
    )


def _source_context(portal: Portal, account: Account, year: int, department: str, source_id: str):
    """(campaign, entry) when ``account`` may see this source of this year, else an error
    (status, message)."""
    if not account.may_deliver_for(department):
        return None, (403, "Cette direction n'est pas la vôtre : accès refusé.")
    campaign = portal.campaign(year)
    if campaign is None:
        return None, (403, f"Aucune campagne {year} : accès refusé.")
    entry = campaign.entry(department, source_id)
    if entry is None:
        return None, (403, "Cette source n'est pas attendue de votre direction : accès refusé.")
    return (campaign, entry), None


def _path_params(request: Request) -> tuple[int, str, str]:
    p = request.path_params
    return int(p["year"]), str(p["department"]), str(p["source_id"])


async def source_page(request: Request, context: dict | None = None, status: int = 200):
    portal = _portal(request)
    account, csrf, error = _require(request, "department")
    if error is not None:
        return error
    year, department, source_id = _path_params(request)
    found, refusal = _source_context(portal, account, year, department, source_id)
    if refusal:
        return portal.error(request, refusal[0], refusal[1], account, csrf)
    campaign, entry = found
    rows = [
        r
        for r in portal.status_rows(year)
        if r.department == department and r.source_id == source_id
    ]
    uploads = [
        u
        for u in portal.store.uploads(year=year, department=department)
        if u["source_id"] == source_id
    ]
    contract = portal.contracts.get(source_id)
    ctx = {
        "title": f"{contract.title_fr if contract else source_id} ({year})",
        "campaign": campaign,
        "entry": entry,
        "contract": contract,
        "status": rows[0] if rows else None,
        "history": portal.history(year, department, source_id),
        "uploads": uploads,
        "open": is_open(campaign, portal.config.today()),
        "closing": closing_date(campaign),
        "base": f"/direction/{year}/{department}/{source_id}",
        "max_mb": portal.config.max_upload_bytes // (1024 * 1024),
    }
    ctx.update(context or {})
    return portal.render(request, "source.html", ctx, status, account=account, csrf=csrf)


async def template_download(request: Request):
    portal = _portal(request)
    account, csrf, error = _require(request, "department")
    if error is not None:
        return error
    year, department, source_id = _path_params(request)
    found, refusal = _source_context(portal, account, year, department, source_id)
    if refusal:
        return portal.error(request, refusal[0], refusal[1], account, csrf)
    campaign, _entry = found
    folder = portal.state / "modeles" / str(year)
    path = folder / department / f"{source_id}_{year}.xlsx"
    stamp = campaign.path.stat().st_mtime if campaign.path else 0
    if not path.exists() or path.stat().st_mtime < stamp:
        deadlines = {
            (e.department, e.source_id): (e.due_date, e.owner.email) for e in campaign.entries
        }
        if campaign.steering is not None:
            deadlines = {k: (due, campaign.steering.email) for k, (due, _o) in deadlines.items()}
        write_templates(year, folder, departments=[department], deadlines=deadlines)
    if not path.exists():
        return portal.error(request, 404, "Aucun modèle pour cette source.", account, csrf)
    portal.store.log(
        account, "modèle téléchargé", year=year, department=department, source_id=source_id
    )
    return FileResponse(
        path,
        filename=path.name,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


async def _receive_upload(
    request: Request, account: Account, year: int, department: str, source_id: str, via: str
):
    """The upload's checks and verdict; returns (result, None) or (None, (status, message))."""
    portal = _portal(request)
    campaign = portal.campaign(year)
    today = portal.config.today()
    if not is_open(campaign, today):
        return None, (
            409,
            f"La campagne {year} est fermée (ouverte du {fr_date(campaign.opening_date)} au "
            f"{fr_date(closing_date(campaign))}) : aucun dépôt n'est accepté. Contactez la "
            "Direction du Pilotage Stratégique.",
        )
    limit = portal.config.max_upload_bytes
    length = request.headers.get("content-length")
    if length is None:
        return None, (411, "Taille du fichier inconnue : envoyez-le avec sa longueur.")
    if not length.isdigit() or int(length) > limit + MULTIPART_SLACK:
        return None, (
            413,
            f"Fichier trop volumineux : {limit // (1024 * 1024)} Mo au plus "
            "(limite de lecture des classeurs).",
        )
    return "ok", None


async def upload(request: Request):
    portal = _portal(request)
    account, csrf, error = _require(request, "department")
    if error is not None:
        return error
    year, department, source_id = _path_params(request)
    found, refusal = _source_context(portal, account, year, department, source_id)
    if refusal:
        return portal.error(request, refusal[0], refusal[1], account, csrf)
    ok, refusal = await _receive_upload(request, account, year, department, source_id, "web")
    if refusal:
        return await source_page(request, {"upload_error": refusal[1]}, refusal[0])
    form = await request.form(max_files=1, max_fields=3)
    if not security.tokens_equal(form.get("csrf"), csrf):
        return portal.error(
            request,
            403,
            "Jeton de sécurité (CSRF) absent ou invalide : rien n'a été enregistré.",
            account,
            csrf,
        )
    file = form.get("fichier")
    if not isinstance(file, UploadFile) or not file.filename:
        return await source_page(request, {"upload_error": "Choisissez le fichier à déposer."}, 400)
    outcome = await _judge(request, account, file, year, department, source_id, "web")
    if isinstance(outcome, tuple):
        return await source_page(request, {"upload_error": outcome[1]}, outcome[0])
    return RedirectResponse(f"/depots/{outcome['upload_id']}", status_code=303)


async def _judge(request, account, file: UploadFile, year, department, source_id, via):
    """Judge the uploaded file; returns the upload's row or (status, French message)."""
    portal = _portal(request)
    from starlette.concurrency import run_in_threadpool

    limit = portal.config.max_upload_bytes
    with tempfile.NamedTemporaryFile(dir=portal.state, prefix=".recu-", delete=False) as tmp:
        tmp_path = Path(tmp.name)
        size = 0
        while chunk := await file.read(1 << 20):
            size += len(chunk)
            if size > limit:
                break
            tmp.write(chunk)
    try:
        if size > limit:
            return (
                413,
                f"Fichier trop volumineux : {limit // (1024 * 1024)} Mo au plus (limite de lecture des classeurs).",
            )
        try:
            result = await run_in_threadpool(
                receive,
                tmp_path,
                file.filename or "",
                year=year,
                department=department,
                source_id=source_id,
                sources_dir=portal.settings.sources_dir,
                state=portal.state,
                published=portal.settings.warehouse,
                today=portal.config.today(),
            )
        except UploadRefused as exc:
            portal.store.log(
                account,
                "dépôt refusé",
                year=year,
                department=department,
                source_id=source_id,
                detail=str(exc),
                client=client_of(request),
            )
            return (exc.status, str(exc))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
    verdict = result.verdict
    row = {
        "upload_id": result.upload_id,
        "login": account.login,
        "via": via,
        "year": year,
        "department": department,
        "source_id": source_id,
        "original_name": result.original_name,
        "stored_path": str(result.stored_path),
        "sha256": verdict.sha256,
        "size": result.size,
        "outcome": "accepted" if verdict.accepted else "rejected",
        "problem_count": verdict.problem_count,
        "verdict_seconds": round(verdict.seconds, 4),
        "received_at": result.received_at.isoformat(sep=" "),
        "delivery_id": verdict.delivery_id,
        "report_path": str(verdict.report_path) if verdict.report_path else None,
    }
    portal.store.record_upload(row)
    (portal.state / "depots_verdicts").mkdir(exist_ok=True)
    (portal.state / "depots_verdicts" / f"{result.upload_id}.json").write_text(
        json.dumps(
            {"groups": verdict.groups(), "warnings": len(verdict.warnings)}, ensure_ascii=False
        ),
        encoding="utf-8",
    )
    portal.store.log(
        account,
        "dépôt accepté" if verdict.accepted else "dépôt rejeté",
        year=year,
        department=department,
        source_id=source_id,
        detail=f"{result.original_name} → {result.stored_path.name}"
        + ("" if verdict.accepted else f" ({verdict.problem_count} problème(s))")
        + f" ; verdict en {verdict.seconds:.2f} s ; par {via}",
        client=client_of(request),
    )
    if verdict.accepted:
        portal.runner.request(source_id)
        if portal.config.pipeline == "kpi-run":
            portal.store.log(
                account,
                "exécution demandée",
                year=year,
                department=department,
                source_id=source_id,
                detail=f"kpi run --select {source_id}",
            )
    return row


def _upload_for(request: Request, account: Account):
    portal = _portal(request)
    upload_row = portal.store.upload(str(request.path_params["upload_id"]))
    if upload_row is None or not account.may_deliver_for(upload_row["department"]):
        if account.role == "steering" and upload_row is not None:
            return upload_row
        return None
    return upload_row


def _groups_of(portal: Portal, upload_id: str) -> dict:
    path = portal.state / "depots_verdicts" / f"{upload_id}.json"
    if not path.exists():
        return {"groups": [], "warnings": 0}
    return json.loads(path.read_text(encoding="utf-8"))


async def upload_page(request: Request):
    portal = _portal(request)
    account, csrf, error = _require(request, "department", "steering")
    if error is not None:
        return error
    row = _upload_for(request, account)
    if row is None:
        return portal.error(
            request, 403, "Ce dépôt n'est pas le vôtre : accès refusé.", account, csrf
        )
    contract = portal.contracts.get(row["source_id"])
    return portal.render(
        request,
        "upload.html",
        {
            "title": ("Fichier accepté" if row["outcome"] == "accepted" else "Fichier rejeté")
            + f" : {contract.title_fr if contract else row['source_id']}",
            "upload": row,
            "contract": contract,
            "verdict": _groups_of(portal, row["upload_id"]),
            "follow": portal.follow(row),
            "base": f"/direction/{row['year']}/{row['department']}/{row['source_id']}",
        },
        account=account,
        csrf=csrf,
    )


async def upload_follow(request: Request):
    portal = _portal(request)
    account, csrf, error = _require(request, "department", "steering")
    if error is not None:
        return error
    row = _upload_for(request, account)
    if row is None:
        return JSONResponse({"erreur": "accès refusé"}, status_code=403)
    return JSONResponse(portal.follow(row))


async def upload_report(request: Request):
    portal = _portal(request)
    account, csrf, error = _require(request, "department", "steering")
    if error is not None:
        return error
    row = _upload_for(request, account)
    if row is None or not row["report_path"]:
        return portal.error(request, 404, "Aucun rapport de rejet pour ce dépôt.", account, csrf)
    path = Path(row["report_path"])
    if not path.is_file() or portal.state.resolve() not in path.resolve().parents:
        return portal.error(request, 404, "Rapport introuvable.", account, csrf)
    return FileResponse(
        path,
        filename=f"{row['source_id']}_{row['year']}.rejet.csv",
        media_type="text/csv; charset=utf-8",
    )


# --- API ---------------------------------------------------------------------------------------


def _api_account(request: Request) -> Account | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    return _portal(request).store.token_account(header[7:].strip())


async def api_upload(request: Request):
    portal = _portal(request)
    account = _api_account(request)
    if account is None:
        return JSONResponse(
            {"erreur": "jeton absent, inconnu ou révoqué (en-tête Authorization: Bearer …)"},
            status_code=401,
            headers={"www-authenticate": "Bearer"},
        )
    year, department, source_id = _path_params(request)
    found, refusal = _source_context(portal, account, year, department, source_id)
    if refusal:
        return JSONResponse({"erreur": refusal[1]}, status_code=refusal[0])
    ok, refusal = await _receive_upload(request, account, year, department, source_id, "api")
    if refusal:
        return JSONResponse({"erreur": refusal[1]}, status_code=refusal[0])
    form = await request.form(max_files=1, max_fields=2)
    file = form.get("fichier")
    if not isinstance(file, UploadFile) or not file.filename:
        return JSONResponse(
            {"erreur": "champ « fichier » absent (curl -F fichier=@…)"}, status_code=400
        )
    outcome = await _judge(request, account, file, year, department, source_id, "api")
    if isinstance(outcome, tuple):
        return JSONResponse({"erreur": outcome[1]}, status_code=outcome[0])
    return JSONResponse(
        _api_verdict(portal, outcome), status_code=200 if outcome["outcome"] == "accepted" else 422
    )


def _api_verdict(portal: Portal, row: dict) -> dict:
    verdict = _groups_of(portal, row["upload_id"])
    return {
        "depot": row["upload_id"],
        "verdict": "accepté" if row["outcome"] == "accepted" else "rejeté",
        "accepte": row["outcome"] == "accepted",
        "source": row["source_id"],
        "annee": row["year"],
        "direction": row["department"],
        "fichier": Path(row["stored_path"]).name if row["outcome"] == "accepted" else None,
        "nombre_problemes": row["problem_count"],
        "problemes": [
            {
                "feuille": g["sheet"],
                "lignes": g["rows"],
                "colonne": g["column"],
                "valeur": g["value"],
                "motif": g["reason"],
                "nombre": g["count"],
            }
            for g in verdict["groups"]
        ],
        "secondes": row["verdict_seconds"],
        "suivi": f"{API_PREFIX}/depots/{row['upload_id']}",
    }


async def api_follow(request: Request):
    portal = _portal(request)
    account = _api_account(request)
    if account is None:
        return JSONResponse({"erreur": "jeton absent, inconnu ou révoqué"}, status_code=401)
    row = portal.store.upload(str(request.path_params["upload_id"]))
    if row is None or not account.may_deliver_for(row["department"]):
        return JSONResponse({"erreur": "dépôt inconnu ou d'une autre direction"}, status_code=403)
    return JSONResponse({**_api_verdict(portal, row), "suivi": portal.follow(row)})


# --- app ---------------------------------------------------------------------------------------


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
        Route("/", home),
        Route("/connexion", login_page, methods=["GET"]),
        Route("/connexion", login_submit, methods=["POST"]),
        Route("/deconnexion", logout, methods=["POST"]),
        Route("/direction", department_home),
        Route("/direction/{year:int}/{department}/{source_id}", source_page),
        Route("/direction/{year:int}/{department}/{source_id}/modele", template_download),
        Route("/direction/{year:int}/{department}/{source_id}/depot", upload, methods=["POST"]),
        Route("/depots/{upload_id}", upload_page),
        Route("/depots/{upload_id}/suivi", upload_follow),
        Route("/depots/{upload_id}/rapport", upload_report),
        Route(
            f"{API_PREFIX}/livraisons/{{year:int}}/{{department}}/{{source_id}}",
            api_upload,
            methods=["POST"],
        ),
        Route(f"{API_PREFIX}/depots/{{upload_id}}", api_follow),
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


def elapsed(since: float) -> str:
    return f"{time.perf_counter() - since:.2f} s"


__all__ = ["PortalConfig", "create_app", "fr_time"]
