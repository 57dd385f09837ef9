"""Dagster asset checks, one per expectation suite, generated from the suites' metadata.

``build_raw_checks()`` gives one check per source contract on its ingestion asset
(``raw/<source_id>``, ``raw_restricted/<source_id>`` for personal data, the key of
``dagster_project.defs.assets.ingestion.raw_asset_key``); ``build_mart_checks()`` one per suite of
``expectations/marts.yml`` on the asset it names (``marts/fct_indicator_values``).

The checks of each kind run in one step (``@multi_asset_check``, ``can_subset``: a run, the UI
or a sensor may select any of them, and only those run): one warehouse connection and one
Dagster step for the 15 raw suites instead of 15 (bench/README.md: a step and a connection
cost more than a small suite). Each check keeps its own key, description, blocking flag and
result, as when each had its own step.

A check reads the warehouse through the ``warehouse`` resource (``WarehouseResource``:
``connect(read_only=...)``), runs its suite, records the outcome in ``audit.check_results``
under the Dagster run id, and returns an ``AssetCheckResult``: severity ERROR and
``blocking=True`` for blocking suites (a failure refuses the freeze and stops downstream
assets of the run), WARN and non-blocking otherwise.

Building the definitions does not import GX; running a check does (about 3 s, once per
process).
"""

from collections.abc import Callable

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from dagster_project.contracts.model import Contract, by_reference_level, default_contracts
from dagster_project.defs.resources import WAREHOUSE_POOL
from dagster_project.quality.suites import check_specs, raw_suite_name


def run_and_record(warehouse, suite_names: list[str], run_id: str):
    """Run suites and record their outcomes, under one write access (the warehouse resource
    waits its turn: dagster_project.warehouse.access); yields (suite name, outcome) as each
    one ends."""
    from dagster_project.lib.progress import progress
    from dagster_project.quality.runner import record_outcomes, run_suites

    if not suite_names:
        return
    step = f"contrôle {suite_names[0]}" if len(suite_names) == 1 else "contrôles"
    with warehouse.connect(step=step) as con:
        for suite_name, outcome in run_suites(con, suite_names):
            record_outcomes(con, run_id, [outcome])
            progress(f"contrôle {suite_name} : {'satisfait' if outcome.passed else 'EN ÉCHEC'}")
            yield suite_name, outcome


def outcome_to_result(outcome, key: AssetCheckKey | None = None) -> AssetCheckResult:
    failures = outcome.failures
    metadata = {
        "statistiques": MetadataValue.json(outcome.statistics),
        "lignes": MetadataValue.int(int(outcome.statistics.get("rows", 0))),
        "bloquant": MetadataValue.bool(outcome.blocking),
        "échecs": MetadataValue.md(
            "\n".join(f"- {f}" for f in failures[:50]) if failures else "aucun"
        ),
    }
    return AssetCheckResult(
        asset_key=key.asset_key if key else None,
        check_name=key.name if key else None,
        passed=outcome.passed,
        severity=AssetCheckSeverity.ERROR if outcome.blocking else AssetCheckSeverity.WARN,
        description=outcome.summary_fr[:1000],
        metadata=metadata,
    )


def runs_dbt(op_context) -> bool:
    """Whether the run of this step has a dbt step: a run of the raw checks alone (the UI's
    « exécuter les contrôles », a subset) has none, and starts no dbt parse for it. Dagster's
    job of a subset run holds only the steps it executes."""
    from dagster_project.defs.assets.dbt import DBT_STEP

    try:
        return DBT_STEP in {node.name for node in op_context.job_def.nodes}
    except Exception:  # unknown: parse ahead, as before (the parse is only started early)
        return True


def _spec(spec: dict, asset_key: AssetKey) -> AssetCheckSpec:
    suite_name = spec["name"]
    blocking = bool(spec.get("blocking", True))
    return AssetCheckSpec(
        name=suite_name,
        asset=asset_key,
        description=(
            f"{'Bloquant' if blocking else 'Avertissement'} — {spec.get('description_fr', '')} "
            f"(suite Great Expectations {suite_name})"
        ),
        blocking=blocking,
        metadata={
            "suite": f"expectations/gx/expectations/{suite_name}.json",
            "generated_from": spec.get("generated_from", ""),
            "blocking": blocking,
        },
    )


