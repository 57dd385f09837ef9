"""The dbt model that computes an indicator's values (``computing_model``, for
``kpi trace``): the ``int_<department>__indicator_values`` model found in dbt's manifest
(``dbt/target/manifest.json``), with the wide model holding the indicator's column, or,
without a manifest, the name the catalogue implies (``computation`` = declared →
``int_declared__indicator_values``, else the department).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb

from dagster_project.settings import CATALOGUE_CSV, DBT_PROJECT_DIR
from dagster_project.warehouse.relations import table_exists

DBT_MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"


def catalogue_entry(con: duckdb.DuckDBPyConnection, indicator_id: str) -> dict:
    if table_exists(con, "marts.dim_indicators"):
        row = con.execute(
            "select label_fr, department, computation from marts.dim_indicators "
            "where indicator_id = ? limit 1",
            [indicator_id],
        ).fetchone()
        if row:
            return {"label": row[0], "department": row[1], "computation": row[2]}
    if CATALOGUE_CSV.exists():
        with CATALOGUE_CSV.open(encoding="utf-8") as handle:
            for entry in csv.DictReader(handle):
                if entry["indicator_id"] == indicator_id:
                    return {
                        "label": entry.get("label_fr"),
                        "department": entry.get("department"),
                        "computation": entry.get("computation"),
                    }
    return {"label": None, "department": None, "computation": None}


def computing_model(
    indicator_id: str,
    computation: str | None,
    department: str | None,
    manifest_path: Path | None = None,
) -> dict:
    """The dbt model that computes the indicator's values, from dbt's manifest if present."""
    if computation == "declared" or not department:
        expected = "int_declared__indicator_values"
    else:
        expected = f"int_{department}__indicator_values"
    model = {
        "name": expected,
        "unique_id": None,
        "path": None,
        "wide_model": None,
        "upstream": [],
        "origin": "catalogue (direction et mode de calcul de l'indicateur)",
    }
    manifest_path = manifest_path if manifest_path is not None else DBT_MANIFEST
    if not manifest_path.is_file():
        return model
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return model
    nodes = {
        n["name"]: n
        for n in manifest.get("nodes", {}).values()
        if n.get("resource_type") == "model"
    }
    macros = manifest.get("macros", {})
    quoted = f"'{indicator_id}'"
    found = None
    for name, node in sorted(nodes.items()):
        if not (name.startswith("int_") and name.endswith("__indicator_values")):
            continue
        texts = [node.get("raw_code") or ""]
        for macro_id in node.get("depends_on", {}).get("macros", []):
            if macro_id.startswith(f"macro.{node.get('package_name')}."):
                texts.append(macros.get(macro_id, {}).get("macro_sql") or "")
        if any(quoted in text for text in texts):
            found = name
            break
    name = found or (expected if expected in nodes else None)
    if name is None:
        return model
    node = nodes[name]
    upstream = node.get("depends_on", {}).get("nodes", [])
    all_nodes = manifest.get("nodes", {})
    wide = next(
        (uid for uid in upstream if indicator_id in (all_nodes.get(uid, {}).get("columns") or {})),
        None,
    )
    model.update(
        {
            "name": name,
            "unique_id": node.get("unique_id"),
            "path": node.get("original_file_path"),
            "wide_model": wide,
            "upstream": upstream,
            "origin": "manifeste dbt (" + str(manifest_path) + ")",
        }
    )
    return model
