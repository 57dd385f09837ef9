"""`kpi templates`, `kpi status`, `kpi remind`, `kpi next-campaign`: the yearly campaign."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dagster_project.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    common_options,
    connect,
    json_option,
    settings_from,
)
from dagster_project.settings import Settings


def _campaign_or_none(settings: Settings, year: int):
    from dagster_project.campaign.plan import CampaignError, campaign_path, load_campaign

    if not campaign_path(settings.sources_dir, year).exists():
        return None
    try:
        return load_campaign(settings.sources_dir, year)
    except CampaignError as exc:
        print(f"kpi : fichier de campagne invalide\n{exc}", file=sys.stderr)
        raise SystemExit(EXIT_ERROR) from exc


def cmd_templates(args: argparse.Namespace) -> int:
    from dagster_project.campaign.templates.workbook import write_templates

    settings = settings_from(args)
    campaign = _campaign_or_none(settings, args.year)
    deadlines = None
    if campaign is not None:
        deadlines = {
            (e.department, e.source_id): (e.due_date, e.owner.email) for e in campaign.entries
        }
        if campaign.steering is not None:
            deadlines = {
                key: (due, campaign.steering.email) for key, (due, _owner) in deadlines.items()
            }
    out = Path(args.out).resolve()
    written = write_templates(args.year, out, departments=args.department, deadlines=deadlines)
    print(f"{len(written)} modèles écrits dans {out}")
    return EXIT_OK


def _status_rows(settings: Settings, year: int, today):
    from dagster_project.campaign.status import campaign_status

    con = connect(settings)
    try:
        from dagster_project.ingest.store import ensure_ingest_tables

        ensure_ingest_tables(con)
        rows = campaign_status(con, settings.sources_dir, year, today)
    except Exception:
        con.close()
        raise
    return con, rows


def cmd_status(args: argparse.Namespace) -> int:
    from dagster_project.campaign.dates import parse_today
    from dagster_project.campaign.plan import CampaignError
    from dagster_project.campaign.status import write_status_table
    from dagster_project.campaign.status_report import export_status_xlsx, format_status
    from dagster_project.contracts.model import default_contracts
    from dagster_project.ingest.discovery import unrecognised_files

    settings = settings_from(args)
    today = parse_today(args.today or settings.today)
    try:
        con, rows = _status_rows(settings, args.year, today)
    except CampaignError as exc:
        print(f"kpi status : {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        write_status_table(con, args.year, rows)
    finally:
        con.close()
    from dagster_project.defs.schedules import report_status_written

    report_status_written(args.year, today, rows, "kpi status")
    unrecognised = unrecognised_files(settings.sources_dir, default_contracts())
    path = export_status_xlsx(rows, Path(args.xlsx)) if args.xlsx else None
    if args.json:
        from dagster_project.cli.json_output import dumps, status_document

        print(dumps(status_document(args.year, today, rows, unrecognised, path)))
        return EXIT_OK
    print(format_status(rows, unrecognised))
    if path:
        print(f"Export Excel : {path}")
    return EXIT_OK


def cmd_remind(args: argparse.Namespace) -> int:
    import datetime as dt
    import os

    from dagster_project.campaign.dates import parse_today
    from dagster_project.campaign.mail import (
        read_reminder,
        record_reminder,
        send_reminders_from_env,
    )
    from dagster_project.campaign.plan import CampaignError
    from dagster_project.campaign.reminders import write_reminders

    settings = settings_from(args)
    today = parse_today(args.today or settings.today)
    out = Path(args.out or settings.warehouse.parent / "relances" / str(args.year)).resolve()
    if args.send and not os.environ.get("KPI_SMTP_HOST"):
        print(
            "kpi remind : --send demande un serveur de messagerie (KPI_SMTP_HOST, et au besoin "
            "KPI_SMTP_PORT, KPI_SMTP_USER, KPI_SMTP_PASSWORD) ; rien n'a été écrit ni envoyé.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    con = connect(settings)
    try:
        paths = write_reminders(con, settings.sources_dir, args.year, today, out)
    except CampaignError as exc:
        print(f"kpi remind : {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        con.close()
    print(f"{len(paths)} relance(s) écrite(s) dans {out}, dossier du {today:%d/%m/%Y}")
    for path in paths:
        print(f"  {path.name}")
    if not paths:
        return EXIT_OK
    if not args.send:
        print(
            "Rien n'a été envoyé : relisez les courriels (.eml), puis relancez avec --send "
            "pour les envoyer. Journal : journal_des_relances.csv"
        )
        return EXIT_OK
    sent = send_reminders_from_env(paths) or []
    sent_at = dt.datetime.now()
    for path in paths:
        message = read_reminder(path)
        address = message["To"].addresses[0]
        record_reminder(
            out,
            written_on=today,
            contact=address.display_name,
            email=address.addr_spec,
            subject=str(message["Subject"]),
            path=path,
            sources=[],
            attachments=[part.get_filename() for part in message.iter_attachments()],
            sent_at=sent_at,
        )
    print(f"Envoyées à : {', '.join(sent)} (journal : journal_des_relances.csv)")
    return EXIT_OK


def cmd_next_campaign(args: argparse.Namespace) -> int:
    """``kpi next-campaign``: prints what was written (stdout) or why not (stderr, code 1)."""
    from dagster_project.campaign.plan import CampaignError, campaign_path
    from dagster_project.campaign.rollover import RolloverError, format_rollover, roll_campaign

    sources_dir, year = settings_from(args).sources_dir, args.year
    try:
        result = roll_campaign(sources_dir, year, force=args.force)
    except RolloverError as exc:
        print(f"kpi next-campaign : {exc}", file=sys.stderr)
        return EXIT_ERROR
    except CampaignError as exc:
        print(
            f"kpi next-campaign : la campagne {year + 1} obtenue n'est pas valide, rien n'a été "
            f"écrit.\n{exc}\nCorrigez d'abord {campaign_path(sources_dir, year)} (contrat ou "
            "direction disparus, échéance avant l'ouverture...), puis relancez.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    print(format_rollover(result))
    return EXIT_OK


def register(sub) -> None:
    templates = sub.add_parser(
        "templates", help="écrire les modèles vierges de la campagne, par direction"
    )
    templates.add_argument(
        "--year", type=int, required=True, help="année de la campagne (AAAA, ex. 2025)"
    )
    templates.add_argument("--out", required=True, help="dossier de sortie")
    templates.add_argument("--department", nargs="+", help="seulement ces directions")
    templates.add_argument("--sources", help="dossier des livraisons (pour le fichier de campagne)")
    templates.set_defaults(func=cmd_templates)

    status = sub.add_parser("status", help="état de la collecte : reçu, accepté, rejeté, en retard")
    status.add_argument(
        "--year", type=int, required=True, help="année de la campagne (AAAA, ex. 2025)"
    )
    status.add_argument("--sources", help="dossier des livraisons (défaut ./sources)")
    common_options(status)
    status.add_argument("--today", help="date du jour (AAAA-MM-JJ) pour juger les retards")
    status.add_argument("--xlsx", help="exporter aussi l'état dans ce classeur Excel")
    json_option(status)
    status.set_defaults(func=cmd_status)

    remind = sub.add_parser(
        "remind",
        help="écrire les courriels de relance (.eml) des retards, rejets et valeurs à confirmer",
    )
    remind.add_argument(
        "--year", type=int, required=True, help="année de la campagne (AAAA, ex. 2025)"
    )
    remind.add_argument("--sources", help="dossier des livraisons (défaut ./sources)")
    common_options(remind)
    remind.add_argument("--today", help="date du jour (AAAA-MM-JJ)")
    remind.add_argument("--out", help="dossier des relances (défaut ./relances/<année>)")
    remind.add_argument(
        "--send",
        action="store_true",
        help="envoyer les courriels écrits (serveur KPI_SMTP_HOST) ; sans cette option, rien "
        "n'est envoyé",
    )
    remind.set_defaults(func=cmd_remind)

    next_campaign = sub.add_parser(
        "next-campaign",
        help="préparer le fichier de campagne de l'année suivante (dates décalées d'un an)",
    )
    next_campaign.add_argument(
        "--year",
        type=int,
        required=True,
        help="année de la campagne à reprendre ; écrit sources/<année + 1>/campagne.yml",
    )
    next_campaign.add_argument("--sources", help="dossier des livraisons (défaut ./sources)")
    next_campaign.add_argument(
        "--force", action="store_true", help="remplacer le fichier de l'année suivante s'il existe"
    )
    next_campaign.set_defaults(func=cmd_next_campaign)
