"""The rows a failed expectation is about, found again in the release's warehouse, and the
labels that name them (indicators, communes): what the checks page (``controles.html``)
shows under each failed expectation.

The results are the very ones of the Data Docs and ``validation/*.json``: the items
``data_docs.gather_data_docs`` reads (the checks' recorded results, ``audit.check_evidence``,
or a suite validated again at the freeze when it has none). Great Expectations keeps, for a
failed expectation, the unexpected values (``partial_unexpected_list``, at most 20; the whole
``unexpected_list`` only in its COMPLETE format) and their positions in the DataFrame the
check validated (``partial_unexpected_index_list``), which name no row of the warehouse. So
the rows are found again in the release's warehouse (``matching_rows``): the suite's dataset
is prepared as its check prepared it (``quality.datasets.build_dataset``), the
expectation's ``row_condition`` is applied as GX applies it (``DataFrame.query``), and the
rows whose checked column(s) hold one of the recorded unexpected values are kept. A column
expectation judges each row on its own values, so these are exactly the failed rows when
every unexpected value was recorded; with more than 20 failed rows they are the rows of the
recorded values, and the page says how many it found out of how many failed. An index list
of dicts (GX's ``unexpected_index_column_names``) is matched the same way, column by column.

Only suites without personal data are asked for their rows (``suites.py``); each suite's
dataset is prepared at most once per page (``_Datasets``).
"""

from __future__ import annotations

import csv
import datetime as dt
import numbers
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from dagster_project.release.exports.checks.values import _ISO_DATE, _missing
from dagster_project.settings import CATALOGUE_CSV, COMMUNES_CSV
from dagster_project.warehouse.relations import column_names, table_exists


def _key(value: Any) -> Any:
    """A comparable form of a value, the same for a DataFrame cell and its JSON in a result."""
    if _missing(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, numbers.Number):
        return ("n", float(value))  # type: ignore[arg-type]
    if isinstance(value, dt.datetime | dt.date):
        stamp = value if isinstance(value, dt.datetime) else dt.datetime(*value.timetuple()[:3])
        return ("d", stamp.replace(tzinfo=None).isoformat())
    if isinstance(value, str):
        match = _ISO_DATE.match(value)
        if match:
            try:
                stamp = dt.datetime.fromisoformat(value.replace(" ", "T"))
            except ValueError:
                return ("s", value)
            return ("d", stamp.replace(tzinfo=None).isoformat())
        return ("s", value)
    if isinstance(value, list | tuple):
        return ("l", tuple(_key(v) for v in value))
    return ("s", str(value))


def _condition(kwargs: dict) -> tuple[bool, str | None]:
    """(understood, pandas query) of an expectation's row condition: GX 1.x keeps the
    pandas string as a pass-through condition (or, older, a plain string)."""
    condition = kwargs.get("row_condition")
    if condition in (None, ""):
        return True, None
    if isinstance(condition, str):
        return True, condition
    if isinstance(condition, dict) and condition.get("pass_through_filter"):
        return True, str(condition["pass_through_filter"])
    return False, None


def expectation_columns(kwargs: dict) -> list[str]:
    if kwargs.get("column"):
        return [kwargs["column"]]
    if kwargs.get("column_A"):
        return [kwargs["column_A"], kwargs["column_B"]]
    return [c for c in kwargs.get("column_list") or [] if c]


@dataclass
class Found:
    """Rows of the warehouse matching a failed expectation's recorded values."""

    rows: Any  # a DataFrame, or None when they cannot be found (``why``)
    complete: bool = True  # every unexpected value was recorded
    why: str = ""


