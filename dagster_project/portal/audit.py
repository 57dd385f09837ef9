"""The auditors' pages (read-only): releases, their manifests and `kpi verify`'s result, the
diff between two releases, a figure traced to its files, sheets and rows, the HTML report
and Data Docs of each release, and the portal's journal (who uploaded, reviewed, sent,
froze what and when).

The list of releases is read from the published copy (``release.releases``); verification,
diff and trace are the ``kpi`` commands' own output (``web.Page.kpi``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse
from starlette.routing import Route

from dagster_project.portal.web import Page, signed_in
from dagster_project.release.exports import CHECKS_PAGE

RELEASE_ID = re.compile(r"^RA-\d{4}-v\d+$")
INDICATOR_ID = re.compile(r"^[a-z0-9_]{1,100}$")
CODE_INSEE = re.compile(r"^\d[0-9AB]\d{3}$")


def releases(portal) -> list[dict]:
    published = portal.settings.warehouse
    if not published.exists():
        return []
    con = duckdb.connect(str(published.resolve()), read_only=True)
    try:
        if not con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'release' "
            "and table_name = 'releases'"
        ).fetchone()[0]:
            return []
        cursor = con.execute("select * from release.releases order by year, version")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()


def release_dir(portal, release_id: str) -> Path | None:
    if not RELEASE_ID.match(release_id):
        return None
    folder = (portal.settings.releases_dir / release_id).resolve()
    if folder.parent != portal.settings.releases_dir.resolve() or not folder.is_dir():
        return None
    return folder


@signed_in("auditor", "steering")
async def index(page: Page):
    found = await run_in_threadpool(releases, page.portal)
    return page.render("audit.html", {"title": "Publications figées", "releases": found})


@signed_in("auditor", "steering")
async def release_page(page: Page):
    portal = page.portal
    release_id = str(page.request.path_params["release_id"])
    folder = release_dir(portal, release_id)
    if folder is None:
        return page.error(404, "Publication inconnue.")
    manifest = None
    if (folder / "manifest.json").is_file():
        manifest = json.dumps(
            json.loads((folder / "manifest.json").read_text(encoding="utf-8")),
            ensure_ascii=False,
            indent=2,
        )
    code, verification = await page.kpi(
        "verify", "--release", release_id, "--releases", str(portal.settings.releases_dir)
    )
    portal.store.log(page.account, "publication vérifiée", detail=f"{release_id} : code {code}")
    return page.render(
        "release.html",
        {
            "title": f"Publication {release_id}",
            "release_id": release_id,
            "manifest": manifest,
            "verification": verification,
            "intact": code == 0,
            "has_report": (folder / "rapport" / "index.html").is_file(),
            "has_docs": (folder / "data_docs" / "index.html").is_file(),
            "has_checks": (folder / CHECKS_PAGE).is_file(),
        },
    )


@signed_in("auditor", "steering")
async def release_file(page: Page):
    portal = page.portal
    folder = release_dir(portal, str(page.request.path_params["release_id"]))
    if folder is None:
        return page.error(404, "Publication inconnue.")
    path = (folder / str(page.request.path_params["path"])).resolve()
    if folder not in path.parents or not path.is_file():
        return page.error(404, "Fichier introuvable.")
    return FileResponse(path)


@signed_in("auditor", "steering")
async def diff(page: Page):
    portal = page.portal
    old = page.request.query_params.get("ancienne", "")
    new = page.request.query_params.get("nouvelle", "")
    output, errors = None, {}
    if old or new:
        if not RELEASE_ID.match(old):
            errors["ancienne"] = "Choisissez la publication de départ."
        if not RELEASE_ID.match(new):
            errors["nouvelle"] = "Choisissez la publication d'arrivée."
        if not errors:
            _code, output = await page.kpi("diff", old, new)
    found = await run_in_threadpool(releases, portal)
    return page.render(
        "diff.html",
        {
            "title": "Différences entre deux publications",
            "releases": found,
            "old": old,
            "new": new,
            "output": output,
            "errors": errors,
        },
    )


@signed_in("auditor", "steering")
async def trace(page: Page):
    q = page.request.query_params
    indicator, year, commune = q.get("indicateur", ""), q.get("annee", ""), q.get("commune", "")
    release = q.get("publication", "")
    output, errors = None, {}
    if indicator or year:
        if not INDICATOR_ID.match(indicator):
            errors["indicateur"] = (
                "Identifiant d'indicateur attendu (lettres minuscules, chiffres, _)."
            )
        if not (year.isdigit() and len(year) == 4):
            errors["annee"] = "Année sur quatre chiffres attendue."
        if commune and not CODE_INSEE.match(commune):
            errors["commune"] = "Code INSEE sur cinq caractères attendu (62178)."
        if release and not RELEASE_ID.match(release):
            errors["publication"] = "Identifiant de publication attendu (RA-2025-v1)."
        if not errors:
            args = ["trace", indicator, "--year", year]
            if commune:
                args += ["--commune", commune]
            if release:
                args += ["--release", release]
            _code, output = await page.kpi(*args)
    return page.render(
        "trace.html",
        {
            "title": "Tracer une valeur",
            "indicator": indicator,
            "year": year,
            "commune": commune,
            "release": release,
            "output": output,
            "errors": errors,
        },
    )


@signed_in("auditor", "steering")
async def journal(page: Page):
    portal = page.portal
    return page.render(
        "journal.html",
        {
            "title": "Journal du portail",
            "entries": portal.store.journal(limit=500),
            "uploads": portal.store.uploads(limit=200),
        },
    )


def routes() -> list[Route]:
    return [
        Route("/audit", index),
        Route("/audit/publications/{release_id}", release_page),
        Route("/audit/fichiers/{release_id}/{path:path}", release_file),
        Route("/audit/diff", diff),
        Route("/audit/trace", trace),
        Route("/audit/journal", journal),
    ]
