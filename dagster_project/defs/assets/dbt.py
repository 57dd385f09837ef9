"""The dbt project as Dagster assets (dagster-dbt), with one translator for keys and groups.

Asset keys are ``[<schema>, <model>]`` (``marts/fct_indicator_values``); dbt sources keep
``[<source>, <table>]``, so ``source('raw', 'eau_volumes')`` is the ingestion asset
``raw/eau_volumes``. dbt's data tests run in ``dbt build`` and are recorded in
audit.dbt_results; one Dagster check, ``dbt_tests`` on ``marts/fct_indicator_values``,
summarises them for each run (``dbt_tests_result``), and the Great Expectations suites are the
other asset checks. dbt's unit tests check the SQL logic, not the data: they are left out of
the production build (``DBT_BUILD_ARGS``) and run in the test suite
(tests/integration/test_dbt_unit.py).

``kpi run`` shows where the dbt step stands every few seconds (``DbtProgress``, from dbt's
event stream): « dbt : 45/141 nœuds terminés… ».

dbt runs in the step's own process (``dbt_inprocess``: dbt-core's ``dbtRunner``), not in the
``dbt`` process dagster-dbt would start; the selection, the Dagster events and their metadata
are dagster-dbt's own (``get_subset_selection_for_context``, ``DbtCoreCliEventMessage``).
"""

import contextlib
import functools
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MetadataValue,
)
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from dagster_dbt.asset_utils import (
    DAGSTER_DBT_EXCLUDE_METADATA_KEY,
    DAGSTER_DBT_SELECT_METADATA_KEY,
    DAGSTER_DBT_SELECTOR_METADATA_KEY,
    get_manifest_and_translator_from_dbt_assets,
    get_subset_selection_for_context,
)
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

from dagster_project.defs.assets import dbt_row_rules as row_rules
from dagster_project.defs.assets.dbt_inprocess import DbtInProcess, parse_ahead
from dagster_project.defs.resources import WAREHOUSE_POOL, WarehouseResource, dbt_executable
from dagster_project.lib import progress as progress_lines
from dagster_project.lib.progress import progress
from dagster_project.settings import DBT_PROJECT_DIR, Settings
from dagster_project.warehouse.relations import column_exists, insert_rows
from dagster_project.warehouse.schema import ensure

DBT_PROJECT = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# The production build: models, seeds and data tests. The 71 unit tests check the SQL on fixed
# inputs, a fixed cost of every run whatever the data (bench/README.md, proposal 5): they run in
# the test suite instead.
# The generic tests of the models' .yml (accepted_range, unique_combination_of_columns,
# relationships…) run as a few generated tests per model (dbt/tests/row_rules/, ``kpi
# generate``: dbt_row_rules.py), the same assertions with the same skips in ~235 fewer nodes
# (323 tests in 86): the fine-grained ones are left out.
DBT_BUILD_ARGS = [
    "build",
    "--exclude-resource-type",
    "unit_test",
    "--exclude",
    row_rules.EXCLUDE_ROW_RULE_TESTS,
]


def _newest_input_mtime() -> float:
    newest = 0.0
    for folder in ("models", "seeds", "macros", "tests", "snapshots", "analyses"):
        for path in (DBT_PROJECT_DIR / folder).rglob("*"):
            if path.is_file():
                newest = max(newest, path.stat().st_mtime)
    for name in ("dbt_project.yml", "profiles.yml"):
        newest = max(newest, (DBT_PROJECT_DIR / name).stat().st_mtime)
    return newest


def ensure_manifest() -> Path:
    """Parse the dbt project when its manifest is missing or older than any project file."""
    manifest = Path(DBT_PROJECT.manifest_path)
    if manifest.exists() and manifest.stat().st_mtime >= _newest_input_mtime():
        return manifest
    # a first run, or the dbt project changed: dbt reads every model and test (30-80 s on a
    # busy machine the first time), said in French rather than silence
    progress(
        "analyse du projet dbt (dbt parse : "
        + ("première exécution" if not manifest.exists() else "le projet a changé")
        + ", jusqu'à une minute)…"
    )
    with progress_lines.heartbeat():
        parse_project()
    progress("analyse du projet dbt terminée")
    return manifest


