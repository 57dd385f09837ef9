"""The JSON API (``/api/v1``): a department's system delivers a file with an API token and
follows it, without a browser.

``Authorization: Bearer kpi_<id>_<secret>`` (``kpi portal token``) stands for the account;
no session, no CSRF token. A delivery goes through ``intake`` like the web form (same
checks, same verdict, same journal); the answer is the verdict in JSON (200 accepted, 422
rejected, with the problems grouped) and the address to follow it.
"""

from __future__ import annotations

from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dagster_project.portal.accounts import Account
from dagster_project.portal.core import API_PREFIX, Portal
from dagster_project.portal.intake import (
    _groups_of,
    _judge,
    _path_params,
    _receive_upload,
    _source_context,
)
from dagster_project.portal.web import _portal


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


def routes() -> list[Route]:
    return [
        Route(
            f"{API_PREFIX}/livraisons/{{year:int}}/{{department}}/{{source_id}}",
            api_upload,
            methods=["POST"],
        ),
        Route(f"{API_PREFIX}/depots/{{upload_id}}", api_follow),
    ]
