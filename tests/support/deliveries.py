"""Deliveries of assainissement_activite written into a sources folder (``deliver``), what
the warehouse recorded of one (``logged``), and a crash planted in the pipeline for one file
(``crash_on``): the ingestion-safety tests, fast and through Dagster."""

from __future__ import annotations

import os
from pathlib import Path

ACTIVITY = "assainissement_activite"
ACTIVITY_HEADER = [
    "code_insee",
    "mois",
    "controles_spanc_vente",
    "branchements_eu_crees",
    "demandes_eaux_pluviales",
]
GOOD = [["62119", "2025-01", 1, 0, 1], ["62178", "2025-02", 2, 1, 0]]
MIDDLE = [[*GOOD[0][:2], 5, 0, 1], GOOD[1]]
UNREADABLE_START = "le fichier n'a pas pu être lu jusqu'au bout (erreur interne : "


def deliver(workbook, folder: Path, name, rows, mtime, sheet="Activité", header=ACTIVITY_HEADER):
    path = workbook({sheet: [header, *rows]}, name=name)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    path.replace(target)
    os.utime(target, (mtime, mtime))
    return target


def logged(con, name: str):
    row = con.execute(
        "select delivery_id, outcome, in_force, report_path, depends_on from ingest.deliveries "
        "where file_name = ? order by processed_at desc limit 1",
        [name],
    ).fetchone()
    assert row is not None, f"{name} not recorded"
    reasons = [
        r
        for (r,) in con.execute(
            "select reason from ingest.delivery_problems where delivery_id = ? "
            "and severity = 'error'",
            [row[0]],
        ).fetchall()
    ]
    return {
        "id": row[0],
        "outcome": row[1],
        "in_force": row[2],
        "report": row[3],
        "depends_on": row[4],
        "reasons": reasons,
    }


def crash_on(name: str, exc: BaseException, original):
    def planted(*args, **kwargs):
        path = next(a for a in args if isinstance(a, Path))
        if path.name == name:
            raise exc
        return original(*args, **kwargs)

    return planted
