"""A contract's column described in plain French, as the blank templates show it.

The Notice's table of columns and each cell's input help say, for a column, its type, its
unit (``unit_fr``), whether it is required (``required_fr``) and its allowed values and
bounds (``constraints_fr``: the contract's rules as ``contracts.wording`` words them, the
same words as the Dagster UI's column schema). The examples of the contracts are written for
one campaign year (``CONTRACT_EXAMPLES_YEAR``): ``examples_for_year`` and ``type_label_fr``
move them, so that a template of year N shows its examples in year N.
"""

from __future__ import annotations

import datetime as dt
import re

from dagster_project.contracts.model import TYPE_LABELS_FR, Column, Contract
from dagster_project.contracts.reference import unit_label
from dagster_project.contracts.wording import column_rules_fr, value_fr

TYPE_LABELS_TEMPLATE = {**TYPE_LABELS_FR, "commune": "code INSEE (5 chiffres)"}
# The examples of the contracts' descriptions (« ex. janvier 2025, 2025-01 ou 01/2025 ») and
# of TYPE_LABELS_FR (« janvier 2025 ») are written for this campaign year: a template for
# year N shows them moved to N (an example of the following year stays in N + 1).
CONTRACT_EXAMPLES_YEAR = 2025


def unit_fr(unit: str | None) -> str:
    """A unit's French label (« m³ », « € », « personnes »), a contract's own (« jours ») as is."""
    return unit_label(unit)


_EXAMPLE = re.compile(r"\b(?:ex\.|par exemple)\s*[^);\n]*?(?=\)|;|\n|\.(?:\s|$)|$)")
_DATE_OR_YEAR = re.compile(
    r"(?<!\d)(?:(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{4})"
    r"|(?P<y2>\d{4})-(?P<m2>\d{2})-(?P<d2>\d{2})|(?P<year>(?:19|20)\d{2}))(?!\d)"
)


def _shift_years(text: str, years: int) -> str:
    """Every year of ``text`` (alone, in a month or in a date) ``years`` later; a date keeps
    its format, 29 February becomes 28 February in a common year."""
    if not years:
        return text

    def moved(year: int, month: int, day: int) -> dt.date | None:
        try:
            start = dt.date(year, month, day)
        except ValueError:
            return None
        try:
            return start.replace(year=year + years)
        except ValueError:
            return start.replace(year=year + years, day=28)

    def replace(m: re.Match) -> str:
        if m["year"]:
            return str(int(m["year"]) + years)
        if m["y"]:
            day = moved(int(m["y"]), int(m["m"]), int(m["d"]))
            if day is None:
                return m[0]
            return f"{day.day:0{len(m['d'])}d}/{day.month:0{len(m['m'])}d}/{day.year}"
        day = moved(int(m["y2"]), int(m["m2"]), int(m["d2"]))
        return day.isoformat() if day else m[0]

    return _DATE_OR_YEAR.sub(replace, text)


def examples_for_year(text: str, year: int) -> str:
    """A contract text with its examples (« ex. … ») in the campaign ``year``.

    Only the years inside an example move, by ``year - CONTRACT_EXAMPLES_YEAR``: a rule
    (« à partir de 2015 ») stays as written.
    """
    years = year - CONTRACT_EXAMPLES_YEAR
    if not years or not text:
        return text
    return _EXAMPLE.sub(lambda m: _shift_years(m[0], years), text)


def type_label_fr(kind: str, year: int) -> str:
    """French label of a column type, its example (« janvier 2025 ») in ``year``."""
    return _shift_years(TYPE_LABELS_TEMPLATE[kind], year - CONTRACT_EXAMPLES_YEAR)


def required_fr(column: Column) -> str:
    if column.default is not None:
        return f"non (vide = {value_fr(column.default)})"
    return "oui" if column.required else "non"


def constraints_fr(column: Column, contract: Contract, year: int) -> str:
    """Allowed values and bounds of a column, in plain French: what the template's lists
    offer, then the contract's rules (``contracts.wording.column_rules_fr``) for ``year``."""
    parts: list[str] = []
    if column.type == "yes_no":
        parts.append("oui ou non")
    if column.type == "commune":
        parts.append("une des 100 communes de l'agglomération (liste déroulante)")
    parts.extend(column_rules_fr(column, contract, year))
    return " ; ".join(parts)


def header_of(column: Column) -> str:
    """Header written in the template (communes are given by INSEE code)."""
    return "code_insee" if column.type == "commune" else column.name