def _build_checks(
    name: str, description: str, suites: list[tuple[dict, AssetKey]], before_dbt: bool = False
) -> AssetChecksDefinition:
    """The suites' checks, run together in one step (only the selected ones). ``before_dbt``:
    checks of the raw tables, which run before the dbt step: they start its ``dbt parse``
    (``assets/dbt.parse_dbt_ahead``) while they wait for Great Expectations' worker, when the
    run has a dbt step (``runs_dbt``)."""
    specs = [_spec(spec, key) for spec, key in suites]
    suite_of = {spec.key: spec.name for spec in specs}

    @multi_asset_check(
        name=name,
        specs=specs,
        description=description,
        can_subset=True,
        required_resource_keys={"warehouse", "gx", *(["dbt"] if before_dbt else [])},
        pool=WAREHOUSE_POOL,
    )
    def _checks(context: AssetCheckExecutionContext):
        run_id = context.op_execution_context.run_id
        if before_dbt and runs_dbt(context.op_execution_context):
            from dagster_project.defs.assets.dbt import parse_dbt_ahead

            parse_dbt_ahead(context.resources.dbt, run_id)
        selected = context.selected_asset_check_keys
        keys = [key for key in suite_of if key in selected]  # in the suites' order
        key_of = {suite_of[key]: key for key in keys}
        for suite_name, outcome in run_and_record(
            context.resources.warehouse, [suite_of[key] for key in keys], run_id
        ):
            if not outcome.passed:
                context.log.warning(f"{suite_name} : {outcome.summary_fr[:2000]}")
            yield outcome_to_result(outcome, key_of[suite_name])

    return _checks


def default_raw_asset_key(contract: Contract) -> AssetKey:
    """Same key as the ingestion asset of the source (raw schema + source id)."""
    return AssetKey([contract.raw_schema, contract.source_id])


def build_raw_checks(
    contracts: dict[str, Contract] | None = None,
    asset_key_for: Callable[[Contract], AssetKey] = default_raw_asset_key,
) -> list[AssetChecksDefinition]:
    """One blocking check per source contract, on its ingestion asset: one step for the
    sources that reference no other, one more per level of references (a source checked
    against another's values is ingested after that one's check: in the same step as its own
    check, the step would wait for itself)."""
    contracts = default_contracts() if contracts is None else contracts
    specs = {s["name"]: s for s in check_specs(contracts)}
    checks = []
    for level, members in enumerate(by_reference_level(contracts)):
        suites = [(specs[raw_suite_name(c.source_id)], asset_key_for(c)) for c in members]
        checks.append(
            _build_checks(
                "raw_suites" if level == 0 else f"raw_suites_{level + 1}",
                "Contrôles Great Expectations des tables brutes, un par source (suites générées "
                "des contrats)"
                + (
                    ""
                    if level == 0
                    else f", des sources contrôlées par rapport à d'autres (niveau {level})"
                )
                + ".",
                suites,
                before_dbt=True,
            )
        )
    return checks


def build_mart_checks(
    asset_keys: dict[str, AssetKey] | None = None,
) -> list[AssetChecksDefinition]:
    """One check per suite of expectations/marts.yml, on the asset the suite names (one step
    for all).

    ``asset_keys`` overrides the key of a suite (by suite name), should dbt's keys change.
    """
    overrides = asset_keys or {}
    suites = [
        (spec, overrides.get(spec["name"]) or AssetKey(list(spec["asset"])))
        for spec in check_specs(contracts={})
    ]
    if not suites:
        return []
    return [
        _build_checks(
            "mart_suites",
            "Contrôles Great Expectations des marts (expectations/marts.yml).",
            suites,
        )
    ]
