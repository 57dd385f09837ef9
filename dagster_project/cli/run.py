"""`kpi run`: ingestion, dbt build and checks in one Dagster run."""

from __future__ import annotations

import argparse
import os
import sys
import time

from dagster_project.cli.common import (
    EXIT_BLOCKED,
    EXIT_ERROR,
    EXIT_OK,
    common_options,
    connect,
    settings_from,
)
from dagster_project.settings import Settings


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
    con = connect(settings, read_only=True)
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
    settings = settings_from(args)
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


def register(sub) -> None:
    run = sub.add_parser(
        "run", help="ingérer les livraisons, construire les modèles dbt, contrôler"
    )
    run.add_argument("--sources", help="dossier des livraisons (défaut ./sources)")
    common_options(run)
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
