"""A release's exports written from a small warehouse built by hand (no pipeline): a few real
catalogue indicators over 2023-2025, three communes, a frozen release whose values differ
from the marts for one indicator, one review, and HR rows (pseudonyms and one clear
matricule) so that the HR suite fails and its evidence can be searched for personal values.
``write_release`` writes it all (GX costs a few seconds to import: once per module)."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb

from dagster_project.ingest.store import ensure_tables
from dagster_project.release.exports import write_release_exports
from dagster_project.settings import CATALOGUE_CSV, COMMUNES_CSV

RELEASE = "RA-2025-v1"
YEAR = 2025
SUITES = ["raw_rh_effectifs", "raw_eau_volumes", "marts_fct_yoy_jumps"]
PSEUDONYMS = ["0123456789abcdef", "fedcba9876543210"]
CLEAR_MATRICULE = "M004217"
BREAKDOWN = "water_network_length"
NO_HISTORY = "craft_businesses_growth_1y"  # only a 2025 value
FROZEN = "council_members_total"  # release value differs from the marts


def _catalogue() -> dict[str, dict]:
    with CATALOGUE_CSV.open(encoding="utf-8", newline="") as handle:
        return {row["indicator_id"]: row for row in csv.DictReader(handle)}


def _chosen(catalogue: dict[str, dict]) -> list[str]:
    """One indicator of each priority, plus the ones the tests look at."""
    chosen = [BREAKDOWN, NO_HISTORY, FROZEN, "unemployment_rate"]
    for priority in ("P1", "P2", "P3", "P4", "APPUI", "TERRITOIRE"):
        if not any(catalogue[i]["priority"] == priority for i in chosen):
            chosen.append(next(i for i, r in catalogue.items() if r["priority"] == priority))
    return chosen


def _communes() -> list[tuple[str, str]]:
    with COMMUNES_CSV.open(encoding="utf-8", newline="") as handle:
        return [(r["code_insee"], r["nom"]) for r in csv.DictReader(handle)][:3]


PRIORITY_MART = """
create or replace table marts.{name} as
select f.indicator_id, d.label_fr, d.objective, f.year, f.code_insee,
    case when f.code_insee is null then 'Agglomération' else c.commune_name end as commune_name,
    f.value, f.unit, f.as_of_date, p.value as previous_year_value,
    f.value - p.value as change,
    case when p.value <> 0 then 100.0 * (f.value - p.value) / abs(p.value) end as change_pct,
    f.comment, null::double as target_value, f.kind
from marts.fct_indicator_values f
join marts.dim_indicators d on d.indicator_id = f.indicator_id and d.priority = '{priority}'
left join marts.dim_communes c on c.code_insee = f.code_insee
left join marts.fct_indicator_values p on p.indicator_id = f.indicator_id
    and p.year = f.year - 1 and coalesce(p.code_insee, '') = coalesce(f.code_insee, '')
