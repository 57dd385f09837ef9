"""One ingestion asset per contract: ``raw/<source_id>``, in one Dagster step per reference
level (``ingest_sources``; ``ingest_sources_2`` for the sources checked against another's values).

Each asset ingests the new or changed deliveries of its source (every campaign year found
under ``sources/``) into the raw table of its contract. Assets are generated from the
contracts: adding a source adds an asset, with no edit here.

What the UI shows before any run comes from the contract and the campaign file: the table's
columns (``dagster/column_schema``: name, type, French description, constraints) and the
asset's owners (``ingestion_owners``: the department's contact e-mail in the campaign file,
else ``team:<department>``). A materialisation adds the rows in force
(``dagster/row_count``, also kept as ``rows_in_force``). The delivery log ``ingest/deliveries``,
which every ingestion step writes, is in the same group (``DELIVERY_LOG_SPEC``).
"""

import datetime as dt
import re
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    multi_asset,
)

from dagster_project.contracts.model import (
    ANY_DEPARTMENT,
    TYPE_LABELS_FR,
    Column,
    Contract,
    by_reference_level,
    default_contracts,
)
from dagster_project.contracts.reference import unit_label
from dagster_project.contracts.wording import column_rules_fr, value_fr
from dagster_project.defs.resources import WAREHOUSE_POOL, SourcesResource, WarehouseResource
from dagster_project.ingest.discovery import discover
from dagster_project.ingest.pipeline import Ingestor
from dagster_project.ingest.store import LINEAGE_COLUMNS
from dagster_project.lib.progress import progress

INGESTION_GROUP = "ingestion"
STEERING_TEAM = "team:pilotage"
# the delivery log: written by every ingestion step, read by dbt (source('ingest',
# 'deliveries')) and campaign/status; not materialised by an asset of its own
DELIVERY_LOG_SPEC = AssetSpec(
    AssetKey(["ingest", "deliveries"]),
    group_name=INGESTION_GROUP,
    description=(
        "Journal des livraisons (table ingest.deliveries) : une ligne par fichier reçu, "
        "accepté ou rejeté, avec celle en vigueur pour chaque année et direction. Écrit par "
        "chaque étape d'ingestion ; lu par dbt (stg_ingest_deliveries) et campaign/status."
    ),
    kinds={"duckdb"},
    owners=[STEERING_TEAM],
    metadata={"table": "ingest.deliveries"},
)
# Dagster's own test of an owner e-mail (dagster._core.utils.is_valid_email): an address it
# would refuse falls back to the team name instead of failing the definitions
_DAGSTER_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,7}\b")
LINEAGE_COLUMNS_FR = {
    "_delivery_id": "Livraison d'origine de la ligne (ingest.deliveries.delivery_id).",
    "_file_sha256": "Empreinte SHA-256 du fichier livré.",
    "_sheet": "Feuille du classeur d'où vient la ligne.",
    "_row_number": "Numéro de la ligne dans sa feuille.",
    "_campaign_year": "Année de campagne de la livraison.",
    "_department": "Direction qui a livré le fichier.",
}


def raw_asset_key(contract: Contract) -> AssetKey:
    """``raw/<source_id>`` (``raw_restricted/<source_id>`` for personal data): the key dbt
    gives to ``source('<schema>', '<source_id>')``, so dbt models depend on ingestion."""
    return AssetKey([contract.raw_schema, contract.source_id])


def _constraints_fr(column: Column, contract: Contract) -> list[str]:
    """The contract's rules on a column, in French (what « other » shows in the UI): the
    templates' words (``contracts.wording.column_rules_fr``, for every campaign year), then
    what the templates show in columns of their own, the default and the unit."""
    other = column_rules_fr(column, contract)
    if column.default is not None:
        other.append(f"cellule vide : {value_fr(column.default)}")
    if column.unit:
        other.append(f"unité : {unit_label(column.unit)}")
    return other


