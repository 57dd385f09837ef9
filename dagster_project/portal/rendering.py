"""How the pages are rendered: the Jinja2 environment and its French filters.

Autoescape is on for every template (every cell text, file name and reason a department
sends is escaped); dates and numbers are written the French way (``31/01/2026``,
``1\u202f234,50``) by the ``fr_date`` and ``fr_number`` filters. Kept apart from the
``Portal`` object so the page modules can format a date in a message without it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent


def fr_date(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    with contextlib.suppress(ValueError):
        return fr_date(dt.datetime.fromisoformat(str(value)))
    return str(value)


def fr_number(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}".replace(",", "\u202f").replace(".", ",")
    return f"{int(value):,}".replace(",", "\u202f")


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(("html", "xml"), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fr_date"] = fr_date
    env.filters["fr_number"] = fr_number
    return env
