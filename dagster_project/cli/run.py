"""`kpi run`: ingestion, dbt build and checks in one Dagster run, then publication;
`kpi publish`: publish the build database again.

The run writes the build database (``.build/warehouse.duckdb``); when it succeeds with no
blocking check failed, the read-only copy analysts open (``warehouse.duckdb``) and the
Parquet exports (``exports/marts/``) are replaced atomically (``dagster_project.warehouse.publication``).
A failed or interrupted run leaves the previous publication in place.
"""

from __future__ import annotations

import argparse
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
from dagster_project.lib import progress as progress_lines
from dagster_project.lib.progress import progress
from dagster_project.settings import Settings

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _selected_keys(defs, selection: list[str] | None):
    """Asset keys of the selected sources and everything downstream (None = everything)."""
    if not selection:
        return None
    from dagster import AssetSelection

    from dagster_project.contracts.model import default_contracts
    from dagster_project.defs.assets.ingestion import raw_asset_key

    contracts = default_contracts()
    unknown = sorted(set(selection) - set(contracts))
    if unknown:
        raise SystemExit(f"kpi run : source(s) inconnue(s) : {', '.join(unknown)}")
    keys = [raw_asset_key(contracts[s]) for s in selection]
    resolved = AssetSelection.assets(*keys).downstream().resolve(defs.resolve_asset_graph())
    return sorted(resolved, key=lambda key: key.to_user_string())


def run_pipeline(settings: Settings, selection: list[str] | None = None):
    """Run the main job in this process; returns the Dagster result."""
    # the imports (Dagster, dagster-dbt and dbt-core: 5-10 s cold, more on a busy machine) and
    # the definitions (dbt's manifest, parsed first when stale) are said, never silent
    from dagster_project.quality import gx_worker

    # Great Expectations loads in a process of its own, on the other core, while this one
    # loads Dagster and dbt (the checks then validate there: quality/gx_worker.py)
    if gx_worker.start():
        progress("chargement de Great Expectations dans un processus à part…")
    try:
        return _run_job(settings, selection)
    finally:
        gx_worker.stop()


def _run_job(settings: Settings, selection: list[str] | None):
    progress("chargement de Dagster et de dbt…")
    with progress_lines.heartbeat():
        from dagster_project.defs.instance import cli_run_tags, get_instance

        instance = get_instance()
        from dagster_project.defs.definitions import build_definitions

        progress("lecture des définitions (projet dbt, contrats)…")
        defs = build_definitions(settings, in_process=True)
    job = defs.resolve_job_def("kpi_run")
    selected = _selected_keys(defs, selection)
    from dagster_project.quality import gx_worker

    if not gx_worker.running():  # KPI_GX_WORKER=0: the check steps import it, sooner here
        _import_in_background("great_expectations")
    _wait_for_dagster_runs(instance)
    from dagster_project.lib.gc_freeze import frozen

    # the imports and definitions live as long as the run: Python's full garbage collections
    # during the run leave them out (≈ 1 s at SF1). (The steps keep the build database open
    # from one to the next: cmd_run's kept_between_steps, around this run.)
    with frozen():
        return job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            asset_selection=selected,
            run_config=QUIET,
            tags=cli_run_tags(),
        )


def _import_in_background(module: str) -> None:
    """Start importing a module in a thread (the checks' Great Expectations, 3-4 s of imports):
    it goes on while the run's first steps wait on the disk and DuckDB, and the check step
    that needs it then finds it imported, or waits for the end of that import (Python's
    import lock), never imports it twice."""
    import contextlib
    import importlib
    import threading

    def _import() -> None:
        # on failure, the check step imports it again and says what fails
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    threading.Thread(target=_import, name=f"import-{module}", daemon=True).start()