def matching_rows(df, config: dict, result: dict) -> Found:
    """The rows of the prepared dataset ``df`` that a failed expectation (its config and GX
    result) found unexpected: the row condition applied as GX does, then the rows whose
    checked column(s) hold a recorded unexpected value (see the module's docstring)."""
    kwargs = config.get("kwargs") or {}
    kind = str(config.get("type") or "")
    columns = expectation_columns(kwargs)
    if not columns or any(c not in df.columns for c in columns):
        return Found(None, why="attente sans colonne à rapprocher")
    understood, query = _condition(kwargs)
    if not understood:
        return Found(None, why="condition de l'attente non reproductible")
    frame = df
    if query:
        try:
            frame = df.query(query)
        except Exception as exc:  # noqa: BLE001 - told to the reader, never fatal
            return Found(None, why=f"condition de l'attente non évaluable ({type(exc).__name__})")
    count = int(result.get("unexpected_count") or 0)
    if "unexpected_list" in result:
        recorded = list(result.get("unexpected_list") or [])
    else:
        recorded = list(result.get("partial_unexpected_list") or [])
    indexes = list(result.get("partial_unexpected_index_list") or [])
    if indexes and all(isinstance(i, dict) for i in indexes):
        recorded = indexes  # GX's unexpected_index_column_names: columns and their values
    complete = len(recorded) >= count
    if kind == "expect_column_values_to_not_be_null":
        mask = frame[columns[0]].isna()
        return Found(frame[mask], complete=True)
    if not recorded:
        return Found(None, complete=False, why="aucune valeur en écart n'a été relevée")
    if isinstance(recorded[0], dict):
        keyed = [c for c in recorded[0] if c in frame.columns]
        if not keyed:
            return Found(None, complete=complete, why="colonnes relevées absentes")
        wanted = {tuple(_key(item.get(c)) for c in keyed) for item in recorded}
        keys = zip(*(frame[c].map(_key) for c in keyed), strict=True)
    elif len(columns) > 1 and all(isinstance(v, list | tuple) for v in recorded):
        keyed = columns[: len(recorded[0])]
        wanted = {tuple(_key(v) for v in item) for item in recorded}
        keys = zip(*(frame[c].map(_key) for c in keyed), strict=True)
    else:
        wanted = {_key(v) for v in recorded}
        column = frame[columns[0]]
        if (
            pd.api.types.is_numeric_dtype(column)
            and not pd.api.types.is_bool_dtype(column)
            and all(k is not None and k[0] == "n" for k in wanted)
        ):  # numbers: compared in place (390 k rows in a few ms)
            mask = column.isin([k[1] for k in wanted])
        else:
            mask = column.map(_key).isin(wanted)
        return Found(frame[mask], complete=complete)
    mask = [k in wanted for k in keys]
    return Found(frame[mask], complete=complete)


@dataclass
class Labels:
    indicators: dict[str, str] = field(default_factory=dict)
    communes: dict[str, str] = field(default_factory=dict)


def read_labels(con: duckdb.DuckDBPyConnection) -> Labels:
    """Indicator labels (``marts.dim_indicators``, else the catalogue) and commune names
    (``marts.dim_communes``, else the communes seed)."""
    labels = Labels()
    if "label_fr" in column_names(con, "marts.dim_indicators"):
        labels.indicators.update(
            (str(i), str(label))
            for i, label in con.execute(
                "select indicator_id, label_fr from marts.dim_indicators where label_fr is not null"
            ).fetchall()
        )
    if CATALOGUE_CSV.exists():
        with CATALOGUE_CSV.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                labels.indicators.setdefault(row["indicator_id"], row.get("label_fr") or "")
    if table_exists(con, "marts.dim_communes"):
        labels.communes.update(
            (str(code), str(name))
            for code, name in con.execute(
                "select code_insee, commune_name from marts.dim_communes "
                "where code_insee is not null"
            ).fetchall()
        )
    if COMMUNES_CSV.exists():
        with COMMUNES_CSV.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                labels.communes.setdefault(row["code_insee"], row.get("nom") or "")
    return labels


class _Datasets:
    """The prepared dataset of each suite, read at most once, only when needed."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.cache: dict[str, tuple[Any, str]] = {}

    def get(self, name: str, spec: dict) -> tuple[Any, str]:
        if name not in self.cache:
            from dagster_project.quality.datasets import MissingTable, build_dataset

            try:
                self.cache[name] = (build_dataset(self.con, spec), "")
            except MissingTable as exc:
                self.cache[name] = (None, f"table {exc.table} absente de l'entrepôt")
            except Exception as exc:  # noqa: BLE001 - told to the reader, never fatal
                self.cache[name] = (None, f"préparation impossible ({type(exc).__name__})")
        return self.cache[name]
