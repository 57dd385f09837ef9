"""French formatting helpers: numbers as people read them in the texts ``kpi`` prints (a
diff, a trace, a plausibility notice), never in files read by a program.

Shared by the release commands and the quality checks, so it lives here, where every layer
may import it.
"""

from __future__ import annotations


def format_number(value: float | None) -> str:
    """French rendering: 1 234,5 (narrow no-break space, decimal comma), all digits kept."""
    if value is None:
        return "—"
    if float(value).is_integer() and abs(value) < 1e15:
        text = f"{int(value):,}"
    else:
        text = f"{value:,.12g}" if abs(value) < 1e15 else repr(value)
    return text.replace(",", "\u202f").replace(".", ",")
