"""The auditors' pages (read-only): releases, their manifests and `kpi verify`'s result, the
diff between two releases, a figure traced to its files, sheets and rows, the HTML report
and Data Docs of each release, and the portal's journal (who uploaded, reviewed, sent,
froze what and when).

The list of releases is read from the published copy (``release.releases``); verification,
diff and trace are the ``kpi`` commands' own output (``runner.kpi_command``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route

from dagster_project.portal.runner import kpi_command
from dagster_project.portal.web import _portal, _require
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


async def index(request: Request):
    portal = _portal(request)
    account, csrf, error = _require(request, "auditor", "steering")
    if error is not None:
        return error
    found = await run_in_threadpool(releases, portal)
    return portal.render(
        request,
        "audit.html",
        {"title": "Publications figées", "releases": found},
        account=account,
        csrf=csrf,
    )


async def release_page(request: Request):
    portal = _portal(request)
    account, csrf, error = _require(request, "auditor", "steering")
    if error is not None:
        return error
    release_id = str(request.path_params["release_id"])
    folder = release_dir(portal, release_id)
    if folder is None:
        return portal.error(request, 404, "Publication inconnue.", account, csrf)
    manifest = None
    if (folder / "manifest.json").is_file():
        manifest = json.dumps(
            json.loads((folder / "manifest.json").read_text(encoding="utf-8")),
            ensure_ascii=False,
            indent=2,
        )
    code, verification = await run_in_threadpool(
        kpi_command,
        portal.settings,
        "verify",
        "--release",
        release_id,
        "--releases",
        str(portal.settings.releases_dir),
    )
    portal.store.log(account, "publication vérifiée", detail=f"{release_id} : code {code}")
    return portal.render(
        request,
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
        account=account,
        csrf=csrf,
    )


async def release_file(request: Request):
    portal = _portal(request)
    account, csrf, error = _require(request, "auditor", "steering")
    if error is not None:
        return error
    folder = release_dir(portal, str(request.path_params["release_id"]))
    if folder is None:
        return portal.error(request, 404, "Publication inconnue.", account, csrf)
    path = (folder / str(request.path_params["path"])).resolve()
    if folder not in path.parents or not path.is_file():
        return portal.error(request, 404, "Fichier introuvable.", account, csrf)
    return FileResponse(path)


async def diff(request: Request):
    portal = _portal(request)
    account, csrf, error = _require(request, "auditor", "steering")
    if error is not None:
        return error
    old = request.query_params.get("ancienne", "")
    new = request.query_params.get("nouvelle", "")
    output, errors = None, {}
    if old or new:
        if not RELEASE_ID.match(old):
            errors["ancienne"] = "Choisissez la publication de départ."
        if not RELEASE_ID.match(new):
            errors["nouvelle"] = "Choisissez la publication d'arrivée."
        if not errors:
            _code, output = await run_in_threadpool(kpi_command, portal.settings, "diff", old, new)
    found = await run_in_threadpool(releases, portal)
    return portal.render(
        request,
        "diff.html",
        {
            "title": "Différences entre deux publications",
            "releases": found,
            "old": old,
            "new": new,
            "output": output,
            "errors": errors,
        },
        account=account,
        csrf=csrf,
    )


async def trace(request: Request):
    portal = _portal(request)
    account, csrf, error = _require(request, "auditor", "steering")
    if error is not None:
        return error
    q = request.query_params
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
            _code, output = await run_in_threadpool(kpi_command, portal.settings, *args)
    return portal.render(
        request,
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
        account=account,
        csrf=csrf,
    )


async def journal(request: Request):
    portal = _portal(request)
    account, csrf, error = _require(request, "auditor", "steering")
    if error is not None:
        return error
    return portal.render(
        request,
        "journal.html",
        {
            "title": "Journal du portail",
            "entries": portal.store.journal(limit=500),
            "uploads": portal.store.uploads(limit=200),
        },
        account=account,
        csrf=csrf,
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
