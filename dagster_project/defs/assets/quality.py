"""``quality/atypical_values``: after the marts, the atypical values still to confirm, told
to the departments that delivered them (``quality.notices``: a notice beside each file in
force, the table ``quality.atypical_values`` that ``kpi status`` and the reminders read).

No ``from __future__ import annotations`` here: Dagster reads the parameter annotations.
"""

from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from dagster_project.defs.resources import WAREHOUSE_POOL, SourcesResource, WarehouseResource

QUALITY_GROUP = "quality"
ATYPICAL_KEY = AssetKey(["quality", "atypical_values"])


@asset(
    key=ATYPICAL_KEY,
    group_name=QUALITY_GROUP,
    deps=[AssetKey(["marts", "fct_indicator_values"])],
    kinds={"duckdb", "python"},
    pool=WAREHOUSE_POOL,
    description=(
        "Valeurs atypiques à confirmer (hors borne de vraisemblance d'une année sur l'autre, ou "
        "en échec d'un contrôle d'avertissement) : table quality.atypical_values, et un avis "
        "« <fichier>.a_confirmer.csv » à côté de chaque livraison en vigueur concernée. Le gel "
        "est refusé tant qu'elles ne sont pas qualifiées dans kpi review."
    ),
    metadata={"table": "quality.atypical_values"},
)
def atypical_values(
    context: AssetExecutionContext, warehouse: WarehouseResource, sources: SourcesResource
) -> MaterializeResult:
    from dagster_project.quality.notices import record_atypical_values, write_notices

    with warehouse.connect(step=ATYPICAL_KEY.to_user_string()) as con:
        by_delivery = record_atypical_values(con, Path(sources.path))
        notices = write_notices(con, Path(sources.path), by_delivery)
        total, open_ = con.execute(
            "select count(*), count(*) filter (where not qualified) from quality.atypical_values"
        ).fetchone()
    for notice in notices:
        context.log.warning(f"Valeurs à confirmer : {notice.name}")
    return MaterializeResult(
        metadata={
            "valeurs_atypiques": MetadataValue.int(total),
            "à_confirmer": MetadataValue.int(open_),
            "avis_écrits": MetadataValue.text(", ".join(p.name for p in notices) or "aucun"),
        }
    )
