"""The ``kpi`` command line.

Public interface: the commands and options below are what users' scripts rely on; change
them only with a note in docs/cli.md. Exit codes: 0 success, 1 error, 3 the run finished but
blocking checks failed (``kpi run``) or the freeze was refused (``kpi freeze``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from dagster_project.settings import PROJECT_ROOT, Settings

EXIT_OK, EXIT_ERROR, EXIT_BLOCKED = 0, 1, 3


def _settings(args: argparse.Namespace) -> Settings:
    base = Settings.from_env()
    settings = Settings(
        sources_dir=Path(getattr(args, "sources", None) or base.sources_dir).resolve(),
        warehouse=Path(getattr(args, "warehouse", None) or base.warehouse).resolve(),
        releases_dir=Path(getattr(args, "releases", None) or base.releases_dir).resolve(),
        today=getattr(args, "today", None) or base.today,
        dbt_target=getattr(args, "target", None) or base.dbt_target,
    )
    settings.export()
    return settings


def _connect(settings: Settings, read_only: bool = False):
    import duckdb

    return duckdb.connect(str(settings.warehouse), read_only=read_only)


# --- kpi run ---------------------------------------------------------------------------------


def run_pipeline(settings: Settings, selection: list[str] | None = None):
    """Run the main job in this process; returns the Dagster result."""
    from dagster_project.instance import get_instance

    instance = get_instance()
    from dagster import AssetSelection

    from dagster_project.definitions import build_definitions

    defs = build_definitions(settings)
    job = defs.resolve_job_def("kpi_run")
    asset_selection = None
    if selection:
        from dagster_project.assets.ingestion import raw_asset_key
        from dagster_project.contracts import default_contracts

        contracts = default_contracts()
        keys = [raw_asset_key(contracts[s]) for s in selection]
        asset_selection = (
            AssetSelection.assets(*keys).downstream().resolve(defs.resolve_asset_graph())
        )
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    return job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        asset_selection=asset_selection,
        run_config=quiet,
    )


def run_summary(settings: Settings, run_id: str, started: float) -> dict:
    import datetime as dt

    since = dt.datetime.fromtimestamp(int(started))
    con = _connect(settings, read_only=True)
    try:
        deliveries = con.execute(
            "select outcome, count(*) from ingest.deliveries where processed_at >= ? "
            "group by outcome",
            [since],
        ).fetchall()
        counts = dict(deliveries)
        failed_checks = []
        tables = {
            r[0]
            for r in con.execute(
                "select table_schema || '.' || table_name from information_schema.tables"
            ).fetchall()
        }
        if "audit.check_results" in tables:
            failed_checks += [
                (name, bool(blocking))
                for name, blocking in con.execute(
                    "select check_name || ' (' || asset || ')', blocking from audit.check_results "
                    "where run_id = ? and not passed order by 1",
                    [run_id],
                ).fetchall()
            ]
        if "audit.dbt_results" in tables:
            failed_checks += [
                (uid, True)
                for (uid,) in con.execute(
                    "select unique_id from audit.dbt_results where run_id = ? and status in ('fail','error') order by 1",
                    [run_id],
                ).fetchall()
            ]
        rejected = con.execute(
            "select d.campaign_year, d.department, d.file_name, d.problem_count, d.report_path "
            "from ingest.deliveries d where d.processed_at >= ? and d.outcome = 'rejected' "
            "order by 1, 2, 3",
            [since],
        ).fetchall()
        values = (
            con.execute("select count(*) from marts.fct_indicator_values").fetchone()[0]
            if "marts.fct_indicator_values" in tables
            else 0
        )
    finally:
        con.close()
    return {
        "accepted": counts.get("accepted", 0),
        "rejected": counts.get("rejected", 0),
        "rejected_files": rejected,
        "failed_checks": failed_checks,
        "indicator_values": values,
    }


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    os.environ["KPI_PROGRESS"] = "1"
    print(
        f"kpi run : livraisons {settings.sources_dir}, entrepôt {settings.warehouse} "
        f"(cible dbt {settings.dbt_target})",
        file=sys.stderr,
    )
    started = time.time()
    log_path = settings.warehouse.with_name(settings.warehouse.stem + ".run.log")
    if args.verbose:
        result = run_pipeline(settings, args.select)
    else:
        # dbt's own output goes to the log file; progress lines stay on stderr
        import contextlib

        with log_path.open("w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            result = run_pipeline(settings, args.select)
    elapsed = time.time() - started
    summary = run_summary(settings, result.run_id, started)
    print("\nRésumé de l'exécution " + result.run_id[:8])
    print(
        f"  Livraisons traitées : {summary['accepted']} acceptée(s), {summary['rejected']} rejetée(s)"
    )
    for year, department, name, problems, report in summary["rejected_files"]:
        print(f"    rejet {year}/{department}/{name} : {problems} problème(s), rapport {report}")
    blocking = [name for name, is_blocking in summary["failed_checks"] if is_blocking]
    warnings = [name for name, is_blocking in summary["failed_checks"] if not is_blocking]
    print(f"  Contrôles en échec : {len(blocking)} bloquant(s), {len(warnings)} avertissement(s)")
    for name in blocking[:20]:
        print(f"    bloquant : {name}")
    for name in warnings[:20]:
        print(f"    avertissement : {name}")
    print(f"  Valeurs d'indicateurs dans fct_indicator_values : {summary['indicator_values']}")
    print(f"  Durée : {elapsed:.1f} s")
    if not args.verbose:
        print(f"  Journal détaillé (dbt) : {log_path}")
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        print(f"  ÉCHEC de l'exécution (étapes : {', '.join(failed)})", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_BLOCKED if blocking else EXIT_OK


# --- kpi freeze ------------------------------------------------------------------------------


def cmd_freeze(args: argparse.Namespace) -> int:
    from dagster_project.release import FreezeRefused, freeze

    settings = _settings(args)
    con = _connect(settings)
    try:
        release = freeze(con, args.year, settings.releases_dir, reason=args.reason)
    except FreezeRefused as exc:
        print(f"kpi freeze : {exc}", file=sys.stderr)
        return EXIT_BLOCKED
    finally:
        con.close()
    print(
        f"Publication {release.release_id} figée : {release.value_count} valeurs, dossier {release.folder}"
    )
    print(f"  manifeste SHA-256 {release.manifest_sha256}")
    return EXIT_OK


# --- kpi demo, kpi contracts, kpi init-key -------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from dagster_project.demo import generate_demo

    out = Path(args.out or PROJECT_ROOT / "sources").resolve()
    started = time.time()
    written = generate_demo(out)
    print(
        f"Campagne de démonstration écrite dans {out} : {len(written)} fichiers ({time.time() - started:.1f} s)"
    )
    return EXIT_OK


def cmd_contracts(args: argparse.Namespace) -> int:
    from dagster_project.dbt_sources import SOURCES_YML, write_sources

    changed = write_sources()
    print(f"{SOURCES_YML} {'mis à jour' if changed else 'déjà à jour'}")
    return EXIT_OK


def cmd_init_key(args: argparse.Namespace) -> int:
    from dagster_project.ingest.privacy import create_key_file, key_file

    existed = key_file().exists()
    path = create_key_file()
    print(
        f"Clé de pseudonymisation {'déjà présente' if existed else 'créée'} : {path} (à ne jamais versionner)"
    )
    return EXIT_OK


# --- campaign: templates, status, remind ----------------------------------------------------


def _campaign_or_none(settings: Settings, year: int):
    from dagster_project.campaign import CampaignError, campaign_path, load_campaign

    if not campaign_path(settings.sources_dir, year).exists():
        return None
    try:
        return load_campaign(settings.sources_dir, year)
    except CampaignError as exc:
        print(f"kpi : fichier de campagne invalide\n{exc}", file=sys.stderr)
        raise SystemExit(EXIT_ERROR) from exc


def cmd_templates(args: argparse.Namespace) -> int:
    from dagster_project.templates import write_templates

    settings = _settings(args)
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
    from dagster_project.campaign import campaign_status

    con = _connect(settings)
    try:
        from dagster_project.ingest.store import ensure_ingest_tables

        ensure_ingest_tables(con)
        rows = campaign_status(con, settings.sources_dir, year, today)
    except Exception:
        con.close()
        raise
    return con, rows


def cmd_status(args: argparse.Namespace) -> int:
    from dagster_project.campaign import (
        CampaignError,
        export_status_xlsx,
        format_status,
        parse_today,
        write_status_table,
    )
    from dagster_project.contracts import default_contracts
    from dagster_project.ingest.pipeline import unrecognised_files

    settings = _settings(args)
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
    print(format_status(rows, unrecognised_files(settings.sources_dir, default_contracts())))
    if args.xlsx:
        path = export_status_xlsx(rows, Path(args.xlsx))
        print(f"Export Excel : {path}")
    return EXIT_OK


def cmd_remind(args: argparse.Namespace) -> int:
    from dagster_project.campaign import (
        CampaignError,
        parse_today,
        send_reminders_from_env,
        write_reminders,
    )

    settings = _settings(args)
    today = parse_today(args.today or settings.today)
    out = Path(args.out or settings.warehouse.parent / "relances" / str(args.year)).resolve()
    con = _connect(settings)
    try:
        paths = write_reminders(con, settings.sources_dir, args.year, today, out)
    except CampaignError as exc:
        print(f"kpi remind : {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        con.close()
    print(f"{len(paths)} relance(s) écrite(s) dans {out}")
    for path in paths:
        print(f"  {path.name}")
    sent = send_reminders_from_env(paths)
    if sent is None:
        print("Aucun serveur SMTP configuré (KPI_SMTP_HOST) : rien n'a été envoyé.")
    else:
        print(f"Envoyées à : {', '.join(sent)}")
    return EXIT_OK


# --- parser ----------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warehouse", help="fichier DuckDB de l'entrepôt (défaut ./warehouse.duckdb)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpi",
        description="Entrepôt d'indicateurs de la CABBALR : collecte, contrôle, publication.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="ingérer les livraisons, construire les modèles dbt, contrôler"
    )
    run.add_argument("--sources", help="dossier des livraisons (défaut ./sources)")
    _common(run)
    run.add_argument("--today", help="date du jour pour juger les livraisons (AAAA-MM-JJ)")
    run.add_argument("--target", choices=["duckdb", "postgres"], help="cible dbt (défaut duckdb)")
    run.add_argument(
        "--select",
        nargs="+",
        metavar="SOURCE",
        help="ne traiter que ces sources et ce qui en dépend",
    )
    run.add_argument("--verbose", "-v", action="store_true", help="afficher la sortie de dbt")
    run.set_defaults(func=cmd_run)

    fr = sub.add_parser("freeze", help="figer les valeurs d'une année en publication versionnée")
    fr.add_argument("--year", type=int, required=True)
    fr.add_argument("--reason", help="motif, obligatoire pour une nouvelle version")
    fr.add_argument("--releases", help="dossier des publications (défaut ./releases)")
    _common(fr)
    fr.set_defaults(func=cmd_freeze)

    templates = sub.add_parser(
        "templates", help="écrire les modèles vierges de la campagne, par direction"
    )
    templates.add_argument("--year", type=int, required=True)
    templates.add_argument("--out", required=True, help="dossier de sortie")
    templates.add_argument("--department", nargs="+", help="seulement ces directions")
    templates.add_argument("--sources", help="dossier des livraisons (pour le fichier de campagne)")
    templates.set_defaults(func=cmd_templates)

    status = sub.add_parser("status", help="état de la collecte : reçu, accepté, rejeté, en retard")
    status.add_argument("--year", type=int, required=True)
    status.add_argument("--sources", help="dossier des livraisons (défaut ./sources)")
    _common(status)
    status.add_argument("--today", help="date du jour (AAAA-MM-JJ) pour juger les retards")
    status.add_argument("--xlsx", help="exporter aussi l'état dans ce classeur Excel")
    status.set_defaults(func=cmd_status)

    remind = sub.add_parser(
        "remind", help="écrire les courriels de relance (.eml) des retards et rejets"
    )
    remind.add_argument("--year", type=int, required=True)
    remind.add_argument("--sources", help="dossier des livraisons (défaut ./sources)")
    _common(remind)
    remind.add_argument("--today", help="date du jour (AAAA-MM-JJ)")
    remind.add_argument("--out", help="dossier des relances (défaut ./relances/<année>)")
    remind.set_defaults(func=cmd_remind)

    demo = sub.add_parser("demo", help="régénérer la campagne de démonstration")
    demo.add_argument("--out", help="dossier de sortie (défaut ./sources)")
    demo.set_defaults(func=cmd_demo)

    contracts = sub.add_parser(
        "contracts", help="régénérer dbt/models/staging/_sources.yml depuis les contrats"
    )
    contracts.set_defaults(func=cmd_contracts)

    key = sub.add_parser("init-key", help="créer la clé locale de pseudonymisation RH")
    key.set_defaults(func=cmd_init_key)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