def column_schema(contract: Contract) -> TableSchema:
    """The raw table's columns as the contract describes them, then the lineage columns the
    ingestion adds (``ingest.store.LINEAGE_COLUMNS``)."""
    columns = []
    for column in contract.columns:
        if not column.stored_name:  # never reaches the warehouse
            continue
        description = " ".join(column.description_fr.split())
        if column.age_reference:
            description = (
                f"Âge en mois à « {column.age_reference} », calculé à l'ingestion à partir de "
                f"« {column.name} » (qui n'est pas conservée). {description}"
            )
        columns.append(
            TableColumn(
                name=column.stored_name,
                type=column.stored_type,
                description=description or None,
                constraints=TableColumnConstraints(
                    nullable=not column.required and column.default is None,
                    unique=False,
                    other=_constraints_fr(column, contract),
                ),
                tags={"type_du_kit": TYPE_LABELS_FR[column.type]},
            )
        )
    for name, kind in LINEAGE_COLUMNS:
        columns.append(TableColumn(name=name, type=kind, description=LINEAGE_COLUMNS_FR.get(name)))
    return TableSchema(columns=columns)


def team_owner(department: str) -> str:
    return STEERING_TEAM if department == ANY_DEPARTMENT else f"team:{department}"


def ingestion_owners(
    contracts: dict[str, Contract],
    sources_dir: Path | str,
    today: dt.date | str | None = None,
) -> dict[str, list[str]]:
    """Owners of each source's asset, by source id: the contact e-mail the campaign file
    (``sources/<year>/campagne.yml``) gives for the source, taken from the open campaign (the
    most recent campaign file that loads when none is open); the steering department's e-mail
    for ``indicateurs_declares``, which every department delivers. Without a campaign file
    that loads, or for a source it does not list: ``team:<department>``. Never raises: the
    definitions load without a campaign file."""
    owners = {s: [team_owner(c.department)] for s, c in contracts.items()}
    try:
        from dagster_project.campaign.plan import CampaignError, load_campaign
        from dagster_project.defs.schedules import campaign_years, open_campaigns

        if isinstance(today, str):  # KPI_TODAY, --today
            today = dt.date.fromisoformat(today)
        today = today or dt.date.today()
        found = open_campaigns(Path(sources_dir), today)
        campaign = max(found.campaigns, key=lambda c: c.year, default=None)
        for year in [] if campaign else sorted(campaign_years(Path(sources_dir)), reverse=True):
            try:
                campaign = load_campaign(Path(sources_dir), year, contracts=contracts)
                break
            except CampaignError:
                continue
        if campaign is None:
            return owners
        for source_id, contract in contracts.items():
            if contract.department == ANY_DEPARTMENT:
                emails = [campaign.steering.email] if campaign.steering else []
            else:
                emails = [
                    e.owner.email
                    for e in campaign.entries
                    if e.source_id == source_id and e.department == contract.department
                ]
            emails = sorted({e for e in emails if e and _DAGSTER_EMAIL.fullmatch(e)})
            if emails:
                owners[source_id] = emails
    except Exception:  # an unreadable campaign file must not stop the code location loading
        return {s: [team_owner(c.department)] for s, c in contracts.items()}
    return owners


def _spec(
    contract: Contract, contracts: dict[str, Contract], owners: list[str] | None
) -> AssetSpec:
    return AssetSpec(
        key=raw_asset_key(contract),
        group_name=INGESTION_GROUP,
        deps=[raw_asset_key(contracts[s]) for s in sorted(contract.referenced_sources)],
        description=f"{contract.title_fr} — {contract.direction_fr}. {contract.description_fr}",
        kinds={"duckdb", "python"},
        tags={"department": contract.department},
        owners=owners or [team_owner(contract.department)],
        metadata={
            "contract": f"sources/contracts/{contract.source_id}.yml",
            "grain": ", ".join(contract.grain),
            "raw_table": contract.raw_table,
            "dagster/column_schema": MetadataValue.table_schema(column_schema(contract)),
        },
    )


