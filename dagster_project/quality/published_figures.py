"""Comparison of computed values with the figures the 2025 report printed.

The catalogue gives, for each figure, the printed value and how the report qualified it:
``eq`` equal at the printed precision, ``gte`` ("plus de") at least the printed value and
less than 10 % above, ``approx`` ("environ", "près de") within 5 %, ``target`` equal.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from dagster_project.settings import CATALOGUE_CSV


@dataclass(frozen=True)
class Published:
    indicator_id: str
    department: str
    computation: str
    value: float
    decimals: int
    qualifier: str


@dataclass(frozen=True)
class Comparison:
    indicator_id: str
    published: float
    qualifier: str
    computed: float | None
    ok: bool


def published_figures(path: Path = CATALOGUE_CSV) -> list[Published]:
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        text = (row.get("published_2025") or "").strip()
        if not text:
            continue
        decimals = len(text.split(".")[1]) if "." in text else 0
        out.append(
            Published(
                row["indicator_id"],
                row["department"],
                row["computation"],
                float(text),
                decimals,
                row["published_qualifier"] or "eq",
            )
        )
    return out


def matches(figure: Published, computed: float | None) -> bool:
    if computed is None:
        return False
    printed = figure.value
    if figure.qualifier in ("eq", "target"):
        return round(computed, figure.decimals) == round(printed, figure.decimals)
    if figure.qualifier == "gte":
        return printed <= computed < printed * 1.10 if printed >= 0 else computed >= printed
    if figure.qualifier == "approx":
        return abs(computed - printed) <= abs(printed) * 0.05
    raise ValueError(f"qualificatif inconnu : {figure.qualifier}")


def compare(values: dict[str, float], figures: list[Published] | None = None) -> list[Comparison]:
    """values: indicator_id -> agglomeration value of 2025."""
    figures = figures if figures is not None else published_figures()
    return [
        Comparison(
            f.indicator_id,
            f.value,
            f.qualifier,
            values.get(f.indicator_id),
            matches(f, values.get(f.indicator_id)),
        )
        for f in figures
    ]


def compare_warehouse(
    con, year: int = 2025, table: str = "marts.fct_indicator_values"
) -> list[Comparison]:
    rows = con.execute(
        f"select indicator_id, value from {table} where year = ? and code_insee is null", [year]
    ).fetchall()
    return compare(dict(rows))