def _wait_for_dagster_runs(instance) -> None:
    """Runs the daemon has queued or in progress go first (bounded wait, French message). Our
    own run is then « in progress » for the daemon, which waits for it in turn."""
    from dagster_project.defs.instance import wait_for_no_active_run
    from dagster_project.warehouse.access import to_stderr, wait_seconds

    waited = wait_for_no_active_run(instance, "kpi run", wait_seconds(), to_stderr)
    if waited >= 1:
        progress(f"exécution Dagster précédente terminée après {waited:.0f} s d'attente")


def run_pipeline_postgres(settings: Settings, selection: list[str] | None = None) -> list:
    """dbt target PostgreSQL: ingestion into DuckDB, copy of the source tables to PostgreSQL,
    then dbt build there. Two Dagster runs; the Great Expectations suites of the marts read
    DuckDB, so only dbt's tests check the marts on this target."""
    from dagster import AssetSelection, Definitions, define_asset_job

    from dagster_project.defs.assets.dbt import build_dbt_assets
    from dagster_project.defs.assets.ingestion import INGESTION_GROUP, build_ingestion_assets
    from dagster_project.defs.checks import build_raw_checks
    from dagster_project.defs.instance import cli_run_tags, get_instance
    from dagster_project.defs.resources import build_resources
    from dagster_project.warehouse.build import ensure_build
    from dagster_project.warehouse.postgres import copy_to_postgres, pg_params

    instance = get_instance()
    defs = Definitions(
        assets=[*build_ingestion_assets(), build_dbt_assets()],
        asset_checks=build_raw_checks(),
        jobs=[define_asset_job("kpi_run_postgres", selection=AssetSelection.all())],
        resources=build_resources(settings, in_process=True),
    )
    _wait_for_dagster_runs(instance)
    job = defs.resolve_job_def("kpi_run_postgres")
    graph = defs.resolve_asset_graph()
    selected = set(_selected_keys(defs, selection) or AssetSelection.all().resolve(graph))
    ingestion = AssetSelection.groups(INGESTION_GROUP).resolve(graph)
    first = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        asset_selection=sorted(selected & ingestion, key=lambda k: k.to_user_string()),
        run_config=QUIET,
        tags=cli_run_tags(),
    )
    if not first.success:
        return [first]
    params = pg_params()
    progress(
        f"copie des tables d'ingestion vers PostgreSQL {params['host']}:{params['port']}"
        f"/{params['dbname']}"
    )
    copied = copy_to_postgres(ensure_build(settings))
    progress(f"copie terminée : {len(copied)} table(s), {sum(copied.values())} ligne(s)")
    second = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        asset_selection=sorted(selected - ingestion, key=lambda k: k.to_user_string()),
        run_config=QUIET,
        tags=cli_run_tags(),
    )
    return [first, second]


