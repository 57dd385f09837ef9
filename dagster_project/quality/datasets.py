"""The DataFrames the suites validate, read from the warehouse (``dataset.kind`` of a suite).

GX runs on pandas (its SQL path is broken on DuckDB): each suite names a preparation here,
which reads what it needs with plain SQL and, for mart checks that GX cannot express on the
table itself (completeness of the communes, year-over-year changes), derives a small table
with one row per thing to judge.

Reference data (catalogue, extensions, communes) is read from the warehouse seeds when dbt
has loaded them, otherwise from the CSV files of the dbt project.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import pandas as pd

from dagster_project.settings import CATALOGUE_CSV, COMMUNES_CSV
from dagster_project.warehouse.relations import table_exists


class MissingTable(LookupError):
    """A table the suite reads is not in the warehouse."""

    def __init__(self, table: str):
        super().__init__(table)
        self.table = table


def frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """A query's result as a DataFrame, through Arrow: DuckDB's own ``.df()`` peaks at three
    to four times the frame's size (5.3 GiB for the 4 M analyses of the SF100 benchmark,
    1.8 GiB this way, and three times faster). Same dtypes as ``.df()``: dates as
    ``datetime64[us]``, booleans as the nullable ``boolean``."""
    import pyarrow as pa

    result = con.execute(sql).arrow()
    table = result.read_all() if hasattr(result, "read_all") else result
    df = table.to_pandas(date_as_object=False, types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
    del table
    for name, dtype in df.dtypes.items():
        if str(dtype).startswith("datetime64[") and str(dtype) != "datetime64[us]":
            df[name] = df[name].astype("datetime64[us]")
    return df


def _require(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    for table in tables:
        if not table_exists(con, table):
            raise MissingTable(table)


def _seed_or_csv(con: duckdb.DuckDBPyConnection, table: str, csv_path, columns: list[str]):
    if table_exists(con, table):
        return frame(con, f"select {', '.join(columns)} from {table}")
    if csv_path.exists():
        return pd.read_csv(csv_path, dtype=str, keep_default_na=False)[columns]
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def catalogue(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """indicator_id, breakdown, allow_negative (bool) for every catalogue indicator."""
    cat = _seed_or_csv(
        con, "seeds.indicator_catalogue", CATALOGUE_CSV, ["indicator_id", "breakdown"]
    )
    ext = _seed_or_csv(
        con,
        "seeds.indicator_catalogue_extensions",
        CATALOGUE_CSV.with_name("indicator_catalogue_extensions.csv"),
        ["indicator_id", "allow_negative"],
    )
    negative = {
        str(i)
        for i, flag in zip(ext["indicator_id"], ext["allow_negative"], strict=True)
        if str(flag).strip().lower() in ("true", "1", "oui")
    }
    out = pd.DataFrame(
        {
            "indicator_id": cat["indicator_id"].astype(str),
            "breakdown": cat["breakdown"].astype(str),
        }
    )
    out["allow_negative"] = out["indicator_id"].isin(negative)
    return out


def member_communes(con: duckdb.DuckDBPyConnection) -> list[str]:
    df = _seed_or_csv(con, "seeds.communes", COMMUNES_CSV, ["code_insee"])
    return sorted(str(c) for c in df["code_insee"])


# --------------------------------------------------------------------------------------------


def raw_in_force(con: duckdb.DuckDBPyConnection, spec: dict[str, Any]) -> pd.DataFrame:
    """Rows of the deliveries in force of a raw table (plus the delivered file's name)."""
    table = spec["table"]
    _require(con, table, "ingest.deliveries")
    return frame(
        con,
        f"select r.*, d.file_name as _file_name from {table} r "
        "join ingest.deliveries d on d.delivery_id = r._delivery_id where d.in_force",
    )


def whole_table(con: duckdb.DuckDBPyConnection, spec: dict[str, Any]) -> pd.DataFrame:
    table = spec["table"]
    _require(con, table)
    return frame(con, f"select * from {table}")


def fct_with_catalogue(con: duckdb.DuckDBPyConnection, spec: dict[str, Any]) -> pd.DataFrame:
    """The fact table with the catalogue's breakdown, allow_negative and in_catalogue."""
    fct = whole_table(con, spec)
    cat = catalogue(con)
    out = fct.merge(cat, on="indicator_id", how="left") if "indicator_id" in fct else fct
    if "indicator_id" in fct:
        out["in_catalogue"] = out["breakdown"].notna()
        out["allow_negative"] = out["allow_negative"].fillna(False).astype(bool)
    return out


def commune_completeness(con: duckdb.DuckDBPyConnection, spec: dict[str, Any]) -> pd.DataFrame:
    """One row per commune-breakdown indicator and year present, with its commune counts."""
    fct = whole_table(con, spec)
    members = set(member_communes(con))
    cat = catalogue(con)
    by_commune = set(cat.loc[cat["breakdown"] == "commune", "indicator_id"])
    rows = fct[fct["indicator_id"].isin(by_commune)]
    out = []
    for (indicator_id, year), group in rows.groupby(["indicator_id", "year"], sort=True):
        codes = [str(c) for c in group["code_insee"] if isinstance(c, str) and c]
        present = set(codes)
        missing = sorted(members - present)
        shown = ", ".join(missing[:5]) + (f" … (+{len(missing) - 5})" if len(missing) > 5 else "")
        out.append(
            {
                "indicator_id": indicator_id,
                "year": int(year),
                "commune_rows": len(codes),
                "expected_communes": len(members),
                "missing_communes": len(missing),
                "unknown_communes": len(present - members),
                "missing_list": shown or "aucune",
            }
        )
    columns = [
        "indicator_id",
        "year",
        "commune_rows",
        "expected_communes",
        "missing_communes",
        "unknown_communes",
        "missing_list",
    ]
    return pd.DataFrame(out, columns=columns)


def yoy_changes(con: duckdb.DuckDBPyConnection, spec: dict[str, Any]) -> pd.DataFrame:
    """Agglomeration value of each indicator next to the previous year's, with the change in %."""
    fct = whole_table(con, spec)
    rows = fct[fct["code_insee"].isna()]
    if spec.get("kinds"):
        rows = rows[rows["kind"].isin(spec["kinds"])]
    if spec.get("units"):
        rows = rows[rows["unit"].isin(spec["units"])]
    rows = rows[["indicator_id", "unit", "year", "value"]].dropna(subset=["value"])
    rows = rows.assign(year=rows["year"].astype(int), value=rows["value"].astype(float))
    previous = rows.rename(columns={"year": "previous_year", "value": "previous_value"})
    previous = previous.assign(year=previous["previous_year"] + 1).drop(columns=["unit"])
    out = rows.merge(previous, on=["indicator_id", "year"], how="inner")
    floor = float(spec.get("min_magnitude") or 0)
    if floor:  # 1 -> 2 editions of a fair is +100 % but no news: judge sizeable figures only
        magnitude = out[["value", "previous_value"]].abs().max(axis=1)
        out = out[magnitude >= floor].reset_index(drop=True)
    change = (out["value"] - out["previous_value"]) / out["previous_value"].abs() * 100
    out["change_pct"] = change.where(out["previous_value"] != 0).astype(float)
    out = out.sort_values(["indicator_id", "year"]).reset_index(drop=True)
    return out[
        ["indicator_id", "unit", "year", "value", "previous_year", "previous_value", "change_pct"]
    ]


DATASETS: dict[str, Callable[[duckdb.DuckDBPyConnection, dict[str, Any]], pd.DataFrame]] = {
    "raw_in_force": raw_in_force,
    "table": whole_table,
    "fct_with_catalogue": fct_with_catalogue,
    "commune_completeness": commune_completeness,
    "yoy_changes": yoy_changes,
}


def build_dataset(con: duckdb.DuckDBPyConnection, spec: dict[str, Any]) -> pd.DataFrame:
    try:
        builder = DATASETS[spec["kind"]]
    except KeyError as exc:
        raise ValueError(f"préparation inconnue : {spec.get('kind')!r}") from exc
    return builder(con, spec)
