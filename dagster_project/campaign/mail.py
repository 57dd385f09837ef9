"""The reminders' e-mails once written: their journal, and sending them.

``record_reminder`` appends to ``journal_des_relances.csv`` (French Excel) what was written
or sent, to whom, when: the history of the reminders is never rewritten.
``send_reminders`` sends the ``.eml`` files written by ``reminders.py`` through SMTP, only
when called (``kpi remind --send``); ``send_reminders_from_env`` takes the server from
``KPI_SMTP_HOST``.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import smtplib
import ssl
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from dagster_project.campaign.dates import fr_date
from dagster_project.lib.csv_safety import neutralise_row

JOURNAL = "journal_des_relances.csv"
JOURNAL_HEADER = [
    "Écrite le",
    "Destinataire",
    "Adresse",
    "Objet",
    "Fichier",
    "Sources concernées",
    "Pièces jointes",
    "Envoyée le",
]


def record_reminder(
    out_dir: Path,
    *,
    written_on: dt.date,
    contact: str,
    email: str,
    subject: str,
    path: Path,
    sources: Sequence[str],
    attachments: Sequence[str],
    sent_at: dt.datetime | None = None,
) -> Path:
    """Append one line to the reminders' journal (``journal_des_relances.csv``, French
    Excel): what was written or sent, to whom, when. Never rewritten: the history stays."""
    journal = Path(out_dir) / JOURNAL
    new = not journal.exists()
    with journal.open("a", encoding="utf-8-sig" if new else "utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        if new:
            writer.writerow(JOURNAL_HEADER)
        writer.writerow(  # (text neutralised: csv_safety)
            neutralise_row(
                [
                    fr_date(written_on),
                    contact,
                    email,
                    subject,
                    f"{path.parent.name}/{path.name}",
                    ", ".join(sources),
                    ", ".join(attachments),
                    sent_at.strftime("%d/%m/%Y %H:%M") if sent_at else "",
                ]
            )
        )
    return journal


def read_reminder(path: Path) -> EmailMessage:
    with Path(path).open("rb") as handle:
        return BytesParser(policy=policy.default).parse(handle)


def send_reminders(
    paths: Sequence[Path],
    smtp_host: str,
    port: int = 25,
    user: str | None = None,
    password: str | None = None,
    *,
    starttls: bool | None = None,
    timeout: float = 30,
) -> list[str]:
    """Send the ``.eml`` files through SMTP; returns the recipients, in order.

    Port 465 uses implicit TLS; otherwise STARTTLS is used when ``starttls`` is true, or,
    when it is None, whenever the server offers it and credentials are given.
    """
    if not paths:
        return []
    if port == 465:
        client = smtplib.SMTP_SSL(
            smtp_host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(smtp_host, port, timeout=timeout)
    recipients = []
    with client as smtp:
        smtp.ehlo()
        if port != 465 and (starttls or (starttls is None and user and smtp.has_extn("starttls"))):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if user:
            smtp.login(user, password or "")
        for path in paths:
            message = read_reminder(path)
            smtp.send_message(message)
            recipients.append(str(message["To"]))
    return recipients


def send_reminders_from_env(paths: Sequence[Path]) -> list[str] | None:
    """Send through ``KPI_SMTP_HOST`` (``KPI_SMTP_PORT``, ``KPI_SMTP_USER``,
    ``KPI_SMTP_PASSWORD``); None, and nothing sent, when ``KPI_SMTP_HOST`` is not set."""
    host = os.environ.get("KPI_SMTP_HOST")
    if not host:
        return None
    return send_reminders(
        paths,
        host,
        int(os.environ.get("KPI_SMTP_PORT") or 25),
        os.environ.get("KPI_SMTP_USER") or None,
        os.environ.get("KPI_SMTP_PASSWORD") or None,
    )
