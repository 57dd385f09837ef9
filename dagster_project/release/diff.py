"""Two versions of a year's release compared value by value (``kpi diff``): every value
changed (value or unit), added or removed, as French text (``format_diff``) or as a CSV for
French Excel (``write_diff_csv``: UTF-8 with BOM, « ; », decimal comma, units in French, text
cells neutralised: ``csv_safety``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from dagster_project.contracts.reference import amount_fr, unit_label
from dagster_project.lib.csv_safety import write_excel_csv
from dagster_project.release.records import release_info
from dagster_project.warehouse.relations import table_exists


@dataclass
class ValueChange:
    change: str  # 'modifiée' | 'ajoutée' | 'retirée'
    indicator_id: str
    code_insee: str | None
    old_value: float | None
    new_value: float | None
    old_unit: str | None
    new_unit: str | None
    label: str | None = None
    commune: str | None = None


def diff_releases(con: duckdb.DuckDBPyConnection, old_id: str, new_id: str) -> list[ValueChange]:
    """Every value changed (value or unit), added or removed between two releases."""
    for release_id in (old_id, new_id):
        if release_info(con, release_id) is None:
            raise KeyError(f"publication inconnue : {release_id}")
    labels = "null"
    if table_exists(con, "marts.dim_indicators"):
        labels = (
            "(select any_value(label_fr) from marts.dim_indicators d "
            "where d.indicator_id = coalesce(n.indicator_id, o.indicator_id))"
        )
    communes = "null"
    if table_exists(con, "marts.dim_communes"):
        communes = (
            "(select any_value(commune_name) from marts.dim_communes c "
            "where c.code_insee = coalesce(n.code_insee, o.code_insee))"
        )
    rows = con.execute(
        f"""
        with o as (select * from release.release_values where release_id = $old),
             n as (select * from release.release_values where release_id = $new)
        select
            case when o.indicator_id is null then 'ajoutée'
                 when n.indicator_id is null then 'retirée'
                 else 'modifiée' end as change,
            coalesce(n.indicator_id, o.indicator_id) as indicator_id,
            coalesce(n.code_insee, o.code_insee) as code_insee,
            o.value, n.value, o.unit, n.unit, {labels}, {communes}
        from o full outer join n
          on n.indicator_id = o.indicator_id and n.code_insee is not distinct from o.code_insee
        where o.indicator_id is null or n.indicator_id is null
           or o.value is distinct from n.value or o.unit is distinct from n.unit
        order by case change when 'modifiée' then 0 when 'ajoutée' then 1 else 2 end,
                 indicator_id, code_insee nulls first
        """,
        {"old": old_id, "new": new_id},
    ).fetchall()
    return [
        ValueChange(
            change=r[0],
            indicator_id=r[1],
            code_insee=r[2],
            old_value=r[3],
            new_value=r[4],
            old_unit=r[5],
            new_unit=r[6],
            label=r[7],
            commune=r[8],
        )
        for r in rows
    ]


def format_diff(old_id: str, new_id: str, changes: list[ValueChange], reason: str | None) -> str:
    def where(c: ValueChange) -> str:
        if c.code_insee is None:
            return "agglomération"
        return f"{c.commune} ({c.code_insee})" if c.commune else c.code_insee

    def amount(value, unit) -> str:
        return amount_fr(value, unit)

    lines = [f"Différences entre {old_id} et {new_id}"]
    if reason:
        lines.append(f"  motif de {new_id} : {reason}")
    groups = [
        ("modifiée", "Valeurs modifiées"),
        ("ajoutée", "Valeurs ajoutées"),
        ("retirée", "Valeurs retirées"),
    ]
    for key, title in groups:
        selected = [c for c in changes if c.change == key]
        lines.append(f"{title} : {len(selected)}")
        for c in selected:
            head = f"  - {c.indicator_id} — {where(c)}"
            if key == "modifiée":
                lines.append(
                    f"{head} : {amount(c.old_value, c.old_unit)} → {amount(c.new_value, c.new_unit)}"
                )
            elif key == "ajoutée":
                lines.append(f"{head} : {amount(c.new_value, c.new_unit)}")
            else:
                lines.append(f"{head} : {amount(c.old_value, c.old_unit)}")
    if not changes:
        lines.append("Aucune différence : les deux publications portent les mêmes valeurs.")
    return "\n".join(lines)


DIFF_CSV_COLUMNS = [
    "changement",
    "indicateur",
    "libelle",
    "code_insee",
    "commune",
    "ancienne_valeur",
    "nouvelle_valeur",
    "ancienne_unite",
    "nouvelle_unite",
]


def write_diff_csv(changes: list[ValueChange], path: Path) -> None:
    """The changes as a CSV for French Excel; units by their French label (« € », « km »)."""
    write_excel_csv(
        path,
        DIFF_CSV_COLUMNS,
        (
            [
                c.change,
                c.indicator_id,
                c.label or "",
                c.code_insee or "",
                c.commune or ("agglomération" if c.code_insee is None else ""),
                c.old_value,
                c.new_value,
                unit_label(c.old_unit),
                unit_label(c.new_unit),
            ]
            for c in changes
        ),
    )
