"""The ``Portal`` object: the application's state, shared by every request handler.

``create_app`` (``app``) builds one ``Portal`` from a ``PortalConfig`` and hangs it on
``app.state.portal``; the page modules reach it through ``web._portal(request)``. It holds
the portal's store, the key signing the cookies, the templates, the contracts and the
pipeline runner, and answers what several pages ask: render a page or an error, the session
of a request, the campaigns, their status and a source's history read from the published
copy (read-only: never waits for a run), and where an upload stands (``follow``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from dagster_project.campaign.dates import parse_today
from dagster_project.campaign.plan import Campaign, CampaignError, load_campaign
from dagster_project.campaign.status import StatusRow, campaign_status
from dagster_project.contracts.model import default_contracts
from dagster_project.defs.schedules import campaign_years, is_open
from dagster_project.ingest.readers.sheet import MAX_FILE_BYTES
from dagster_project.portal import security
from dagster_project.portal.accounts import Account
from dagster_project.portal.deliveries import publication_state
from dagster_project.portal.rendering import _templates
from dagster_project.portal.runner import PipelineRunner
from dagster_project.portal.security import secret_key
from dagster_project.portal.store import PortalStore, state_dir
from dagster_project.settings import Settings

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