def parse_project() -> None:
    """``dbt parse`` of the project into its ``target/`` (manifest.json, partial parsing), with
    the environment the run gives dbt. ``--target`` as the dbt step passes it (the ``dbt``
    resource): dbt's partial parsing records the command line's target, and the step's parse
    with another would start over."""
    subprocess.run(
        [
            dbt_executable(),
            "parse",
            "--quiet",
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target",
            Settings.from_env().dbt_target,
        ],
        cwd=DBT_PROJECT_DIR,
        check=True,
    )


# dbt's data tests, summarised in one check (not one Dagster check per test: see build_dbt_assets)
DBT_TESTS_CHECK = AssetCheckKey(AssetKey(["marts", "fct_indicator_values"]), "dbt_tests")
DBT_TESTS_SPEC = AssetCheckSpec(
    DBT_TESTS_CHECK.name,
    asset=DBT_TESTS_CHECK.asset_key,
    # a failed blocking check would fail the dbt step; a failed dbt test blocks the
    # publication and the freeze through audit.dbt_results, as it always did
    blocking=False,
    description=(
        "Résumé des tests de données dbt de l'exécution (dbt build, environ 90 tests : les "
        "tests des modèles regroupés par modèle) : "
        "réussis, en échec, en avertissement, en erreur, lus dans audit.dbt_results, avec le "
        "nom des tests en échec. Sévérité ERROR quand un test bloquant échoue (la copie des "
        "analystes n'est alors pas publiée et le gel est refusé), WARN quand seuls des tests "
        "d'avertissement échouent."
    ),
    metadata={"table": "audit.dbt_results"},
)
MAX_LISTED_TESTS = 50


class KpiDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or "main"
        return AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"

    def get_asset_check_spec(
        self,
        asset_spec: AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> AssetCheckSpec | None:
        """No check per dbt test; the tests of ``marts/fct_indicator_values`` all give the one
        summary check ``dbt_tests`` (dagster-dbt keeps one spec per name), which the dbt step
        yields itself. dagster-dbt never maps a test's result to it (a test's check key is the
        test's name), so test results stay out of the event log as before."""
        return DBT_TESTS_SPEC if asset_spec.key == DBT_TESTS_CHECK.asset_key else None


# a node of the project that no run has built or tested yet, in a run limited to other sources
NOT_RUN = "not_run"


def project_nodes(manifest: Mapping[str, Any]) -> list[str]:
    """The nodes a full ``dbt build`` runs (models, seeds, snapshots, data tests, exposures; not
    the unit tests, left out of the production build; not ephemeral models, which dbt never
    runs; not
    the fine-grained row-level tests their model's generated row_rules test runs; one that no
    generated test covers, `kpi generate` not run since it was added, stays: the build leaves
    it out, it is recorded ``not_run`` and blocks until ``kpi generate``)."""
    covered = row_rules.covered_rules(manifest)
    nodes = [
        unique_id
        for unique_id, node in (manifest.get("nodes") or {}).items()
        if node.get("resource_type") in ("model", "seed", "snapshot", "test")
        and (node.get("config") or {}).get("enabled", True)
        and (node.get("config") or {}).get("materialized") != "ephemeral"
        and not (row_rules.is_row_rule(node) and node.get("name") in covered)
    ]
    # the exposures (the report, the published copy): « no-op » in a full build's results
    exposures = [
        unique_id
        for unique_id, exposure in (manifest.get("exposures") or {}).items()
        if (exposure.get("config") or {}).get("enabled", True)
    ]
    return sorted(nodes + exposures)


def name_failing_rules(warehouse: WarehouseResource, run_results: dict) -> dict:
    """A failing generated row_rules test names its failing rules (the original .yml tests) in
    its message, hence in audit.dbt_results, the dbt_tests check and a refused freeze: its
    compiled SQL runs again (failures only) and gives one row per failing rule."""
    failing = [
        r
        for r in run_results.get("results", [])
        if r.get("status") in ("fail", "warn")
        and row_rules.is_generated(str(r.get("unique_id") or ""))
        and r.get("compiled_code")
    ]
    if not failing:
        return run_results
    try:
        with warehouse.connect(step="règles de ligne dbt en échec") as con:
            for result in failing:
                rules = row_rules.failing_rules(con, result["compiled_code"])
                result["message"] = (
                    "règle(s) en échec : "
                    + ", ".join(f"{rule} ({count})" for rule, count in rules)
                    + (f" — {result['message']}" if result.get("message") else "")
                )
    except Exception as error:  # the names are a help: never lose the results for them
        progress(f"dbt : règles en échec non détaillées ({error})")
    return run_results


def record_dbt_results(
    warehouse: WarehouseResource,
    run_id: str,
    run_results: dict,
    project: list[str] | None = None,
    con=None,
) -> int:
    """Keep dbt's test and model results in the warehouse (audit.dbt_results); failures count.

    ``project``: every node of the project (``project_nodes``). A run limited to some sources
    (``kpi run`` after a re-delivery, the ``new_deliveries`` sensor, ``--select``) builds and
    tests only what depends on them; the other nodes' data did not change, so their latest
    result still holds and is carried into this run's rows (``carried_from``: the run that
    produced it). The run's rows are then the whole project's evidence, as after a full
    build: what the publication, the freeze and the release manifest read. A node no run has
    ever executed (a test added since, in a limited run) is recorded ``not_run``, which blocks
    like a failure until a full run executes it."""
    rows = []
    for result in run_results.get("results", []):
        rows.append(
            (
                run_id,
                result.get("unique_id"),
                result.get("status"),
                result.get("failures"),
                (result.get("message") or "")[:2000],
                result.get("execution_time"),
            )
        )
    ran = {r[1] for r in rows}
    missing = [unique_id for unique_id in project or [] if unique_id not in ran]
    carried = 0
    with _connection(warehouse, con, step="résultats de dbt build") as con:
        ensure(con, "audit.dbt_results")
        con.execute("delete from audit.dbt_results where run_id = ?", [run_id])
        if rows:
            insert_rows(
                con,
                "audit.dbt_results",
                ["run_id", "unique_id", "status", "failures", "message", "execution_time"],
                rows,
            )
        if missing:
            carried = con.execute(
                "insert into audit.dbt_results (run_id, unique_id, status, failures, message, "
                "execution_time, carried_from) "
                "select ?, unique_id, status, failures, message, execution_time, "
                "coalesce(carried_from, run_id) from audit.dbt_results "
                "where run_id <> ? and list_contains(?, unique_id) "
                "qualify row_number() over (partition by unique_id order by recorded_at desc, "
                "run_id desc) = 1",
                [run_id, run_id, missing],
            ).fetchone()[0]
            # a node no run has executed yet (nothing to carry): not_run, which blocks
            con.execute(
                "insert into audit.dbt_results (run_id, unique_id, status, message) "
                "select ?, unique_id, ?, ? from unnest(?::varchar[]) as t(unique_id) "
                "where unique_id not in "
                "(select unique_id from audit.dbt_results where run_id = ?)",
                [
                    run_id,
                    NOT_RUN,
                    "jamais exécuté sur tout l'entrepôt : une exécution complète "
                    "(kpi run --force) le fera",
                    missing,
                    run_id,
                ],
            )
        failures = con.execute(
            "select count(*) from audit.dbt_results where run_id = ? and status in (?, ?, ?)",
            [run_id, "fail", "error", NOT_RUN],
        ).fetchone()[0]
    if carried:
        progress(f"dbt : {carried} résultat(s) des parties non reconstruites repris")
    return failures


def _latest_dbt_run(con) -> str | None:
    row = con.execute(
        "select run_id from audit.dbt_results group by run_id order by max(recorded_at) desc "
        "limit 1"
    ).fetchone()
    return row[0] if row else None


@contextlib.contextmanager
def _connection(warehouse: WarehouseResource, con, **connect):
    """``con`` when the caller has one open (the dbt step: one connection for recording the
    results and reading them back), else a connection of its own."""
    if con is not None:
        yield con
        return
    with warehouse.connect(**connect) as own:
        yield own


def dbt_tests_result(
    warehouse: WarehouseResource, run_id: str | None, con=None
) -> AssetCheckResult:
    """The ``dbt_tests`` check from dbt's results recorded in audit.dbt_results for the run
    (``run_id`` None: the last run that recorded some), never by running dbt again. ``con``:
    a connection already open on the build database (else one is opened, read-only)."""
    with _connection(warehouse, con, read_only=True, step="résumé des tests dbt") as con:
        exists = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'audit' and table_name = 'dbt_results'"
        ).fetchone()[0]
        if run_id is None and exists:
            run_id = _latest_dbt_run(con)
        rows = (
            con.execute(
                "select unique_id, status, failures, message, "
                + (
                    "carried_from is not null"
                    if column_exists(con, "audit.dbt_results", "carried_from")
                    else "false"
                )
                + " from audit.dbt_results where run_id = ? order by unique_id",
                [run_id],
            ).fetchall()
            if exists and run_id
            else []
        )
    tests = [r for r in rows if r[0].startswith("test.")]
    count = {s: sum(1 for r in tests if r[1] == s) for s in ("pass", "fail", "warn", "error")}
    skipped = sum(1 for r in tests if r[1] == "skipped")
    never = sum(1 for r in rows if r[1] == NOT_RUN)
    carried = sum(1 for r in tests if r[4])
    broken = sorted(r[0] for r in rows if not r[0].startswith("test.") and r[1] == "error")
    failing = [r for r in tests if r[1] in ("fail", "error", NOT_RUN)] + [
        r for r in tests if r[1] == "warn"
    ]
    blocking = count["fail"] + count["error"] + len(broken) + never
    lines = [
        f"- {r[1]} : {row_rules.rule_name(r[0])}"
        + (f" ({r[2]} ligne(s))" if r[2] else "")
        + (
            f" — {' '.join((r[3] or '').split())[:200]}"
            if r[1] == "error" or row_rules.is_generated(r[0])
            else ""
        )
        for r in failing[:MAX_LISTED_TESTS]
    ] + [f"- modèle en erreur : {uid}" for uid in broken[:MAX_LISTED_TESTS]]
    if len(failing) > MAX_LISTED_TESTS:
        lines.append(f"- … et {len(failing) - MAX_LISTED_TESTS} autre(s) : audit.dbt_results")
    if not rows:
        description = "Aucun résultat de dbt build enregistré pour cette exécution."
    else:
        description = (
            f"dbt build : {len(tests)} test(s), {count['pass']} réussi(s), {count['fail']} en "
            f"échec, {count['warn']} en avertissement, {count['error']} en erreur, {skipped} "
            f"non exécuté(s)"
            + (f", {never} jamais exécuté(s)" if never else "")
            + (
                f" ; {carried} résultat(s) repris d'une exécution précédente (parties de "
                "l'entrepôt que cette exécution n'a pas reconstruites)"
                if carried
                else ""
            )
            + (f" ; {len(broken)} modèle(s) ou seed(s) en erreur" if broken else "")
            + "."
        )
    return AssetCheckResult(
        check_name=DBT_TESTS_CHECK.name,
        asset_key=DBT_TESTS_CHECK.asset_key,
        passed=bool(rows) and blocking == 0 and count["warn"] == 0,
        severity=AssetCheckSeverity.WARN
        if rows and not blocking and count["warn"]
        else AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "exécution": MetadataValue.text(run_id or "aucune"),
            "tests": MetadataValue.int(len(tests)),
            "réussis": MetadataValue.int(count["pass"]),
            "en_échec": MetadataValue.int(count["fail"]),
            "en_avertissement": MetadataValue.int(count["warn"]),
            "en_erreur": MetadataValue.int(count["error"]),
            "non_exécutés": MetadataValue.int(skipped),
            "jamais_exécutés": MetadataValue.int(never),
            "repris": MetadataValue.int(carried),
            "modèles_en_erreur": MetadataValue.int(len(broken)),
            "échecs": MetadataValue.md("\n".join(lines) if lines else "aucun"),
        },
    )