def _build_ingestion_step(
    name: str,
    members: list[Contract],
    contracts: dict[str, Contract],
    owners: dict[str, list[str]],
) -> AssetsDefinition:
    """The ingestion assets of ``members`` (in the run's ingestion order), in one step: one
    warehouse connection and one Dagster step for all of them, each still its own asset (a
    run, the UI or a sensor may select any of them: only those are ingested)."""
    source_of = {raw_asset_key(c): c.source_id for c in members}

    @multi_asset(
        name=name,
        specs=[_spec(c, contracts, owners.get(c.source_id)) for c in members],
        can_subset=True,
        pool=WAREHOUSE_POOL,
        description="Ingestion des livraisons de "
        + ", ".join(c.source_id for c in members)
        + " (une étape ; chaque source reste un asset que l'on peut matérialiser seul).",
    )
    def _ingest(
        context: AssetExecutionContext, warehouse: WarehouseResource, sources: SourcesResource
    ):
        from pathlib import Path

        selected = [k for k in source_of if k in context.selected_asset_keys]
        files = discover(Path(sources.path), contracts)
        if sources.read_ahead:  # the run's other ingestion steps run in this process
            # a run of the whole job has no selection (None, or an empty set in Dagster 1.13)
            in_run = context.run.asset_selection
            ahead = [
                f for f in files if not in_run or raw_asset_key(contracts[f.source_id]) in in_run
            ]
        else:
            ahead = [f for f in files if raw_asset_key(contracts[f.source_id]) in selected]
        failed: list[str] = []
        with warehouse.connect(step=f"ingestion ({name})") as con:
            ingestor = Ingestor(con, contracts, today=sources.today_date())
            for key in selected:
                source_id = source_of[key]
                try:
                    summary = ingestor.ingest_source(source_id, files, read_ahead=ahead)
                    rows = con.execute(
                        f"select count(*) from {contracts[source_id].raw_table} r "
                        "join ingest.deliveries d on d.delivery_id = r._delivery_id "
                        "where d.in_force"
                    ).fetchone()[0]
                except Exception as exc:  # the other sources go on; the step fails at the end
                    context.log.error(
                        f"{source_id} : ingestion interrompue ({type(exc).__name__} : {exc})"
                    )
                    failed.append(source_id)
                    continue
                for delivery_id in summary.rejected:
                    context.log.warning(f"Livraison rejetée : {delivery_id}")
                progress(
                    f"{source_id} : {len(summary.accepted)} acceptée(s), "
                    f"{len(summary.rejected)} rejetée(s), {summary.unchanged} inchangée(s)"
                )
                yield MaterializeResult(
                    asset_key=key,
                    metadata={
                        "accepted": len(summary.accepted),
                        "rejected": len(summary.rejected),
                        "unchanged": summary.unchanged,
                        "rows_in_force": rows,
                        "dagster/row_count": MetadataValue.int(rows),
                        "deliveries_in_force": ", ".join(
                            f"{year}/{dept}: {did}"
                            for (year, dept), did in summary.in_force.items()
                        )
                        or "aucune",
                    },
                )
        if failed:
            # as when each source had its own step: what depends on them does not run
            raise RuntimeError(
                "ingestion interrompue pour " + ", ".join(failed) + " (voir le journal)"
            )

    return _ingest


def build_ingestion_assets(
    contracts: dict[str, Contract] | None = None,
    order: list[str] | None = None,
    owners: dict[str, list[str]] | None = None,
) -> list[AssetsDefinition]:
    """One asset per contract (``raw/<source_id>``), in one step per reference level: the
    sources that reference no other (step ``ingest_sources``), then those checked against them
    (``ingest_sources_2``: they wait for the others' blocking checks). ``order``
    (``ingest.discovery.ingestion_order``): the order in which a step ingests its sources
    (largest workbooks last, read ahead meanwhile); ``owners`` (``ingestion_owners``) by
    source id, ``team:<department>`` for a source without."""
    contracts = contracts or default_contracts()
    rank = {source_id: k for k, source_id in enumerate(order or [])}
    owners = owners or {}
    ordered = sorted(contracts.values(), key=lambda c: rank.get(c.source_id, len(rank)))
    return [
        _build_ingestion_step(
            "ingest_sources" if level == 0 else f"ingest_sources_{level + 1}",
            members,
            contracts,
            owners,
        )
        for level, members in enumerate(by_reference_level(ordered))
    ]
