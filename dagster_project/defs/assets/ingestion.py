"""One ingestion asset per contract: ``raw/<source_id>``.

Each asset ingests the new or changed deliveries of its source (every campaign year found
under ``sources/``) into the raw table of its contract. Assets are generated from the
contracts: adding a source adds an asset, with no edit here.
"""

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, MaterializeResult, asset

from dagster_project.contracts.model import Contract, default_contracts
from dagster_project.defs.resources import WAREHOUSE_POOL, SourcesResource, WarehouseResource
from dagster_project.ingest.pipeline import Ingestor, discover
from dagster_project.lib.progress import progress

INGESTION_GROUP = "ingestion"


def raw_asset_key(contract: Contract) -> AssetKey:
    """``raw/<source_id>`` (``raw_restricted/<source_id>`` for personal data): the key dbt
    gives to ``source('<schema>', '<source_id>')``, so dbt models depend on ingestion."""
    return AssetKey([contract.raw_schema, contract.source_id])


def _build_ingestion_asset(
    contract: Contract, contracts: dict[str, Contract], priority: int | None = None
) -> AssetsDefinition:
    upstream = sorted(contract.referenced_sources)

    @asset(
        key=raw_asset_key(contract),
        group_name=INGESTION_GROUP,
        deps=[raw_asset_key(contracts[s]) for s in upstream],
        description=f"{contract.title_fr} — {contract.direction_fr}. {contract.description_fr}",
        kinds={"duckdb", "python"},
        tags={"department": contract.department},
        op_tags={"dagster/priority": str(priority)} if priority is not None else None,
        pool=WAREHOUSE_POOL,
        metadata={
            "contract": f"sources/contracts/{contract.source_id}.yml",
            "grain": ", ".join(contract.grain),
            "raw_table": contract.raw_table,
        },
    )
    def _ingest(
        context: AssetExecutionContext, warehouse: WarehouseResource, sources: SourcesResource
    ) -> MaterializeResult:
        from pathlib import Path

        files = discover(Path(sources.path), contracts)
        if sources.read_ahead:  # the run's other ingestion steps run in this process
            # a run of the whole job has no selection (None, or an empty set in Dagster 1.13)
            selected = context.run.asset_selection
            ahead = [
                f
                for f in files
                if not selected or raw_asset_key(contracts[f.source_id]) in selected
            ]
        else:
            ahead = [f for f in files if f.source_id == contract.source_id]
        with warehouse.connect(step=raw_asset_key(contract).to_user_string()) as con:
            ingestor = Ingestor(con, contracts, today=sources.today_date())
            summary = ingestor.ingest_source(contract.source_id, files, read_ahead=ahead)
            rows = con.execute(
                f"select count(*) from {contract.raw_table} r join ingest.deliveries d "
                "on d.delivery_id = r._delivery_id where d.in_force"
            ).fetchone()[0]
        for delivery_id in summary.rejected:
            context.log.warning(f"Livraison rejetée : {delivery_id}")
        progress(
            f"{contract.source_id} : {len(summary.accepted)} acceptée(s), "
            f"{len(summary.rejected)} rejetée(s), {summary.unchanged} inchangée(s)"
        )
        return MaterializeResult(
            metadata={
                "accepted": len(summary.accepted),
                "rejected": len(summary.rejected),
                "unchanged": summary.unchanged,
                "rows_in_force": rows,
                "deliveries_in_force": ", ".join(
                    f"{year}/{dept}: {did}" for (year, dept), did in summary.in_force.items()
                )
                or "aucune",
            }
        )

    return _ingest


def build_ingestion_assets(
    contracts: dict[str, Contract] | None = None, order: list[str] | None = None
) -> list[AssetsDefinition]:
    """One asset per contract; ``order`` (``ingest.pipeline.ingestion_order``): the order in
    which a run's ingestion steps should go, given to Dagster as step priorities (the first
    the highest; dependencies still come first)."""
    contracts = contracts or default_contracts()
    rank = {source_id: len(order) - k for k, source_id in enumerate(order or [])}
    return [_build_ingestion_asset(c, contracts, rank.get(c.source_id)) for c in contracts.values()]