class DbtProgress:
    """« dbt : 45/141 nœuds terminés… » every ``every`` seconds while dbt runs (``kpi run``),
    from dbt's structured events: each node's result line carries its index and the total."""

    def __init__(self, every: float = 3.0):
        self.every = every
        self.total = 0
        self.done: set[int] = set()
        self.failed = 0
        self.running: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def see(self, raw_event: Mapping[str, Any]) -> None:
        data = raw_event.get("data") or {}
        index = data.get("index")
        if not isinstance(index, int):
            return
        total = data.get("total") or data.get("num_models")
        if isinstance(total, int):
            self.total = max(self.total, total)
        if (raw_event.get("info") or {}).get("name") == "LogStartLine":
            node = (data.get("node_info") or {}).get("node_name") or ""
            self.running[index] = node
        elif index not in self.done:
            self.done.add(index)
            self.running.pop(index, None)
            self.failed += data.get("status") in ("fail", "error")

    def line(self) -> str:
        if not self.total:
            return "dbt : lecture et compilation du projet…"
        failed = f", {self.failed} en échec" if self.failed else ""
        running = [n if len(n) <= 40 else n[:39] + "…" for n in sorted(self.running.values())[:2]]
        now = f" (en cours : {', '.join(running)})" if running else ""
        return f"dbt : {len(self.done)}/{self.total} nœuds terminés{failed}…{now}"

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            progress(self.line())

    def __enter__(self) -> "DbtProgress":
        if progress_lines.enabled():
            self._thread = threading.Thread(target=self._beat, name="dbt-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _is_test_event(raw_event: Mapping[str, Any]) -> bool:
    """A dbt event about a data test (its result included)."""
    node = (raw_event.get("data") or {}).get("node_info") or {}
    return str(node.get("unique_id") or "").startswith("test.")


def selection_args(
    context: AssetExecutionContext, manifest: Mapping[str, Any], translator: DagsterDbtTranslator
) -> list[str]:
    """dbt's selection for the step's assets (all of them, or a subset: ``kpi run --select``, a
    re-delivery, the sensor, the UI), as dagster-dbt computes it for its ``dbt`` process. In the
    process there is no command-line length limit, so a large subset stays a plain
    ``--select`` (dagster-dbt copies the whole project to write a selectors file instead)."""
    tags = context.op.tags
    args, indirect = get_subset_selection_for_context(
        context=context,
        manifest=manifest,
        select=tags.get(DAGSTER_DBT_SELECT_METADATA_KEY),
        exclude=tags.get(DAGSTER_DBT_EXCLUDE_METADATA_KEY),
        selector=tags.get(DAGSTER_DBT_SELECTOR_METADATA_KEY),
        dagster_dbt_translator=translator,
        current_dbt_indirect_selection_env=None,
    )
    return [*args, *(["--indirect-selection", indirect] if indirect else [])]


def invocation_target_path(run_id: str) -> Path:
    """The invocation's own folder in dbt/target (compiled SQL, dbt.log), named as dagster-dbt
    named its process's: ``dbt_models-<run>-<id>``."""
    return DBT_PROJECT_DIR / "target" / f"dbt_models-{run_id[:7]}-{uuid.uuid4().hex[:7]}"


def dbt_invocation(dbt: DbtCliResource, run_id: str, args: list[str]) -> DbtInProcess:
    """A dbt invocation of the run, in this process, in its own folder of dbt/target."""
    return DbtInProcess(
        args,
        project_dir=Path(dbt.project_dir),
        profiles_dir=Path(dbt.profiles_dir or dbt.project_dir),
        target_path=invocation_target_path(run_id),
        target=dbt.target,
    )


def parse_dbt_ahead(dbt: DbtCliResource, run_id: str) -> None:
    """Start the dbt step's parse now (``dbt_inprocess.parse_ahead``): the raw checks call it
    as they start, while the run's process mostly waits for Great Expectations' worker."""
    parse_ahead(dbt_invocation(dbt, run_id, []))


KEEP_INVOCATION_DIRS = 10
PRUNE_AFTER_SECONDS = 3600.0


def prune_invocation_dirs(
    target: Path,
    keep: int = KEEP_INVOCATION_DIRS,
    older_than: float = PRUNE_AFTER_SECONDS,
    now: float | None = None,
) -> list[Path]:
    """dagster-dbt gives each dbt invocation its own folder in dbt/target (``dbt_models-<run>-
    <id>``: compiled SQL, run_results.json, dbt's debug log; 20-30 MB). Without pruning, a
    daily schedule fills a disk: keep the newest ``keep``, remove older ones once they are an
    hour old (a concurrent run may still be using its own). Their results are kept in
    audit.dbt_results; the run log has dbt's output."""
    now = time.time() if now is None else now
    folders = sorted(
        ((p.stat().st_mtime, p) for p in target.glob("dbt_models-*") if p.is_dir()),
        reverse=True,
    )
    removed = []
    for mtime, folder in folders[keep:]:
        if now - mtime > older_than:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


# the dbt step's name in a job: the op of ``build_dbt_assets`` (its function's name)
DBT_STEP = "dbt_models"


def build_dbt_assets():
    """The dbt project's assets, built from its manifest (parsed first when stale): called when
    the definitions are built, never at import, so importing this module starts no dbt. Built
    once per manifest: a process that lives on (the warm process, whose runs inherit them)
    builds them again when the manifest changes."""
    manifest = ensure_manifest()
    stat = manifest.stat()
    return _dbt_assets_of(str(manifest), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1)
def _dbt_assets_of(manifest: str, _mtime_ns: int, _size: int):
    @dbt_assets(
        manifest=Path(manifest),
        project=DBT_PROJECT,
        # dbt's ~90 data tests are not mirrored as Dagster asset checks: each would add events to
        # the run's event log (measured: the dbt step 30 s by hand, 44-76 s inside Dagster). They
        # still run in `dbt build`, their results go to audit.dbt_results and a failure blocks the
        # freeze; one check, dbt_tests (KpiDbtTranslator.get_asset_check_spec), summarises them.
        dagster_dbt_translator=KpiDbtTranslator(
            settings=DagsterDbtTranslatorSettings(enable_asset_checks=False)
        ),
        pool=WAREHOUSE_POOL,
    )
    def dbt_models(
        context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
    ):
        if not context.selected_asset_keys:  # the dbt_tests check alone: dbt is not run again
            yield dbt_tests_result(warehouse, None)
            return
        # dbt writes the build database: this step holds the write access for it
        # (dagster_project.warehouse.access), so no reader or other writer opens it meanwhile
        manifest, translator, project = get_manifest_and_translator_from_dbt_assets(
            [context.assets_def]
        )
        with warehouse.writing("dbt build"):
            progress("dbt build : modèles, seeds et tests")
            build = dbt_invocation(
                dbt,
                context.run_id,
                [*DBT_BUILD_ARGS, *selection_args(context, manifest, translator)],
            )
            target_path = build.target_path
            with DbtProgress() as counter:
                for raw_event in build.stream():
                    counter.see(raw_event)
                    # dbt's output lines, as its own process printed them (the run's log)
                    print(raw_event["info"]["msg"], flush=False)
                    if _is_test_event(raw_event):
                        # a test's result is in audit.dbt_results and the dbt_tests check;
                        # dagster-dbt would log it as one observation per tested asset (395
                        # events a run, each a write to the event log: bench/README.md)
                        continue
                    yield from DbtCoreCliEventMessage(
                        raw_event=raw_event, event_history_metadata={}
                    ).to_default_asset_events(
                        manifest=manifest,
                        dagster_dbt_translator=translator,
                        context=context,
                        target_path=target_path,
                        project=project,
                    )
            results = name_failing_rules(warehouse, {"results": build.results})
            # one connection records the results and reads them back for the dbt_tests check
            with warehouse.connect(step="résultats de dbt build") as con:
                failures = record_dbt_results(
                    warehouse, context.run_id, results, project_nodes(manifest), con=con
                )
                tests_check = (
                    dbt_tests_result(warehouse, context.run_id, con=con)
                    if DBT_TESTS_CHECK in context.selected_asset_check_keys
                    else None
                )
        prune_invocation_dirs(target_path.parent)
        progress(f"dbt build terminé : {failures} échec(s)")
        if not build.success and not build.results:
            raise RuntimeError("dbt n'a pas pu s'exécuter : " + " ; ".join(build.errors))
        if tests_check is not None:
            yield tests_check

    return dbt_models
