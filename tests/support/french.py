"""French as the project writes it."""

from __future__ import annotations

import re


def fr(text: str) -> str:
    """French digit groups as the project writes them (narrow no-break space)."""
    return re.sub(r"(?<=\d) (?=\d{3})", "\u202f", text)
