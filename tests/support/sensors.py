"""The `new_deliveries` sensor of the project's definitions, and a corrected delivery for it:
the demo's eau_reseau 2025 workbook with the drinking-water subscribers of one commune
changed (``write_corrected_reseau``), and that figure read back from the marts."""

from __future__ import annotations

from pathlib import Path

import duckdb
import openpyxl

from dagster_project.settings import Settings


def sensor_and_repo(settings: Settings):
    from dagster_project.defs.definitions import build_definitions

    defs = build_definitions(settings)
    return defs.resolve_sensor_def("new_deliveries"), defs.get_repository_def(), defs


CORRECTED_COMMUNE = "62023"
SUBSCRIBERS_BEFORE, SUBSCRIBERS_AFTER = 1266, 1766  # eau_potable subscribers of 62023 in 2025


def write_corrected_reseau(original: Path, corrected: Path) -> None:
    workbook = openpyxl.load_workbook(original)
    sheet = workbook.worksheets[0]
    header = [c.value for c in sheet[1]]
    insee, network, subscribers = (
        header.index("Code INSEE"),
        header.index("Réseau"),
        header.index("Nb abonnés"),
    )
    changed = total = 0
    for row in sheet.iter_rows(min_row=2):
        if str(row[insee].value) == CORRECTED_COMMUNE and row[network].value == "eau_potable":
            assert row[subscribers].value == SUBSCRIBERS_BEFORE
            row[subscribers].value = SUBSCRIBERS_AFTER
            changed += 1
        elif str(row[insee].value or "").lower().startswith("total"):
            # the control total row must still equal the sum of the rows (contract rule)
            row[subscribers].value += SUBSCRIBERS_AFTER - SUBSCRIBERS_BEFORE
            total += 1
    assert (changed, total) == (1, 1), "demo workbook layout changed"
    workbook.save(corrected)


def water_subscribers(warehouse: Path) -> dict[str | None, float]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select code_insee, value from marts.fct_indicator_values "
            "where indicator_id = 'water_subscribers' and year = 2025 "
            "and (code_insee is null or code_insee = ?)",
            [CORRECTED_COMMUNE],
        ).fetchall()
    finally:
        con.close()
    return dict(rows)