def run_summary(settings: Settings, run_ids: list[str] | str, started: float) -> dict:
    import datetime as dt

    run_ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    since = dt.datetime.fromtimestamp(int(started))
    # (a write connection: under kpi run's session, the file its last step left open, see
    # kept_between_steps; nothing is written)
    con = connect(settings, purpose="kpi run")
    try:
        deliveries = con.execute(
            "select outcome, count(*) from ingest.deliveries where processed_at >= ? "
            "group by outcome",
            [since],
        ).fetchall()
        counts = dict(deliveries)
        from dagster_project.release.gate import DBT_BLOCKING, run_checks, run_dbt_results

        tables = {
            r[0]
            for r in con.execute(
                "select table_schema || '.' || table_name from information_schema.tables"
            ).fetchall()
        }

        def _origin(result: dict) -> str:
            carried = result["carried_from"]
            return f", résultat repris de l'exécution {carried[:8]}" if carried else ""

        # the results that hold for the run: its own and, for a run limited to some sources,
        # the others' latest (release.gate), as the publication and the freeze judge them
        failed_checks = [
            (f"{c['check']} ({c['asset']}{_origin(c)})", c["blocking"])
            for c in run_checks(con, run_ids[-1])
            if not c["passed"]
        ] + [
            (f"{r['unique_id']}{' (' + _origin(r)[2:] + ')' if r['carried_from'] else ''}", True)
            for r in run_dbt_results(con, run_ids[-1])
            if r["status"] in DBT_BLOCKING
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
    if settings.dbt_target == "postgres":
        from dagster_project.warehouse.postgres import count_rows

        values = count_rows("marts.fct_indicator_values") or 0
    return {
        "accepted": counts.get("accepted", 0),
        "rejected": counts.get("rejected", 0),
        "rejected_files": rejected,
        "failed_checks": failed_checks,
        "indicator_values": values,
    }


def _publish(settings: Settings, run_id: str | None, note: str | None = None, ahead=None) -> int:
    from dagster_project.warehouse.publication import publish

    progress("publication de la copie des analystes")
    try:
        with progress_lines.heartbeat():  # « … toujours en cours (12 s) » every 3 s
            publication = publish(settings, run_id=run_id, note=note, ahead=ahead)
    except Exception as exc:  # the previous publication stays in place
        print(f"  ÉCHEC de la publication ({type(exc).__name__} : {exc})", file=sys.stderr)
        print("  La copie publiée précédente reste en place.", file=sys.stderr)
        return EXIT_ERROR
    progress(f"publication {publication.publication_id} en place")
    marts = sum(1 for name in publication.tables if name.startswith("marts."))
    print(
        f"  Copie publiée (lecture seule) : {publication.path} "
        f"[{publication.publication_id}, {len(publication.tables)} tables, "
        f"{publication.seconds:.1f} s]"
    )
    print(f"  Exports Parquet : {publication.exports / 'marts'} ({marts} tables)")
    repaired = getattr(publication, "repaired", [])
    if repaired:  # the copy had been changed by hand: rewritten from the build
        print(
            "  Tables de la copie publiée modifiées à la main depuis la publication précédente, "
            f"réécrites à partir de la base de construction : {', '.join(repaired)}"
        )
    return EXIT_OK


def pseudonym_key_problem(settings: Settings) -> str | None:
    """Why the configured HR pseudonymisation key is refused, before anything is ingested: too
    short, or not the key the warehouse was built with (its recorded fingerprint). None when
    it is accepted, or when no key is configured (needed only for a new HR file: the
    ingestion then says so)."""
    from dagster_project.ingest.privacy import (
        PseudonymKeyError,
        check_key,
        key_configured,
        load_key,
    )

    if not key_configured():
        return None
    try:
        key = load_key()
        if settings.build_warehouse.exists():
            # (a write connection: under kpi run's session, the ingestion step that follows
            # finds the file open, see kept_between_steps)
            con = connect(settings, purpose="kpi run")
            try:
                check_key(con, key, record=False)
            finally:
                con.close()
    except PseudonymKeyError as exc:
        return str(exc)
    return None


def _copy_portal_journal(settings: Settings) -> None:
    """The collection portal's journal into ``audit.portal_journal`` (published with this
    run): the portal never writes the warehouse, ``kpi run`` does it for it."""
    from dagster_project.portal.journal import copy_journal
    from dagster_project.portal.store import state_dir

    journal = state_dir(settings) / "portail.sqlite"
    if not journal.exists():
        return
    con = connect(settings, purpose="kpi run")
    try:
        copied = copy_journal(journal, con)
    finally:
        con.close()
    if copied:
        progress(f"journal du portail : {copied} action(s) copiée(s) dans audit.portal_journal")


def _fingerprint(settings: Settings):
    """The run's inputs, deliveries by source (``dagster_project.warehouse.inputs``)."""
    from dagster_project.contracts.model import default_contracts, source_of
    from dagster_project.warehouse.inputs import fingerprint

    source_ids = list(default_contracts())
    return fingerprint(settings, lambda path: source_of(path.name, source_ids))


def cmd_run(args: argparse.Namespace) -> int:
    import contextlib

    from dagster_project.quality import gx_worker
    from dagster_project.warehouse.access import kept_between_steps, session
    from dagster_project.warehouse.build import ensure_build
    from dagster_project.warehouse.inputs import forget_last_run, plan, record_run
    from dagster_project.warehouse.publication import CopyAhead

    settings = settings_from(args)
    progress_lines.enable()  # KPI_PROGRESS=1 (unless kpi --quiet)
    inputs = _fingerprint(settings)
    todo = None if args.force else plan(settings, inputs)
    if todo and todo.nothing and not args.select:
        last = todo.last
        print(
            f"kpi run : rien à faire. Aucune livraison, aucun contrat ni aucun fichier du projet "
            f"n'a changé depuis l'exécution {last['run_id'][:8]} du "
            f"{last['finished_at'].replace('T', ' à ')} ; la copie publiée "
            f"{last['publication_id']} est à jour. Pour tout reconstruire quand même : "
            "kpi run --force."
        )
        return EXIT_OK
    selection = args.select
    if todo and todo.sources is None and not args.select:
        progress_lines.notice(f"kpi run : tout est traité ({todo.reason})")
    if todo and todo.sources and not args.select:
        # Only these sources and what depends on them are built and checked again; the other
        # parts' latest dbt and Great Expectations results still hold (their data did not
        # change) and are carried into this run's evidence (release.gate.run_checks,
        # defs.assets.dbt.record_dbt_results): publication, freeze and release judge the
        # whole warehouse as after a full run.
        selection = list(todo.sources)
        progress_lines.notice(
            f"kpi run : seules les livraisons de {', '.join(todo.sources)} ont changé depuis "
            f"l'exécution {todo.last['run_id'][:8]} ; elles sont traitées avec ce qui en dépend, "
            "les résultats des contrôles du reste de l'entrepôt sont repris (tout retraiter : "
            "kpi run --force)"
        )
    # every change is processed by this run (then recorded: the next run starts from here)
    complete = not args.select or (
        todo is not None and todo.sources is not None and set(todo.sources) <= set(args.select)
    )
    forget_last_run(settings)  # until this run is published, the next one is a full one
    build = ensure_build(settings)
    progress_lines.notice(
        f"kpi run : livraisons {settings.sources_dir}, base de construction {build} "
        f"(cible dbt {settings.dbt_target}), copie publiée {settings.warehouse}"
    )
    started = time.time()
    log_path = settings.warehouse.with_name(settings.warehouse.stem + ".run.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    runner = run_pipeline_postgres if settings.dbt_target == "postgres" else run_pipeline
    # one `kpi run` / `kpi freeze` at a time; the daemon's runs are waited for in the runner.
    # From the key's check to the publication, the build database stays open unless a reader
    # waits (warehouse.access.kept_between_steps)
    ahead = None  # the current publication copied during the run (CopyAhead)
    try:
        with session(build, "kpi run"), kept_between_steps(build):
            refused = pseudonym_key_problem(settings)
            if refused:
                print(f"kpi run : {refused}", file=sys.stderr)
                return EXIT_ERROR
            _copy_portal_journal(settings)
            # the current publication copied and read on the other core while the run goes on
            # (by the GX worker when it is a copy of this process)
            ahead = CopyAhead(settings, gx_worker) if settings.dbt_target != "postgres" else None
            if args.verbose:
                results = runner(settings, selection)
            else:
                # dbt's own output goes to the log file; progress lines stay on stderr
                with log_path.open("w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
                    results = runner(settings, selection)
            results = results if isinstance(results, list) else [results]
            elapsed = time.time() - started
            run_ids = [r.run_id for r in results]
            summary = run_summary(settings, run_ids, started)  # on the file the run left open
            code = _report(settings, args, results, summary, elapsed, log_path)
            if code is not None:
                return code
            # the publication reads the build through the file the run left open
            code = _publish(settings, run_ids[-1], ahead=ahead)
        if code == EXIT_OK and complete:  # every change processed, published
            record_run(settings, inputs, run_ids[-1])
        return code
    finally:
        if ahead is not None:  # whatever happened: no copy left behind
            ahead.discard()


def _report(settings: Settings, args, results: list, summary: dict, elapsed: float, log_path):
    """The run's summary, in French; the exit code when nothing is to be published (a failed
    run, blocking checks failed, the PostgreSQL target), None when the run is to be
    published."""
    run_ids = [r.run_id for r in results]
    print("\nRésumé de l'exécution " + ", ".join(r[:8] for r in run_ids))
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
    where = "PostgreSQL" if settings.dbt_target == "postgres" else "fct_indicator_values"
    print(f"  Valeurs d'indicateurs dans {where} : {summary['indicator_values']}")
    print(f"  Durée : {elapsed:.1f} s")
    if not args.verbose:
        print(f"  Journal détaillé (dbt) : {log_path}")
    failed_runs = [r for r in results if not r.success]
    if failed_runs:
        failed = [e.step_key for r in failed_runs for e in r.all_events if e.is_step_failure]
        print(f"  ÉCHEC de l'exécution (étapes : {', '.join(failed)})", file=sys.stderr)
        print("  La copie publiée n'a pas changé.", file=sys.stderr)
        return EXIT_ERROR
    if blocking:
        print("  Contrôles bloquants en échec : la copie publiée n'a pas changé.")
        return EXIT_BLOCKED
    if settings.dbt_target == "postgres":
        print("  Cible PostgreSQL : les analystes lisent les schémas marts de PostgreSQL.")
        return EXIT_OK
    return None


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish the build database as it is (after a repair, or a run that was not published)."""
    from dagster_project.release.gate import blocking_failures, latest_run_id

    settings = settings_from(args)
    progress_lines.enable()  # the publication's steps on stderr, as in kpi run (unless --quiet)
    con = connect(settings, read_only=True)
    try:
        run_id = latest_run_id(con)
        failures = blocking_failures(con, run_id)
    finally:
        con.close()
    if failures and not args.force:
        print(
            f"kpi publish : {len(failures)} contrôle(s) bloquant(s) en échec lors de la dernière "
            f"exécution ({run_id}) ; publier quand même : --force",
            file=sys.stderr,
        )
        return EXIT_BLOCKED
    note = "publication forcée malgré des contrôles bloquants en échec" if failures else None
    print(f"kpi publish : {settings.build_warehouse} -> {settings.warehouse}")
    return _publish(settings, run_id, note)


def register(sub) -> None:
    run = sub.add_parser(
        "run",
        help="ingérer les livraisons, construire les modèles dbt, contrôler, publier",
    )
    run.add_argument("--sources", help="dossier des livraisons (défaut ./sources)")
    common_options(run)
    run.add_argument("--today", help="date du jour pour juger les livraisons (AAAA-MM-JJ)")
    run.add_argument("--target", choices=["duckdb", "postgres"], help="cible dbt (défaut duckdb)")
    run.add_argument(
        "--select",
        nargs="+",
        metavar="SOURCE",
        help="ne traiter que ces sources et tout ce qui en dépend (staging, indicateurs, marts : comme « source+ » dans dbt)",
    )
    run.add_argument("--verbose", "-v", action="store_true", help="afficher la sortie de dbt")
    run.add_argument(
        "--force",
        action="store_true",
        help="tout reconstruire même si rien n'a changé depuis la dernière exécution publiée",
    )
    run.set_defaults(func=cmd_run)

    pub = sub.add_parser(
        "publish",
        help="republier la copie en lecture seule des analystes et les exports Parquet",
    )
    common_options(pub)
    pub.add_argument(
        "--force",
        action="store_true",
        help="publier même si la dernière exécution a des contrôles bloquants en échec",
    )
    pub.set_defaults(func=cmd_publish)
