"""Receiving an upload over HTTP, shared by the department pages and the API.

Who may deliver what (``_source_context``: the account's own department, a source its
campaign expects); what is refused before the body is read (campaign closed, no length,
too large: ``_receive_upload``); then the file is streamed to a temporary file of the state
folder (never more than the limit), judged by ``deliveries.receive``, recorded in the store
with its verdict, written in the journal, and the pipeline is asked to run for an accepted
file (``_judge``). Both ways in (web form, ``curl`` with a token) go through here, so they
refuse and accept exactly the same files.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.requests import Request

from dagster_project.defs.schedules import closing_date, is_open
from dagster_project.portal.accounts import Account
from dagster_project.portal.core import Portal
from dagster_project.portal.deliveries import UploadRefused, receive
from dagster_project.portal.rendering import fr_date
from dagster_project.portal.web import _portal, client_of

MULTIPART_SLACK = 64 * 1024  # the form's own bytes around the file


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


def _groups_of(portal: Portal, upload_id: str) -> dict:
    path = portal.state / "depots_verdicts" / f"{upload_id}.json"
    if not path.exists():
        return {"groups": [], "warnings": 0}
    return json.loads(path.read_text(encoding="utf-8"))
