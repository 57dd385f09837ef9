"""The campaign clock and the French way of writing dates.

Every date of the campaign is judged against a ``today`` argument, never the system clock:
``parse_today`` turns ``--today`` / ``KPI_TODAY`` into that date, so a status or a reminder
can be reproduced for any day. ``parse_date`` reads a date of the campaign file
(``AAAA-MM-JJ`` or ``JJ/MM/AAAA``); ``fr_date`` and ``days_fr`` write one for people.
``add_years``, ``public_holidays_fr`` and ``non_working_reason`` are the calendar of next
year's campaign (``rollover.py``): a date one year later, and the due dates that fall on a
day off.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def parse_today(value: str | dt.date | None) -> dt.date:
    """The campaign clock: an ISO date (``--today`` / ``KPI_TODAY``), or the real date."""
    if isinstance(value, dt.date):
        return value
    if value:
        parsed = parse_date(value)
        if parsed is None:
            raise ValueError(f"date du jour invalide « {value} » (format attendu AAAA-MM-JJ)")
        return parsed
    return dt.date.today()


def parse_date(value: Any) -> dt.date | None:
    """A date written AAAA-MM-JJ or JJ/MM/AAAA (or already a date); None otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
            try:
                return dt.datetime.strptime(text, fmt).date()
            except ValueError:
                continue
    return None


def fr_date(value: dt.date | None) -> str:
    """JJ/MM/AAAA, as people read it; empty for no date."""
    return value.strftime("%d/%m/%Y") if value else ""


def days_fr(n: int) -> str:
    """« 1 jour », « 3 jours »."""
    return f"{n} jour{'s' if n > 1 else ''}"


def add_years(day: dt.date, years: int = 1) -> dt.date:
    """The same day ``years`` later; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _easter(year: int) -> dt.date:
    """Easter Sunday (Gregorian calendar, anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def public_holidays_fr(year: int) -> dict[dt.date, str]:
    """French public holidays (metropolitan France) of ``year``."""
    easter = _easter(year)
    days = {
        dt.date(year, 1, 1): "jour de l'An",
        easter + dt.timedelta(days=1): "lundi de Pâques",
        dt.date(year, 5, 1): "fête du Travail",
        dt.date(year, 5, 8): "Victoire 1945",
        easter + dt.timedelta(days=39): "Ascension",
        easter + dt.timedelta(days=50): "lundi de Pentecôte",
        dt.date(year, 7, 14): "fête nationale",
        dt.date(year, 8, 15): "Assomption",
        dt.date(year, 11, 1): "Toussaint",
        dt.date(year, 11, 11): "Armistice",
        dt.date(year, 12, 25): "Noël",
    }
    return dict(sorted(days.items()))


def non_working_reason(day: dt.date) -> str | None:
    """« samedi », « dimanche » or the public holiday; None on a working day."""
    if day.weekday() >= 5:
        return WEEKDAYS_FR[day.weekday()]
    holiday = public_holidays_fr(day.year).get(day)
    return f"{WEEKDAYS_FR[day.weekday()]}, {holiday}" if holiday else None