"""


def build_warehouse(path: Path, contracts) -> dict:
    catalogue = _catalogue()
    chosen = _chosen(catalogue)
    communes = _communes()
    con = duckdb.connect(str(path))
    ensure_tables(con, contracts.values())
    con.execute(
        "insert into ingest.deliveries (delivery_id, campaign_year, department, source_id, "
        "file_path, file_name, file_sha256, received_at, processed_at, outcome, row_count, "
        "problem_count, warning_count, in_force) values ('rh25', 2025, 'hr', 'rh_effectifs', "
        "'sources/rh.xlsx', 'rh.xlsx', 'sha', timestamp '2026-01-15 09:30:00', now(), "
        "'accepted', 3, 0, 0, true)"
    )
    for row_number, matricule in enumerate([*PSEUDONYMS, CLEAR_MATRICULE], start=2):
        con.execute(
            "insert into raw_restricted.rh_effectifs (matricule, date_observation, age_months, "
            "sexe, statut, categorie, direction, quotite, date_entree, _delivery_id, "
            "_file_sha256, _sheet, _row_number, _campaign_year, _department) values "
            "(?, '2025-10-01', ?, 'F', 'TITULAIRE', 'B', 'Direction des finances', 1.0, "
            "'2012-03-01', 'rh25', 'sha', 'Effectifs', ?, 2025, 'hr')",
            [matricule, 40 if matricule == CLEAR_MATRICULE else 480, row_number],
        )
    con.execute("create schema marts")
    con.execute(
        "create table marts.dim_indicators (indicator_id varchar, priority varchar, "
        "objective varchar, label_fr varchar, unit varchar, kind varchar, breakdown varchar)"
    )
    for i in chosen:
        r = catalogue[i]
        con.execute(
            "insert into marts.dim_indicators values (?, ?, ?, ?, ?, ?, ?)",
            [i, r["priority"], r["objective"], r["label_fr"], r["unit"], r["kind"], r["breakdown"]],
        )
    con.execute("create table marts.dim_communes (code_insee varchar, commune_name varchar)")
    con.executemany("insert into marts.dim_communes values (?, ?)", communes)
    con.execute(
        "create table marts.fct_indicator_values (indicator_id varchar, year integer, "
        "code_insee varchar, value double, unit varchar, as_of_date date, kind varchar, "
        "computation varchar, department varchar, priority varchar, comment varchar, "
        "source_ids varchar, delivery_ids varchar)"
    )
    values = {}
    for n, i in enumerate(chosen):
        r = catalogue[i]
        years = [YEAR] if i == NO_HISTORY else [2023, 2024, YEAR]
        for year in years:
            base = 1000.0 * (n + 1) + 25.5 * (year - 2023)
            if i == NO_HISTORY:
                base = -7.0
            rows = [(None, base)]
            if i == BREAKDOWN:
                rows += [(code, base / 4 + k) for k, (code, _) in enumerate(communes)]
            for code, value in rows:
                values[(i, year, code)] = value
                con.execute(
                    "insert into marts.fct_indicator_values values "
                    "(?, ?, ?, ?, ?, make_date(?, 12, 31), ?, 'declared', 'x', ?, ?, 's', 'd')",
                    [
                        i,
                        year,
                        code,
                        value,
                        r["unit"],
                        year,
                        r["kind"],
                        r["priority"],
                        "Chiffre provisoire" if i == BREAKDOWN and code is None else None,
                    ],
                )
    for priority in ("P1", "P2", "P3", "P4", "APPUI", "TERRITOIRE"):
        name = f"{priority.lower()}_indicators"
        con.execute(PRIORITY_MART.format(name=name, priority=priority))
    con.execute("create schema release")
    con.execute(
        "create table release.release_values as select ? as release_id, * exclude "
        "(department, priority) from marts.fct_indicator_values where year = ?",
        [RELEASE, YEAR],
    )
    con.execute(
        "update release.release_values set value = 4242 where indicator_id = ? "
        "and code_insee is null",
        [FROZEN],
    )
    con.execute("create schema review")
    con.execute(
        "create table review.value_reviews (year integer, indicator_id varchar, code_insee "
        "varchar, status varchar, comment varchar, reviewer varchar, reviewed_at timestamp)"
    )
    con.execute(
        "insert into review.value_reviews values (2025, ?, null, 'présomption d''anomalie', "
        "'À vérifier', 'a', timestamp '2026-01-20 10:00'), (2025, ?, null, "
        "'sans anomalie apparente', 'Conforme au bilan', 'b', timestamp '2026-01-21 10:00')",
        [BREAKDOWN, BREAKDOWN],
    )
    con.close()
    return {"chosen": chosen, "catalogue": catalogue, "communes": communes, "values": values}


def write_release(root: Path, contracts) -> dict:
    """The small warehouse in ``root`` and the exports of its release: the folder, the files
    written, the warehouse and what ``build_warehouse`` put in it."""
    warehouse = root / "warehouse.duckdb"
    facts = build_warehouse(warehouse, contracts)
    folder = root / RELEASE
    with duckdb.connect(str(warehouse), read_only=True) as con:
        files = write_release_exports(con, RELEASE, YEAR, folder, suites=SUITES)
    return {"folder": folder, "files": files, "warehouse": warehouse, **facts}
