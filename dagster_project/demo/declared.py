"""Declared figures (``indicateurs_declares``): one workbook per department
of the catalogue that owns ``declared`` indicators."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

from dagster_project.contracts.reference import DIRECTIONS_FR

from ._common import last_day, rng_for
from ._xlsx import Book, Sheet
from .context import Ctx

SOURCE_ID = "indicateurs_declares"

# Notes the steering department wants next to a figure (contradictions of the
# report, figures that are not of the usual kind).
NOTES = {
    "agents_blood_donors_2025_03_18": (
        "Donneurs de la collecte du 18/03 à Loisinord ; le rapport cite aussi 90 dons "
        "(indicateur agents_blood_donations) : les deux chiffres ne se comparent pas."
    ),
    "agents_blood_donations": "Dons de l'année ; à distinguer des 103 agents donneurs de la collecte du 18/03.",
    "social_housing_production_units": (
        "Encadré du rapport (enveloppe de programmation) ; le texte cite 490 logements neufs "
        "programmés, calculés depuis la source logements_sociaux."
    ),
    "social_housing_production_envelope": (
        "Encadré du rapport ; le texte cite 937 000 € de crédits délégués de l'État (source logements_sociaux)."
    ),
    "gemapi_watercourse_length_before_extension": "Linéaire avant l'extension du périmètre GEMAPI.",
}


def departments(catalogue: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in catalogue:
        if row["computation"] == "declared":
            out[row["department"]].append(row)
    return dict(sorted(out.items()))


def build(ctx: Ctx) -> list[Book]:
    books = []
    for dept, rows in departments(ctx.catalogue).items():
        direction = DIRECTIONS_FR.get(dept, f"Direction {dept}")
        data = []
        for r in rows:
            data.append(
                [
                    r["indicator_id"],
                    None,
                    declared_value(r, ctx.year),
                    value_date(r["published_period"], ctx.year),
                    comment(r, ctx.year),
                    direction,
                ]
            )
        sheet = Sheet(
            name="Indicateurs",
            columns=[
                "indicator_id",
                "code_insee",
                "valeur",
                "date_valeur",
                "commentaire",
                "source",
            ],
            titles=[f"Indicateurs déclarés {ctx.year} – {direction}"],
            rows=data,
            widths={"indicator_id": 44, "commentaire": 60, "source": 44},
        )
        books.append(Book(ctx.path(dept, SOURCE_ID), [sheet], title="Indicateurs déclarés"))
    return books


# --------------------------------------------------------------------------- values

# Figures that are stocks (equipment, lengths, members...): in earlier
# campaigns they are equal or a little smaller, never larger.
STOCK_UNITS = {"km", "m2", "ha", "m3", "inhabitants", "communes", "dwellings", "agents"}
STOCK_WORDS = (
    "_count",
    "length",
    "capacity",
    "owned",
    "member",
    "followers",
    "sites",
    "population",
    "area",
    "reservoirs",
    "boreholes",
    "plants",
    "buildings",
    "roads",
    "trails",
    "car_parks",
    "vehicles",
    "antennas",
    "users",
)


def _decimals(s: str) -> int:
    return len(s.split(".")[1]) if "." in s else 0


def _magnitude(s: str) -> int:
    """Rounding step that keeps a figure as round as the printed one."""
    if "." in s:
        return 1
    digits = s.lstrip("-")
    tz = len(digits) - len(digits.rstrip("0"))
    return 10 ** max(0, tz - 1)


def _round_like(v: float, s: str) -> int | float:
    dec = _decimals(s)
    if dec:
        return round(v, dec)
    mag = _magnitude(s)
    return int(round(v / mag) * mag)


def declared_value(row: dict[str, str], year: int) -> int | float:
    s = row["published_2025"]
    v = float(s)
    q = row["published_qualifier"]
    rid = row["indicator_id"]
    rng = rng_for("declared", rid, year)
    if year == 2025:
        if q == "gte" and v > 0:
            up = _round_like(v * (1 + rng.uniform(0.004, 0.04)), s)
            if v <= up < v * 1.1:
                return up
        return _round_like(v, s)
    # earlier campaigns
    if row["kind"] in ("target", "forecast") or row["unit"] in ("rank", "eur_per_unit"):
        return _round_like(v, s)
    if "edition" in rid:
        return max(1, int(v) - (2025 - year))
    if row["unit"] == "communes" and v in (100, 78):
        return int(v)
    if row["unit"] == "pct" and v == 100:
        return 100
    period = row["published_period"]
    if period == "before extension":
        return _round_like(v, s)
    stock = row["unit"] in STOCK_UNITS or any(k in rid for k in STOCK_WORDS)
    if period.startswith("cumulative"):
        return _round_like(v * (1 - rng.uniform(0.07, 0.12) * (2025 - year)), s)
    if _decimals(s) == 0 and abs(v) < 10:
        step = rng.choice([-1, 0, 0] if stock else [-1, 0, 0, 1])
        return max(0 if v == 0 else 1, int(v) + step)
    if stock:  # stocks grow slowly: smaller or equal in the past
        out = _round_like(v * (1 - rng.uniform(0.0, 0.035) * (2025 - year)), s)
    else:
        out = _round_like(v * (1 + rng.uniform(-0.08, 0.08)), s)
    if row["unit"] in ("pct",) and out > 100:
        out = 100
    if row["unit"] == "communes" and out > 100:
        out = 100
    return out


# --------------------------------------------------------------------------- dates and notes

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:\s|$)")
_MONTH = re.compile(r"^(\d{4})-(\d{2})(?:\s|$)")
_PART = re.compile(r"^(\d{4})-([QH])(\d)(?:\s|$)")


def value_date(period: str, year: int) -> dt.date:
    """As-of date of a declared figure, always inside the campaign year."""
    shift = year - 2025
    end = dt.date(year, 12, 31)
    d = None
    if m := _DATE.match(period):
        y, mo, da = int(m[1]) + shift, int(m[2]), int(m[3])
        d = dt.date(y, mo, min(da, 28) if mo == 2 else da)
    elif m := _MONTH.match(period):
        d = last_day(int(m[1]) + shift, int(m[2]))
    elif m := _PART.match(period):
        n = int(m[3])
        mo = 3 * n if m[2] == "Q" else 6 * n
        d = last_day(int(m[1]) + shift, mo)
    if d is None or d.year != year:
        return end
    return d


def _shift_years(text: str, year: int) -> str:
    shift = year - 2025
    if not shift:
        return text
    return re.sub(r"20\d\d", lambda m: str(int(m[0]) + shift) if int(m[0]) >= 2020 else m[0], text)


def comment(row: dict[str, str], year: int) -> str | None:
    rid = row["indicator_id"]
    if rid in NOTES and (year == 2025 or rid.startswith("gemapi")):
        return NOTES[rid]
    period = row["published_period"]
    kind = row["kind"]
    if kind == "target":
        detail = period.removeprefix("target").strip(" :")
        return "Objectif" + (
            f" – échéance {detail}"
            if detail and detail[0].isdigit()
            else (f" {detail}" if detail else "")
        )
    if kind == "forecast":
        if period == "project":
            return "Prévision (projet)"
        return "Prévision" + (
            f" – {_shift_years(period, year)}" if period not in ("", str(year)) else ""
        )
    if period.startswith("cumulative"):
        if "2019" in period:
            return "Cumul depuis la signature de la convention NPNRU (2019)"
        if ":" in period:
            return f"Cumul {_shift_years(period.split(':', 1)[1], year)}"
        return "Valeur cumulée"
    if " vs " in period:
        ref = _shift_years(period.split(" vs ", 1)[1], year)
        return f"Évolution par rapport à {ref}"
    if period.endswith("season"):
        return f"Saison {_shift_years(period.split()[0], year)}"
    if period.endswith("school year"):
        return f"Année scolaire {_shift_years(period.split()[0], year)}"
    if re.match(r"^\d{4}-H1", period):
        return "Premier semestre"
    if re.match(r"^\d{4}-H2", period):
        return "Second semestre"
    if "remaining" in period:
        return "Reste de l'année (prévu)"
    return None
