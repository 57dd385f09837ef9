"""Dagster asset checks, one per expectation suite, generated from the suites' metadata.

``build_raw_checks()`` gives one check per source contract on its ingestion asset
(``raw/<source_id>``, ``raw_restricted/<source_id>`` for personal data, the key of
``dagster_project.defs.assets.ingestion.raw_asset_key``); ``build_mart_checks()`` one per suite of
``expectations/marts.yml`` on the asset it names (``marts/fct_indicator_values``).

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
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    asset_check,
)

from dagster_project.contracts.model import Contract, default_contracts
from dagster_project.defs.resources import WAREHOUSE_POOL
from dagster_project.quality.suites import check_specs, raw_suite_name


def run_and_record(warehouse, suite_name: str, run_id: str):
    """Run one suite and record its outcome, under one write access (the warehouse resource
    waits its turn: dagster_project.warehouse.access)."""
    from dagster_project.lib.progress import progress
    from dagster_project.quality.runner import record_outcomes, run_suite

    with warehouse.connect(step=f"contrôle {suite_name}") as con:
        outcome = run_suite(con, suite_name)
        record_outcomes(con, run_id, [outcome])
    progress(f"contrôle {suite_name} : {'satisfait' if outcome.passed else 'EN ÉCHEC'}")
    return outcome


def outcome_to_result(outcome) -> AssetCheckResult:
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
        passed=outcome.passed,
        severity=AssetCheckSeverity.ERROR if outcome.blocking else AssetCheckSeverity.WARN,
        description=outcome.summary_fr[:1000],
        metadata=metadata,
    )


def _build_check(spec: dict, asset_key: AssetKey) -> AssetChecksDefinition:
    suite_name = spec["name"]
    blocking = bool(spec.get("blocking", True))

    @asset_check(
        asset=asset_key,
        name=suite_name,
        description=(
            f"{'Bloquant' if blocking else 'Avertissement'} — {spec.get('description_fr', '')} "
            f"(suite Great Expectations {suite_name})"
        ),
        blocking=blocking,
        required_resource_keys={"warehouse"},
        pool=WAREHOUSE_POOL,
        metadata={
            "suite": f"expectations/gx/expectations/{suite_name}.json",
            "generated_from": spec.get("generated_from", ""),
            "blocking": blocking,
        },
    )
    def _check(context: AssetCheckExecutionContext) -> AssetCheckResult:
        run_id = context.op_execution_context.run_id
        outcome = run_and_record(context.resources.warehouse, suite_name, run_id)
        if not outcome.passed:
            context.log.warning(f"{suite_name} : {outcome.summary_fr[:2000]}")
        return outcome_to_result(outcome)

    return _check


def default_raw_asset_key(contract: Contract) -> AssetKey:
    """Same key as the ingestion asset of the source (raw schema + source id)."""
    return AssetKey([contract.raw_schema, contract.source_id])


def build_raw_checks(
    contracts: dict[str, Contract] | None = None,
    asset_key_for: Callable[[Contract], AssetKey] = default_raw_asset_key,
) -> list[AssetChecksDefinition]:
    """One blocking check per source contract, on its ingestion asset."""
    contracts = default_contracts() if contracts is None else contracts
    specs = {s["name"]: s for s in check_specs(contracts)}
    return [
        _build_check(specs[raw_suite_name(c.source_id)], asset_key_for(c))
        for c in contracts.values()
    ]


def build_mart_checks(
    asset_keys: dict[str, AssetKey] | None = None,
) -> list[AssetChecksDefinition]:
    """One check per suite of expectations/marts.yml, on the asset the suite names.

    ``asset_keys`` overrides the key of a suite (by suite name), should dbt's keys change.
    """
    overrides = asset_keys or {}
    checks = []
    for spec in check_specs(contracts={}):
        key = overrides.get(spec["name"]) or AssetKey(list(spec["asset"]))
        checks.append(_build_check(spec, key))
    return checks
