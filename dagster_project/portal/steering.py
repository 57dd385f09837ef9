"""The steering department's pages: the campaign at a glance, reminders, review, freeze.

The campaign's status is computed by ``campaign.status.campaign_status`` on the published
copy (read-only, never waits for a run). Reminders, reviews and the freeze go through the
``kpi`` commands themselves (``web.Page.kpi``): same checks, same messages, same turn in the
warehouse as on the command line; the portal records who did what in its journal.

The reminders' page is a preview that writes nothing: ``kpi remind`` writes the day's
e-mails into a temporary folder, read then removed, so that neither the reminders' folder
nor their journal (``journal_des_relances.csv``) changes until they are sent
(``kpi remind --send``, which writes them, sends them and records both in the journal).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from dagster_project.campaign.mail import read_reminder
from dagster_project.campaign.status import summarize
from dagster_project.defs.schedules import closing_date
from dagster_project.portal.web import Page, signed_in
from dagster_project.quality.review import STATUSES

FILTERS = {"retard": "en retard", "rejete": "rejeté", "attente": "en attente de traitement"}
REVIEW_STATUSES = tuple(STATUSES)


def _year(page: Page) -> int | None:
    request, portal = page.request, page.portal
    value = request.query_params.get("annee") or request.path_params.get("year")
    if value and str(value).isdigit():
        return int(value)
    opened = portal.open_campaigns()
    if opened:
        return opened[-1].year
    campaigns = portal.campaigns()
    return campaigns[-1].year if campaigns else None


def progress_chart(rows, campaign, today: dt.date) -> dict:
    """An SVG line chart (drawn on the server, no script): accepted deliveries in force over
    time against the deliveries due by each date, from the opening to the closing date."""
    expected = [r for r in rows if r.expected and r.required]
    start = campaign.opening_date
    accepted = sorted(
        r.in_force_received_at.date() for r in expected if r.in_force_received_at is not None
    )
    # the axis runs to the last date drawn: a delivery received after the closing date (or
    # after a back-dated --today) is drawn where it happened, never past the frame
    end = max([closing_date(campaign), today, *accepted])
    days = max(1, (end - start).days)
    width, height, left, bottom = 640, 240, 48, 28
    total = max(1, len(expected))

    def x(day: dt.date) -> float:
        return left + (width - left - 10) * min(days, max(0, (day - start).days)) / days

    def y(count: int) -> float:
        return 10 + (height - bottom - 10) * (1 - count / total)

    due = sorted(r.due_date for r in expected if r.due_date)
    due_points = [(x(start), y(0))]
    for i, day in enumerate(due, 1):
        due_points += [(x(day), y(i - 1)), (x(day), y(i))]
    due_points.append((x(end), y(len(due))))
    got_points = [(x(start), y(0))]
    for i, day in enumerate(accepted, 1):
        day = max(day, start)
        got_points += [(x(day), y(i - 1)), (x(day), y(i))]
    got_points.append((x(min(today, end)), y(len(accepted))))
    ticks = [(y(n), n) for n in sorted({0, total // 2, total})]
    return {
        "width": width,
        "height": height,
        "left": left,
        "bottom": bottom,
        "due": " ".join(f"{a:.1f},{b:.1f}" for a, b in due_points),
        "got": " ".join(f"{a:.1f},{b:.1f}" for a, b in got_points),
        "today_x": x(min(today, end)),
        "ticks": ticks,
        "start": start,
        "end": end,
        "total": total,
        "accepted": len(accepted),
        "due_by_today": sum(1 for d in due if d <= today),
    }


@signed_in("steering")
async def overview(page: Page):
    portal = page.portal
    year = _year(page)
    campaign = portal.campaign(year) if year else None
    if campaign is None:
        return page.error(404, "Aucune campagne lisible.")
    rows = await run_in_threadpool(portal.status_rows, year)
    chosen = page.request.query_params.get("filtre", "")
    shown = rows
    if chosen == "retard":
        shown = [r for r in rows if r.late]
    elif chosen == "rejete":
        shown = [r for r in rows if r.rejected]
    elif chosen == "attente":
        shown = [r for r in rows if r.pending_file]
    today = portal.config.today()
    return page.render(
        "steering.html",
        {
            "title": f"Campagne {year}",
            "year": year,
            "years": [c.year for c in portal.campaigns()],
            "campaign": campaign,
            "rows": shown,
            "all_count": len(rows),
            "summary": summarize(rows, year),
            "filters": FILTERS,
            "chosen": chosen,
            "chart": progress_chart(rows, campaign, today),
            "uploads": portal.store.uploads(year=year, limit=20),
            "runs": portal.runner.runs()[-10:],
        },
    )


def _remind_args(page: Page, year: int, out: Path) -> list[str]:
    portal = page.portal
    return [
        "remind",
        "--year",
        str(year),
        "--out",
        str(out),
        "--sources",
        str(portal.settings.sources_dir),
        "--today",
        portal.config.today().isoformat(),
    ]


def _message_preview(path: Path) -> dict:
    message = read_reminder(path)
    body = message.get_body(preferencelist=("plain",))
    return {
        "to": message["To"],
        "subject": message["Subject"],
        "body": body.get_content() if body else "",
        "attachments": [a.get_filename() for a in message.iter_attachments()],
    }


async def _preview_reminders(page: Page, year: int) -> tuple[int, str, list[dict]]:
    """(exit code, what to say, e-mails) of the reminders ``kpi remind`` would write today,
    written into a temporary folder and removed: the preview leaves the reminders' folder and
    their journal as they were."""
    today = page.portal.config.today()
    with tempfile.TemporaryDirectory(prefix="kpi-apercu-relances-") as folder:
        code, output = await page.kpi(*_remind_args(page, year, Path(folder)))
        day = Path(folder) / today.isoformat()
        messages = [_message_preview(path) for path in sorted(day.glob("*.eml"))]
    if code == 0:  # the command's own words name the temporary folder: say what it means here
        output = (
            f"{len(messages)} relance(s) en aperçu pour le {today:%d/%m/%Y} : rien n'a été "
            "écrit ni envoyé."
        )
    return code, output, messages


@signed_in("steering")
async def reminders(page: Page):
    portal = page.portal
    year = _year(page)
    sent = None
    if page.request.method == "POST":
        await page.form(max_files=0, max_fields=5)
        code, output = await page.kpi(
            *_remind_args(page, year, portal.state / "relances"), "--send"
        )
        sent = {"code": code, "output": output}
        portal.store.log(
            page.account,
            "relances envoyées" if code == 0 else "relances non envoyées",
            year=year,
            detail=output.splitlines()[-1] if output else "",
        )
    code, preview, messages = await _preview_reminders(page, year)
    return page.render(
        "reminders.html",
        {
            "title": f"Relances de la campagne {year}",
            "year": year,
            "preview": preview,
            "code": code,
            "messages": messages,
            "sent": sent,
        },
    )


@signed_in("steering")
async def review(page: Page):
    year = _year(page)
    result = None
    errors = {}
    if page.request.method == "POST":
        form = await page.form(max_files=0, max_fields=8)
        indicator = str(form.get("indicateur", "")).strip()
        commune = str(form.get("commune", "")).strip()
        status = str(form.get("statut", "")).strip()
        comment = str(form.get("commentaire", "")).strip()
        if not indicator:
            errors["indicateur"] = "Saisissez l'identifiant de l'indicateur."
        if status not in REVIEW_STATUSES:
            errors["statut"] = "Choisissez un statut."
        if not errors:
            args = [
                "review",
                "set",
                "--year",
                str(year),
                "--indicator",
                indicator,
                "--status",
                status,
                "--reviewer",
                page.account.login,
            ]
            if commune:
                args += ["--commune", commune]
            if comment:
                args += ["--comment", comment]
            code, output = await page.kpi(*args)
            result = {"code": code, "output": output}
            if code == 0:
                page.portal.store.log(
                    page.account,
                    "valeur revue",
                    year=year,
                    detail=f"{indicator} {commune or 'agglomération'} : {status} — {comment}",
                )
            else:
                errors["indicateur"] = output.splitlines()[-1] if output else "refusé"
    code, listing = await page.kpi("review", "list", "--year", str(year))
    return page.render(
        "review.html",
        {
            "title": f"Revue des valeurs {year}",
            "year": year,
            "listing": listing,
            "code": code,
            "result": result,
            "errors": errors,
            "statuses": REVIEW_STATUSES,
        },
    )


def _outcome_line(output: str, *starts: str) -> str:
    """The line of a command's output that says what came of it, for the journal: the first
    starting with one of ``starts``, else the last. ``kpi freeze`` prints its progress on
    stderr, which comes after stdout in ``output``: its last line is a step (« publication …
    en place »), not the release frozen or the reason of a refusal."""
    lines = output.splitlines()
    return next((line for line in lines if line.startswith(starts)), lines[-1] if lines else "")


@signed_in("steering")
async def freeze(page: Page):
    year = _year(page)
    result = None
    errors = {}
    if page.request.method == "POST":
        form = await page.form(max_files=0, max_fields=5)
        if form.get("confirmation") != "oui":
            errors["confirmation"] = "Cochez la case pour confirmer le gel."
        else:
            reason = str(form.get("motif", "")).strip()
            args = ["freeze", "--year", str(year)]
            if reason:
                args += ["--reason", reason]
            code, output = await page.kpi(*args)
            result = {"code": code, "output": output}
            page.portal.store.log(
                page.account,
                "gel" if code == 0 else "gel refusé",
                year=year,
                detail=_outcome_line(output, "Publication ", "kpi freeze :")[:500],
            )
    code, gate = await page.kpi("freeze", "--year", str(year), "--dry-run")
    return page.render(
        "freeze.html",
        {
            "title": f"Gel de l'année {year}",
            "year": year,
            "gate": gate,
            "passes": code == 0,
            "result": result,
            "errors": errors,
        },
    )


def routes() -> list[Route]:
    return [
        Route("/pilotage", overview),
        Route("/pilotage/relances", reminders, methods=["GET", "POST"]),
        Route("/pilotage/revue", review, methods=["GET", "POST"]),
        Route("/pilotage/gel", freeze, methods=["GET", "POST"]),
    ]
