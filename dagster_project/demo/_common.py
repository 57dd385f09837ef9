"""Shared helpers of the demo-campaign generator: seeded randomness, exact
apportionment (largest remainder), reference data and French formatting.

Everything here is deterministic: no wall clock, no hash randomisation, no
dictionary-order surprises.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dagster_project.contracts.reference import MONTHS_FR
from dagster_project.settings import CATALOGUE_CSV, COMMUNES_CSV

NBSP = "\u00a0"
NNBSP = "\u202f"


# --------------------------------------------------------------------------- randomness


def rng_for(*parts: object) -> random.Random:
    """A generator seeded by a readable key (string seeds are hashed with
    SHA-512 by ``random``: stable across runs and Python processes)."""
    return random.Random(":".join(str(p) for p in parts))


def year_factor(key: str, year: int, spread: float, *, ref_year: int = 2025) -> float:
    """Multiplicative factor of a flow for ``year`` relative to ``ref_year``
    (1.0 for the reference year)."""
    if year == ref_year:
        return 1.0
    return 1.0 + rng_for("flow", key, year).uniform(-spread, spread)


def stock_factor(
    key: str, year: int, growth: tuple[float, float], *, ref_year: int = 2025
) -> float:
    """Factor of a slowly growing stock (network length, staff...) for
    ``year`` relative to ``ref_year``: smaller in the past."""
    if year >= ref_year:
        return 1.0
    g = rng_for("stock", key).uniform(*growth)
    return (1.0 - g) ** (ref_year - year)


# --------------------------------------------------------------------------- apportionment


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split the non-negative integer ``total`` into integers proportional to
    ``weights`` (largest remainder, ties broken by position). The parts sum
    exactly to ``total``; a zero weight always gets zero."""
    if total < 0:
        raise ValueError("total must be >= 0")
    iw = [max(0, round(w * 1_000_000)) for w in weights]
    s = sum(iw)
    if s == 0:
        if total == 0:
            return [0] * len(iw)
        raise ValueError("cannot apportion a positive total over zero weights")
    parts = []
    rems = []
    for i, w in enumerate(iw):
        q, r = divmod(total * w, s)
        parts.append(q)
        rems.append((-r, i))
    missing = total - sum(parts)
    for _, i in sorted(rems)[:missing]:
        parts[i] += 1
    return parts


def apportion_bounded(total: int, weights: Sequence[float], caps: Sequence[int]) -> list[int]:
    """Like :func:`apportion`, but no part exceeds its cap (the excess is
    re-apportioned over the parts still below their cap)."""
    if total > sum(caps):
        raise ValueError("total exceeds the sum of the caps")
    parts = [0] * len(weights)
    free = [i for i, c in enumerate(caps) if c > 0 and weights[i] > 0]
    remaining = total
    while remaining > 0:
        share = apportion(remaining, [weights[i] for i in free])
        nxt = []
        for i, s in zip(free, share, strict=True):
            room = caps[i] - parts[i]
            take = min(room, s)
            parts[i] += take
            remaining -= take
            if parts[i] < caps[i]:
                nxt.append(i)
        if not nxt and remaining:
            raise ValueError("cannot place the total under the caps")
        free = nxt
    return parts


def cents(x: float) -> int:
    return round(x * 100)


def from_cents(c: int) -> float:
    return round(c / 100, 2)


# --------------------------------------------------------------------------- dates


