"""Atypical values told to the department that delivered them, at delivery time.

After the marts are built (the ``quality/atypical_values`` asset), every atypical value not
yet qualified (``quality.plausibility``) is traced to the deliveries in force that feed it
(``fct_indicator_values.delivery_ids``). Each such delivery gets a French notice beside its
file, ``<file>.a_confirmer.csv`` (UTF-8 with BOM, ``;``, numbers with a decimal comma:
opens in French Excel), like the rejection report: the file is accepted, but these figures
look wrong and someone must confirm or correct them before the year can be frozen. A notice
disappears once the values are corrected or qualified. The values are also kept in
``quality.atypical_values`` for ``kpi status`` and the reminders (``campaign``).

A notice is written into a temporary file then renamed over its name: a link planted at
that name is replaced, never followed.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import duckdb

from dagster_project.ingest.discovery import NOTICE_SUFFIX
from dagster_project.lib.csv_safety import excel_number, neutralise_row
from dagster_project.quality.plausibility import Flag, implausible_values
from dagster_project.warehouse.relations import insert_rows, table_exists
from dagster_project.warehouse.schema import recreate

HEADER = [
    "Indicateur",
    "Libellé",
    "Commune",
    "Année",
    "Valeur",
    "Valeur de l'année précédente",
    "Pourquoi elle est à confirmer",
    "Que faire",
]
TODO_FR = (
    "Vérifiez ce chiffre. S'il est juste, dites-le à la Direction du Pilotage Stratégique "
    "(elle le confirmera avec votre explication) ; sinon déposez un fichier corrigé."
)


def _years(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [
        y
        for (y,) in con.execute(
            "select distinct year from marts.fct_indicator_values order by year"
        ).fetchall()
    ]


def _delivery_ids(con: duckdb.DuckDBPyConnection, year: int) -> dict[tuple, list[str]]:
    return {
        (indicator, code): [d for d in (ids or "").split(",") if d]
        for indicator, code, ids in con.execute(
            "select indicator_id, code_insee, delivery_ids from marts.fct_indicator_values "
            "where year = ?",
            [year],
        ).fetchall()
    }


def record_atypical_values(
    con: duckdb.DuckDBPyConnection, sources_dir: Path
) -> dict[str, list[tuple[int, Flag]]]:
    """Replace ``quality.atypical_values``; returns, per delivery in force, its atypical
    values not qualified yet."""
    recreate(con, "quality.atypical_values")
    by_delivery: dict[str, list[tuple[int, Flag]]] = {}
    if not table_exists(con, "marts.fct_indicator_values"):
        return by_delivery
    rows = []
    for year in _years(con):
        flags = implausible_values(con, year)
        if not flags:
            continue
        feeds = _delivery_ids(con, year)
        for flag in flags:
            deliveries = feeds.get((flag.indicator_id, flag.code_insee), [])
            rows.append(
                (
                    year,
                    flag.indicator_id,
                    flag.code_insee,
                    flag.label,
                    flag.value,
                    flag.previous_value,
                    " ; ".join(flag.reasons),
                    flag.qualified,
                    ",".join(deliveries),
                )
            )
            if not flag.qualified:
                for delivery_id in deliveries:
                    by_delivery.setdefault(delivery_id, []).append((year, flag))
    if rows:
        insert_rows(con, "quality.atypical_values", None, rows)
    return by_delivery


def _excel_number(value: float | None) -> str:
    """A value as French Excel reads a number (« 900000 », « 12,5 »), « vide » for none."""
    return "vide" if value is None else excel_number(value)


def _write_atomically(path: Path, rows: Iterable[list[str]]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # readable like a rejection report, not mkstemp's 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, delimiter=";")
            writer.writerow(HEADER)
            writer.writerows(neutralise_row(row) for row in rows)  # (csv_safety)
        os.replace(tmp, path)  # replaces a link at that name, never writes through it
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_notices(
    con: duckdb.DuckDBPyConnection,
    sources_dir: Path,
    by_delivery: dict[str, list[tuple[int, Flag]]],
) -> list[Path]:
    """One notice beside each delivery file in force with atypical values; notices of the
    other deliveries are removed. Returns the notices written."""
    sources_dir = Path(sources_dir)
    written: list[Path] = []
    if table_exists(con, "ingest.deliveries"):
        for delivery_id, year, department, name in con.execute(
            "select delivery_id, campaign_year, department, file_name from ingest.deliveries "
            "where in_force order by 1"
        ).fetchall():
            flags = by_delivery.get(delivery_id)
            if not flags:
                continue
            delivery = sources_dir / str(year) / department / name
            if not delivery.is_file() or delivery.is_symlink():
                continue
            notice = delivery.with_name(delivery.name + NOTICE_SUFFIX)
            _write_atomically(
                notice,
                (
                    [
                        flag.indicator_id,
                        flag.label or "",
                        flag.where,
                        str(value_year),
                        _excel_number(flag.value),
                        _excel_number(flag.previous_value),
                        " ; ".join(flag.reasons),
                        TODO_FR,
                    ]
                    for value_year, flag in flags
                ),
            )
            written.append(notice)
    keep = {p.resolve() for p in written}
    if sources_dir.is_dir():
        for stale in sources_dir.glob(f"*/*/*{NOTICE_SUFFIX}"):
            if stale.resolve() not in keep and not stale.is_symlink():
                stale.unlink()
    return written


def atypical_counts(con: duckdb.DuckDBPyConnection, year: int) -> dict[str, int]:
    """Delivery id -> number of its atypical values of ``year`` still to confirm."""
    if not table_exists(con, "quality.atypical_values"):
        return {}
    counts: dict[str, int] = {}
    for (ids,) in con.execute(
        "select delivery_ids from quality.atypical_values where year = ? and not qualified",
        [year],
    ).fetchall():
        for delivery_id in (ids or "").split(","):
            if delivery_id:
                counts[delivery_id] = counts.get(delivery_id, 0) + 1
    return counts


def atypical_lines(con: duckdb.DuckDBPyConnection, year: int, delivery_id: str) -> list[str]:
    """The atypical values of one delivery still to confirm, one French line each."""
    if not table_exists(con, "quality.atypical_values"):
        return []
    lines = []
    for indicator, label, code, reasons in con.execute(
        "select indicator_id, label_fr, code_insee, reasons from quality.atypical_values "
        "where year = ? and not qualified and list_contains(string_split(delivery_ids, ','), ?) "
        "order by indicator_id, code_insee nulls first",
        [year, delivery_id],
    ).fetchall():
        where = f"commune {code}" if code else "agglomération"
        lines.append(f"{label or indicator} ({where}) : {reasons}")
    return lines
