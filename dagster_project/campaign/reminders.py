"""Reminders to the departments: one French e-mail per owner who is behind.

``write_reminders`` writes one e-mail (``.eml``) per owner with something late, rejected or
to confirm in the campaign status (``status.py``), carrying what the department needs to act
(the rejection report, the notice of values to confirm, the blank template), and records it
in the reminders' journal. Nothing is sent here: ``mail.py`` sends the files through SMTP,
only when called.

Every date is judged against a ``today`` argument, never the system clock.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

import duckdb

from dagster_project.campaign.dates import days_fr, fr_date
from dagster_project.campaign.mail import record_reminder
from dagster_project.campaign.plan import (
    DEFAULT_SENDER,
    DEFAULT_SENDER_NAME,
    Campaign,
    load_campaign,
)
from dagster_project.campaign.status import StatusRow, campaign_status, problems_fr
from dagster_project.ingest.discovery import NOTICE_SUFFIX, REPORT_SUFFIX
from dagster_project.warehouse.relations import table_exists

MAX_PROBLEMS_IN_REMINDER = 10
REMINDER_PREFIX = "relance"


@dataclass
class ReminderItem:
    row: StatusRow
    problems: list = field(default_factory=list)  # ingest.report.ProblemGroup
    atypical: list[str] = field(default_factory=list)  # values to confirm (French lines)


def reminder_subject(year: int) -> str:
    return f"Campagne {year} du rapport d'activité : livraisons attendues"


def _needs_reminder(row: StatusRow) -> bool:
    if not row.expected or not row.email or row.pending_file:
        return False
    return row.late or row.rejected or row.atypical_count > 0


def _problem_groups(con: duckdb.DuckDBPyConnection, delivery_id: str) -> list:
    """The rejection's problems grouped as in its report (``ingest.report.group_problems``:
    the same reason on many rows is one line with its row ranges), in the order found."""
    from dagster_project.ingest.report import group_problems

    if not table_exists(con, "ingest.delivery_problems"):
        return []
    cursor = con.execute(
        "select sheet, row_number, column_name, value, reason from ingest.delivery_problems "
        "where delivery_id = ? and severity = 'error' order by rowid",
        [delivery_id],
    )
    names = [d[0] for d in cursor.description]
    return group_problems(dict(zip(names, r, strict=True)) for r in cursor.fetchall())


def reminder_body(
    year: int,
    contact: str,
    items: Sequence[ReminderItem],
    sources_dir: Path,
    today: dt.date,
    sender_name: str = DEFAULT_SENDER_NAME,
    sender: str = DEFAULT_SENDER,
) -> str:
    late = [i for i in items if i.row.late and not i.row.rejected]
    rejected = [i for i in items if i.row.rejected]
    to_confirm = [i for i in items if i.atypical and not i.row.rejected]
    lines = [
        f"Bonjour {contact}," if contact else "Bonjour,",
        "",
        f"Dans le cadre de la campagne {year} du rapport d'activité, voici, au "
        f"{fr_date(today)}, les livraisons de données qui nous manquent encore de votre part.",
    ]
    if late:
        lines += ["", "Livraisons en retard (aucun fichier reçu) :"]
        for item in late:
            row = item.row
            lines.append(
                f"  - {row.title_fr} ({row.source_id}), {row.direction_fr} : attendue le "
                f"{fr_date(row.due_date)}, en retard de {days_fr(row.days_late)}."
            )
            lines.append(
                f"    Fichier à déposer dans le dossier de la campagne {year} de votre direction "
                f"({year}/{row.department}), sous le nom {row.source_id}_{year}.xlsx : le modèle "
                "vierge est joint à ce message."
            )
    if rejected:
        lines += ["", "Livraisons rejetées (fichier reçu mais refusé au contrôle) :"]
        for item in rejected:
            row = item.row
            lines.append(
                f"  - {row.title_fr} ({row.source_id}), {row.direction_fr} : le fichier "
                f"{row.latest_file} reçu le {fr_date(row.received_at)} a été rejeté "
                f"({problems_fr(row.problem_count)})."
            )
            if row.in_force_file:
                lines.append(
                    f"    La livraison précédente ({row.in_force_file}, reçue le "
                    f"{fr_date(row.in_force_received_at)}) reste en vigueur d'ici la correction."
                )
            elif row.late:
                lines.append(
                    f"    Aucune livraison n'est en vigueur : échéance du {fr_date(row.due_date)} "
                    f"dépassée de {days_fr(row.days_late)}."
                )
            else:
                lines.append(
                    f"    Aucune livraison n'est en vigueur ; échéance le {fr_date(row.due_date)}."
                )
            if item.problems:
                shown = item.problems[:MAX_PROBLEMS_IN_REMINDER]
                total = len(item.problems)
                lines.append(
                    "    Motifs du rejet"
                    + (f" ({len(shown)} premiers sur {total})" if total > len(shown) else "")
                    + " :"
                )
                for number, group in enumerate(shown, start=1):
                    lines.append(f"      {number}. {group.line_fr()}")
            if row.report_path:
                lines.append(
                    f"    Rapport complet joint à ce message : {row.latest_file}{REPORT_SUFFIX} "
                    "(les mêmes motifs, avec toutes les lignes concernées, à ouvrir avec Excel)."
                )
    if to_confirm:
        lines += [
            "",
            "Chiffres à confirmer (fichier accepté, mais ces valeurs semblent anormales) :",
        ]
        for item in to_confirm:
            row = item.row
            lines.append(
                f"  - {row.title_fr} ({row.source_id}), fichier {row.in_force_file} : "
                f"{row.atypical_count} valeur(s) à confirmer, détail joint : "
                f"{row.in_force_file}{NOTICE_SUFFIX}."
            )
            lines += [f"      {line}" for line in item.atypical[:MAX_PROBLEMS_IN_REMINDER]]
        lines.append(
            "    Si ces chiffres sont justes, dites-le-nous en répondant à ce message ; "
            "sinon déposez un fichier corrigé."
        )
    lines += [
        "",
        "Merci de déposer le fichier (ou le fichier corrigé) dans le dossier de votre direction "
        f"pour la campagne {year} ; un fichier déposé remplace entièrement le précédent.",
        "Pour toute question, répondez simplement à ce message.",
        "",
        "Cordialement,",
        sender_name,
        sender,
    ]
    return "\n".join(lines) + "\n"


def _file_slug(email: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "_", email.lower().replace("@", "_at_"))


def write_reminders(
    con: duckdb.DuckDBPyConnection,
    sources_dir: Path,
    year: int,
    today: dt.date,
    out_dir: Path,
    *,
    sender: str | None = None,
    sender_name: str | None = None,
    campaign: Campaign | None = None,
    rows: Sequence[StatusRow] | None = None,
) -> list[Path]:
    """One ``.eml`` per owner with something late, rejected or to confirm; returns their
    paths, ``out_dir/<today>/relance_<year>_<address>.eml``.

    Each message carries what the department needs to act (the rejection report, the notice
    of values to confirm, the blank template). Reminders of earlier days are kept, and each
    one written is recorded in ``out_dir/journal_des_relances.csv`` (``record_reminder``);
    nothing is sent here (``send_reminders``). The sender is, in order: ``sender``, env ``KPI_REMINDER_FROM``,
    the campaign's ``steering.email``, ``pilotage@bethunebruay.fr``.
    """
    if campaign is None:
        campaign = load_campaign(sources_dir, year)
    if rows is None:
        rows = campaign_status(con, sources_dir, year, today, campaign=campaign)
    steering = campaign.steering
    sender = (
        sender
        or os.environ.get("KPI_REMINDER_FROM")
        or (steering.email if steering else None)
        or DEFAULT_SENDER
    )
    sender_name = sender_name or (steering.direction_fr if steering else DEFAULT_SENDER_NAME)

    from dagster_project.quality.notices import atypical_lines

    by_owner: dict[str, list[ReminderItem]] = {}
    for row in rows:
        if not _needs_reminder(row):
            continue
        problems = (
            _problem_groups(con, row.latest_delivery_id)
            if row.rejected and row.latest_delivery_id
            else []
        )
        atypical = (
            atypical_lines(con, year, row.in_force_delivery_id)
            if row.atypical_count and row.in_force_delivery_id
            else []
        )
        by_owner.setdefault(row.email.lower(), []).append(ReminderItem(row, problems, atypical))

    # every day's reminders are kept in a folder of their own (what was written, for whom);
    # a second `kpi remind` the same day replaces that day's files only
    day_dir = Path(out_dir) / today.isoformat()
    day_dir.mkdir(parents=True, exist_ok=True)
    for stale in day_dir.glob(f"{REMINDER_PREFIX}_{year}_*.eml"):
        stale.unlink()
    sent_at = dt.datetime.combine(today, dt.time(8, 0)).astimezone()
    with tempfile.TemporaryDirectory(prefix="kpi-modeles-") as folder:
        templates = _blank_templates(Path(folder), year, campaign, by_owner)
        return _write_messages(
            by_owner,
            templates,
            day_dir,
            Path(out_dir),
            sources_dir,
            year,
            today,
            sent_at,
            sender,
            sender_name,
        )


def _write_messages(
    by_owner, templates, day_dir, out_dir, sources_dir, year, today, sent_at, sender, sender_name
) -> list[Path]:
    written = []
    for email, items in sorted(by_owner.items()):
        contact = items[0].row.owner
        message = EmailMessage(policy=policy.SMTP)
        message["Subject"] = reminder_subject(year)
        message["From"] = formataddr((sender_name, sender))
        message["To"] = formataddr((contact, email)) if contact else email
        message["Date"] = format_datetime(sent_at)
        message["Message-ID"] = (
            f"<campagne-{year}-{today.isoformat()}-{_file_slug(email)}@{sender.split('@')[-1]}>"
        )
        message.set_content(
            reminder_body(year, contact, items, sources_dir, today, sender_name, sender),
            charset="utf-8",
            cte="quoted-printable",
        )
        attached = []
        for attachment in _attachments(sources_dir, year, items, templates):
            message.add_attachment(
                attachment.read_bytes(),
                maintype="application",
                subtype=_SUBTYPES.get(attachment.suffix.lower(), "octet-stream"),
                filename=attachment.name,
            )
            attached.append(attachment.name)
        path = day_dir / f"{REMINDER_PREFIX}_{year}_{_file_slug(email)}.eml"
        path.write_bytes(message.as_bytes())
        written.append(path)
        record_reminder(
            out_dir,
            written_on=today,
            contact=contact,
            email=email,
            subject=reminder_subject(year),
            path=path,
            sources=[i.row.source_id for i in items],
            attachments=attached,
        )
    return written


_SUBTYPES = {
    ".csv": "csv",
    ".xlsx": "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _blank_templates(folder: Path, year: int, campaign, by_owner) -> dict:
    """(department, source_id) -> the blank template to attach, for late or rejected items
    (written by ``templates.workbook.write_templates`` into ``folder``, a temporary one)."""
    wanted = {
        (i.row.department, i.row.source_id)
        for items in by_owner.values()
        for i in items
        if i.row.late or i.row.rejected
    }
    if not wanted:
        return {}
    from dagster_project.campaign.templates.workbook import write_templates

    steering = campaign.steering.email if campaign.steering else None
    deadlines = {
        (e.department, e.source_id): (e.due_date, steering or e.owner.email)
        for e in campaign.entries
    }
    paths = write_templates(
        year, folder, departments=sorted({d for d, _ in wanted}), deadlines=deadlines
    )
    return {
        (p.parent.name, p.name.removesuffix(f"_{year}.xlsx")): p
        for p in paths
        if (p.parent.name, p.name.removesuffix(f"_{year}.xlsx")) in wanted
    }


def _attachments(sources_dir: Path, year: int, items, templates: dict) -> list[Path]:
    """What a department needs to act: the rejection report, the notice of the values to
    confirm, the blank template; only files that exist, never through a link."""
    found = []
    for item in items:
        row = item.row
        folder = Path(sources_dir) / str(year) / row.department
        if row.rejected and row.latest_file:
            found.append(folder / f"{row.latest_file}{REPORT_SUFFIX}")
        if item.atypical and row.in_force_file:
            found.append(folder / f"{row.in_force_file}{NOTICE_SUFFIX}")
        template = templates.get((row.department, row.source_id))
        if template is not None:
            found.append(template)
    return [p for p in found if p.is_file() and not p.is_symlink()]