def last_day(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def easter(year: int) -> dt.date:
    """Easter Sunday (Meeus/Jones/Butcher Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month = (h + el - 7 * m + 114) // 31
    day = (h + el - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


@lru_cache(maxsize=16)
def public_holidays(year: int) -> frozenset[dt.date]:
    """French public holidays."""
    e = easter(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
    days = {dt.date(year, m, d) for m, d in fixed}
    days |= {e + dt.timedelta(days=n) for n in (1, 39, 50)}
    return frozenset(days)


def random_workday(rng: random.Random, year: int, months: Sequence[int] = range(1, 13)) -> dt.date:
    holidays = public_holidays(year)
    months = list(months)
    while True:
        m = rng.choice(months)
        d = dt.date(year, m, rng.randint(1, calendar.monthrange(year, m)[1]))
        if d.weekday() < 5 and d not in holidays:
            return d


def add_months(d: dt.date, n: int) -> dt.date:
    """Shift by whole months; ``d.day`` must be <= 28."""
    m = d.month - 1 + n
    return dt.date(d.year + m // 12, m % 12 + 1, d.day)


def completed_months(birth: dt.date, at: dt.date) -> int:
    return (at.year - birth.year) * 12 + (at.month - birth.month) - (1 if at.day < birth.day else 0)


def month_fr(year: int, month: int, *, capital: bool = False) -> str:
    name = MONTHS_FR[month - 1]
    if capital:
        name = name[0].upper() + name[1:]
    return f"{name} {year}"


# --------------------------------------------------------------------------- French numbers


def fr_number(value: float, decimals: int = 0, *, sep: str = NNBSP, unit: str = "") -> str:
    """``1234567.25`` -> ``1 234 567,25`` (thousands separated by ``sep``)."""
    neg = value < 0
    s = f"{abs(value):.{decimals}f}"
    ent, _, dec = s.partition(".")
    groups = []
    while len(ent) > 3:
        groups.insert(0, ent[-3:])
        ent = ent[:-3]
    groups.insert(0, ent)
    out = sep.join(groups)
    if dec:
        out += "," + dec
    if neg:
        out = "-" + out
    if unit:
        out += " " + unit
    return out


# --------------------------------------------------------------------------- communes


@dataclass(frozen=True)
class Commune:
    code: str
    name: str
    pop: int


def strip_accents(s: str) -> str:
    s = s.replace("œ", "oe").replace("Œ", "OE")
    return "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn")


def kit_name_key(name: str) -> str:
    """Normalisation of commune names as the collection kit describes it
    (case, accents, hyphens/spaces, apostrophes, oe, les/lès/lez, St/Ste)."""
    s = strip_accents(name).lower()
    for ch in "-'’":
        s = s.replace(ch, " ")
    words = []
    for w in s.split():
        if w in ("les", "lez"):
            w = "les"
        elif w in ("st", "st."):
            w = "saint"
        elif w in ("ste", "ste."):
            w = "sainte"
        words.append(w)
    return " ".join(words)


def name_variant(name: str, style: int) -> str:
    """Spellings that departments really type; every one matches the
    official name under the kit's rules."""
    if style == 0:
        return name
    if style == 1:  # capitals, no accents, spaces: BRUAY LA BUISSIERE
        return strip_accents(name).upper().replace("-", " ")
    if style == 2:  # Noeux les Mines
        s = strip_accents(name).replace("-", " ")
        return s
    if style == 3:  # St Venant, Vendin lez Béthune
        s = name.replace("Saint-", "St ").replace("Sainte-", "Ste ").replace("-lès-", " lez ")
        return s.replace("œ", "oe")
    if style == 4:  # lower case with hyphens kept
        return name.lower()
    raise ValueError(style)


def pick_variant(rng: random.Random, name: str) -> str:
    style = rng.choices([0, 1, 2, 3, 4], weights=[5, 2, 2, 2, 1])[0]
    return name_variant(name, style)


# --------------------------------------------------------------------------- reference files


def catalogue_path() -> Path:
    """The indicator catalogue (dbt seed)."""
    return CATALOGUE_CSV


def communes_path() -> Path:
    """The 100 member communes (dbt seed, from the Code officiel géographique)."""
    return COMMUNES_CSV


def load_communes(path: Path | None = None) -> list[Commune]:
    p = path or communes_path()
    with p.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    out = [
        Commune(r["code_insee"].strip(), r["nom"].strip(), int(r["population_municipale"]))
        for r in rows
    ]
    out.sort(key=lambda c: c.code)
    return out


def load_catalogue(path: Path | None = None) -> list[dict[str, str]]:
    p = path or catalogue_path()
    with p.open(encoding="utf-8", newline="") as f:
        return [{k: (v or "").strip() for k, v in r.items()} for r in csv.DictReader(f)]
