"""A tiny hand-built warehouse (``build_warehouse``: 2 years of values, their deliveries,
raw rows and a passing run) and a fake of a release's exports (``fake_exports``), for the
release, review, lineage, plausibility and CSV-safety tests."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import duckdb

from dagster_project.ingest.store import ensure_ingest_tables

YEAR = 2025
D_DECL_25 = "indicateurs_declares-2025-finance-aaaaaaaaaaaa"
D_DECL_24 = "indicateurs_declares-2024-finance-bbbbbbbbbbbb"
D_NET_25 = "eau_reseau-2025-water-cccccccccccc"
D_HR_25 = "rh_effectifs-2025-hr-dddddddddddd"
PSEUDONYM = "0123456789abcdef"


def build_warehouse(path: Path) -> Path:
    """A tiny warehouse: 2 years of values, their deliveries, raw rows and a passing run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    ensure_ingest_tables(con)
    con.execute(
        """
        create schema marts;
        create table marts.fct_indicator_values (
            indicator_id varchar not null, year integer not null, code_insee varchar,
            value double not null, unit varchar, as_of_date date, kind varchar,
            computation varchar, department varchar, priority varchar, comment varchar,
            source_ids varchar, delivery_ids varchar);
        create table marts.dim_indicators (indicator_id varchar, priority varchar,
            label_fr varchar, unit varchar, department varchar, kind varchar, computation varchar);
        create table marts.dim_communes (code_insee varchar, commune_name varchar);
        insert into marts.dim_communes values ('62119', 'Béthune'), ('62126', 'Beuvry');
        insert into marts.dim_indicators values
          ('declared_budget', 'P1', 'Budget déclaré', 'eur', 'finance', 'value', 'declared'),
          ('water_network_length', 'P2', 'Linéaire du réseau d''eau', 'km', 'water', 'value', 'derived'),
          ('permanent_staff', 'APPUI', 'Collaborateurs permanents', 'agents', 'hr', 'value', 'derived');
        create schema raw;
        create schema raw_restricted;
        create table raw.indicateurs_declares (indicator_id varchar, code_insee varchar,
            valeur double, date_valeur date, commentaire varchar, source varchar,
            _delivery_id varchar, _file_sha256 varchar, _sheet varchar, _row_number integer,
            _campaign_year integer, _department varchar);
        create table raw.eau_reseau (code_insee varchar, reseau varchar, lineaire_km double,
            _delivery_id varchar, _file_sha256 varchar, _sheet varchar, _row_number integer,
            _campaign_year integer, _department varchar);
        create table raw_restricted.rh_effectifs (matricule varchar, date_observation date,
            age_months bigint, sexe varchar, _delivery_id varchar, _file_sha256 varchar,
            _sheet varchar, _row_number integer, _campaign_year integer, _department varchar);
        create schema audit;
        create table audit.check_results (run_id varchar not null, checked_at timestamp,
            check_name varchar not null, asset varchar, passed boolean not null,
            blocking boolean not null, severity varchar not null, description_fr varchar,
            details_json varchar);
        create table audit.dbt_results (run_id varchar, unique_id varchar, status varchar,
            failures integer, message varchar, execution_time double, recorded_at timestamp);
        """
    )
    values = [
        (
            "declared_budget",
            2024,
            None,
            900.0,
            "eur",
            "declared",
            "finance",
            "P1",
            "indicateurs_declares",
            D_DECL_24,
        ),
        (
            "declared_budget",
            2025,
            None,
            1000.0,
            "eur",
            "declared",
            "finance",
            "P1",
            "indicateurs_declares",
            D_DECL_25,
        ),
        (
            "water_network_length",
            2024,
            None,
            29.0,
            "km",
            "derived",
            "water",
            "P2",
            "eau_reseau",
            None,
        ),
        (
            "water_network_length",
            2025,
            None,
            30.5,
            "km",
            "derived",
            "water",
            "P2",
            "eau_reseau",
            D_NET_25,
        ),
        (
            "water_network_length",
            2025,
            "62119",
            20.0,
            "km",
            "derived",
            "water",
            "P2",
            "eau_reseau",
            D_NET_25,
        ),
        (
            "water_network_length",
            2025,
            "62126",
            10.5,
            "km",
            "derived",
            "water",
            "P2",
            "eau_reseau",
            D_NET_25,
        ),
        (
            "permanent_staff",
            2025,
            None,
            12.0,
            "agents",
            "derived",
            "hr",
            "APPUI",
            "rh_effectifs",
            D_HR_25,
        ),
    ]
    for ind, year, code, value, unit, computation, dept, prio, sources, deliveries in values:
        con.execute(
            "insert into marts.fct_indicator_values values (?, ?, ?, ?, ?, ?, 'value', ?, ?, ?, "
            "null, ?, ?)",
            [
                ind,
                year,
                code,
                value,
                unit,
                dt.date(year, 12, 31),
                computation,
                dept,
                prio,
                sources,
                deliveries,
            ],
        )
    deliveries = [
        (D_DECL_24, 2024, "finance", "indicateurs_declares", "indicateurs_declares_2024.xlsx"),
        (D_DECL_25, 2025, "finance", "indicateurs_declares", "indicateurs_declares_2025.xlsx"),
        (D_NET_25, 2025, "water", "eau_reseau", "eau_reseau_2025.xlsx"),
        (D_HR_25, 2025, "hr", "rh_effectifs", "rh_effectifs_2025.xlsx"),
    ]
    for did, year, dept, source, name in deliveries:
        con.execute(
            "insert into ingest.deliveries (delivery_id, campaign_year, department, source_id, "
            "file_path, file_name, file_sha256, file_size, received_at, processed_at, outcome, "
            "row_count, problem_count, warning_count, sheet, in_force) values "
            "(?, ?, ?, ?, ?, ?, ?, 100, ?, ?, 'accepted', 4, 0, 0, 'Feuille', true)",
            [
                did,
                year,
                dept,
                source,
                f"/sources/{year}/{dept}/{name}",
                name,
                hashlib.sha256(did.encode()).hexdigest(),
                dt.datetime(year + 1, 1, 15, 9, 30),
                dt.datetime(year + 1, 1, 16, 8, 0),
            ],
        )
    declared = [
        ("autre_indicateur", None, 5.0, D_DECL_25, 4),
        ("declared_budget", None, 1000.0, D_DECL_25, 5),
        ("declared_budget", None, 900.0, D_DECL_24, 5),
    ]
    for ind, code, value, did, row in declared:
        con.execute(
            "insert into raw.indicateurs_declares values (?, ?, ?, ?, 'commentaire déclaré', "
            "'source', ?, 'x', 'Indicateurs', ?, ?, 'finance')",
            [ind, code, value, dt.date(2025, 12, 31), did, row, int(did.split("-")[1])],
        )
    for code, row in (("62119", 2), ("62119", 3), ("62126", 4), ("62119", 5)):
        con.execute(
            "insert into raw.eau_reseau values (?, 'AEP', 5.0, ?, 'x', 'Réseaux', ?, 2025, 'water')",
            [code, D_NET_25, row],
        )
    for row in range(3, 15):
        con.execute(
            "insert into raw_restricted.rh_effectifs values (?, '2025-10-01', ?, 'F', ?, 'x', "
            "'Effectifs', ?, 2025, 'hr')",
            [PSEUDONYM[:-2] + f"{row:02d}", 480 + row, D_HR_25, row],
        )
    con.execute(
        "insert into audit.check_results values ('run-1', '2026-01-20 10:00:00', "
        "'raw_eau_reseau', 'raw/eau_reseau', true, true, 'ERROR', 'ok', '{}')"
    )
    con.execute(
        "insert into audit.dbt_results values ('run-1', 'test.kpi.not_null_x.abc', 'pass', 0, "
        "null, 0.1, '2026-01-20 10:00:00')"
    )
    con.close()
    return path


def fake_exports(con, release_id, year, folder: Path) -> list[Path]:
    """Stands in for dagster_project.release.exports: a nested file, deterministic."""
    count = con.execute(
        "select count(*) from release.release_values where release_id = ?", [release_id]
    ).fetchone()[0]
    target = folder / "rapport" / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"<p>{release_id} : {count} valeurs ({year})</p>\n", encoding="utf-8")
    return [target]
