"""The departments' pages: their sources, the blank template, the upload form, the verdict
and the follow-up of an upload until its figures are published.

A department account sees only its own departments' sources of the open campaigns; the
steering department may open any upload's page. The upload itself is received and judged by
``intake`` (the same path as the API); the page of an upload shows the verdict grouped by
reason and follows the run (``/depots/<id>/suivi``, polled by ``static/portal.js``, which is
not needed to deliver).
"""

from __future__ import annotations

from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.responses import FileResponse, JSONResponse, RedirectResponse
from starlette.routing import Route

from dagster_project.campaign.plan import Campaign
from dagster_project.campaign.templates.workbook import write_templates
from dagster_project.defs.schedules import closing_date, is_open
from dagster_project.portal.accounts import Account
from dagster_project.portal.core import Portal
from dagster_project.portal.intake import (
    _groups_of,
    _judge,
    _path_params,
    _receive_upload,
    _source_context,
)
from dagster_project.portal.web import Page, signed_in

CSRF_NOTHING_SAVED = "Jeton de sécurité (CSRF) absent ou invalide : rien n'a été enregistré."


def _entries_for(portal: Portal, account: Account, campaign: Campaign):
    return [e for e in campaign.entries if account.may_deliver_for(e.department)]


def _source_of(page: Page):
    """(year, department, source_id, campaign, entry) of the source in the page's path, when
    the account may deliver it in an open campaign; else the page is refused."""
    year, department, source_id = _path_params(page.request)
    found, refusal = _source_context(page.portal, page.account, year, department, source_id)
    if refusal:
        page.refuse(*refusal)
    campaign, entry = found
    return year, department, source_id, campaign, entry


@signed_in("department")
async def department_home(page: Page):
    portal, account = page.portal, page.account
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
    return page.render("department.html", {"campaigns": campaigns, "title": "Mes livraisons"})


@signed_in("department")
async def source_page(page: Page):
    return _source_view(page)


def _source_view(page: Page, context: dict | None = None, status: int = 200):
    """A source's page: its status, history and upload form (``context``: an upload's
    refusal to show in the form, with its ``status``)."""
    portal = page.portal
    year, department, source_id, campaign, entry = _source_of(page)
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
    return page.render("source.html", ctx, status)


@signed_in("department")
async def template_download(page: Page):
    portal = page.portal
    year, department, source_id, campaign, _entry = _source_of(page)
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
        return page.error(404, "Aucun modèle pour cette source.")
    portal.store.log(
        page.account, "modèle téléchargé", year=year, department=department, source_id=source_id
    )
    return FileResponse(
        path,
        filename=path.name,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


@signed_in("department")
async def upload(page: Page):
    request, account = page.request, page.account
    year, department, source_id, _campaign, _entry = _source_of(page)
    ok, refusal = await _receive_upload(request, account, year, department, source_id, "web")
    if refusal:
        return _source_view(page, {"upload_error": refusal[1]}, refusal[0])
    form = await page.form(CSRF_NOTHING_SAVED, max_files=1, max_fields=3)
    file = form.get("fichier")
    if not isinstance(file, UploadFile) or not file.filename:
        return _source_view(page, {"upload_error": "Choisissez le fichier à déposer."}, 400)
    outcome = await _judge(request, account, file, year, department, source_id, "web")
    if isinstance(outcome, tuple):
        return _source_view(page, {"upload_error": outcome[1]}, outcome[0])
    return RedirectResponse(f"/depots/{outcome['upload_id']}", status_code=303)


def _upload_for(page: Page):
    account = page.account
    upload_row = page.portal.store.upload(str(page.request.path_params["upload_id"]))
    if upload_row is None or not account.may_deliver_for(upload_row["department"]):
        if account.role == "steering" and upload_row is not None:
            return upload_row
        return None
    return upload_row


@signed_in("department", "steering")
async def upload_page(page: Page):
    portal = page.portal
    row = _upload_for(page)
    if row is None:
        return page.error(403, "Ce dépôt n'est pas le vôtre : accès refusé.")
    contract = portal.contracts.get(row["source_id"])
    return page.render(
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
    )


@signed_in("department", "steering")
async def upload_follow(page: Page):
    row = _upload_for(page)
    if row is None:
        return JSONResponse({"erreur": "accès refusé"}, status_code=403)
    return JSONResponse(page.portal.follow(row))


@signed_in("department", "steering")
async def upload_report(page: Page):
    portal = page.portal
    row = _upload_for(page)
    if row is None or not row["report_path"]:
        return page.error(404, "Aucun rapport de rejet pour ce dépôt.")
    path = Path(row["report_path"])
    if not path.is_file() or portal.state.resolve() not in path.resolve().parents:
        return page.error(404, "Rapport introuvable.")
    return FileResponse(
        path,
        filename=f"{row['source_id']}_{row['year']}.rejet.csv",
        media_type="text/csv; charset=utf-8",
    )


def routes() -> list[Route]:
    return [
        Route("/direction", department_home),
        Route("/direction/{year:int}/{department}/{source_id}", source_page),
        Route("/direction/{year:int}/{department}/{source_id}/modele", template_download),
        Route("/direction/{year:int}/{department}/{source_id}/depot", upload, methods=["POST"]),
        Route("/depots/{upload_id}", upload_page),
        Route("/depots/{upload_id}/suivi", upload_follow),
        Route("/depots/{upload_id}/rapport", upload_report),
    ]
