"""``--json`` of `kpi status`, `kpi verify`, `kpi diff`, `kpi review list`: what a script reads.

Each shape is built from the very objects the French text is printed from (no second
computation) and documented in docs/cli.md (« Sortie JSON »): keys in English snake_case,
numbers as numbers, dates and times in ISO 8601, codes rather than French words (a review
status is ``"anomaly"``, a change ``"added"``); French only in the fields that are messages
for people (``…_fr``, ``problems``, ``warnings``, ``message``). The document is printed alone
on stdout; notices and progress go to stderr; the exit code is the text output's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

# French words of the data → the codes of the JSON
CHANGES = {"modifiée": "changed", "ajoutée": "added", "retirée": "removed"}
NOT_REVIEWED = "not_reviewed"


def review_codes() -> dict[str, str]:
    """French review status (``quality.review.STATUSES``, and « non revu ») → its JSON code."""
    from dagster_project.quality import review

    return {
        review.STATUS_OK: "ok",
        review.STATUS_SUSPECT: "suspected_anomaly",
        review.STATUS_ANOMALY: "anomaly",
        review.NOT_REVIEWED: NOT_REVIEWED,
    }


def _default(value):
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} n'est pas sérialisable en JSON")


def dumps(document: dict) -> str:
    """The document as printed: UTF-8 text (not \\u escapes), indented, keys in the shape's
    order."""
    return json.dumps(document, ensure_ascii=False, indent=2, default=_default)


# --- kpi status --------------------------------------------------------------------------------


def status_document(
    year: int, today: dt.date, rows: Sequence, unrecognised: Iterable[Path], xlsx: Path | None
) -> dict:
    """``kpi status --json``: the rows of ``campaign_status`` (``StatusRow``) and their
    summary (``summarize``), as ``format_status`` prints them."""
    from dagster_project.campaign.status import summarize

    summary = summarize(rows, year)
    deliveries = []
    for row in rows:
        item = dataclasses.asdict(row)
        item.update(late=row.late, rejected=row.rejected, accepted_in_force=row.accepted_in_force)
        deliveries.append(item)
    return {
        "year": year,
        "today": today,
        "summary": {**dataclasses.asdict(summary), "message_fr": summary.text_fr()},
        "deliveries": deliveries,
        "unrecognised_files": [str(p) for p in unrecognised],
        "xlsx": str(xlsx) if xlsx else None,
    }


# --- kpi verify --------------------------------------------------------------------------------


def verify_document(result, published, recovered: list[str]) -> dict:
    """``kpi verify --json``: the releases' ``Verification`` and the published copy's
    ``PublicationCheck`` (``None`` when it could not be checked), as ``format_verification``
    and ``format_publication_check`` print them."""
    from dagster_project.release.anchor import ANCHOR

    releases = {
        "intact": result.intact,
        "checked": list(result.checked),
        "problems": list(result.problems),
        "warnings": list(result.warnings),
        "anchor": (
            {"file": ANCHOR, "chain_head": result.chain_head, "size_bytes": result.anchor_bytes}
            if result.chain_head
            else None
        ),
    }
    publication = None
    if published is not None:
        publication = {
            "intact": published.intact,
            "present": published.present,
            "file_name": published.file_name,
            "publication_id": published.publication_id,
            "tables_checked": published.tables,
            "exports_checked": published.exports,
            "problems": list(published.problems),
            "warnings": list(published.warnings),
        }
    return {
        "intact": result.intact and published is not None and published.intact,
        "releases": releases,
        "publication": publication,
        "recovered": list(recovered),
    }


# --- kpi diff ----------------------------------------------------------------------------------


def diff_document(old_id: str, new_id: str, changes: Sequence, reason: str | None, csv) -> dict:
    """``kpi diff --json``: the ``ValueChange`` list of ``diff_releases``, as ``format_diff``
    prints it."""
    from dagster_project.contracts.reference import unit_label

    counts = dict.fromkeys(CHANGES.values(), 0)
    items = []
    for c in changes:
        code = CHANGES[c.change]
        counts[code] += 1
        items.append(
            {
                "change": code,
                "indicator_id": c.indicator_id,
                "label_fr": c.label,
                "code_insee": c.code_insee,
                "commune": c.commune,
                "old_value": c.old_value,
                "new_value": c.new_value,
                "old_unit": c.old_unit,
                "new_unit": c.new_unit,
                "old_unit_label": unit_label(c.old_unit) if c.old_unit else None,
                "new_unit_label": unit_label(c.new_unit) if c.new_unit else None,
            }
        )
    return {
        "old_release": old_id,
        "new_release": new_id,
        "reason": reason,
        "counts": counts,
        "changes": items,
        "csv": str(csv) if csv else None,
    }


# --- kpi review list ---------------------------------------------------------------------------


def _status(status: str | None) -> str:
    return review_codes()[status] if status else NOT_REVIEWED


def review_list_document(year: int, status_filter: str | None, rows: Sequence, counts) -> dict:
    """``kpi review list --json``: the ``ReviewedValue`` rows of ``list_reviews`` and the
    year's ``status_counts``, as the text lists them."""
    from dagster_project.contracts.reference import unit_label

    values = []
    for v in rows:
        values.append(
            {
                "indicator_id": v.indicator_id,
                "label_fr": v.label,
                "department": v.department,
                "priority": v.priority,
                "code_insee": v.code_insee,
                "commune": v.commune,
                "value": v.value,
                "unit": v.unit,
                "unit_label": unit_label(v.unit) if v.unit else None,
                "previous_value": v.previous_value,
                "change": v.change,
                "change_pct": v.change_pct,
                "status": _status(v.status),
                "status_fr": v.status,
                "comment": v.comment,
                "reviewer": v.reviewer,
                "reviewed_at": v.reviewed_at,
                "value_at_review": v.value_at_review,
                "changed_since_review": v.changed_since_review,
            }
        )
    return {
        "year": year,
        "status_filter": status_filter,
        "count": len(values),
        "values": values,
        "year_counts": {_status(status): n for status, n in counts.items()},
    }


def review_history_document(
    year: int, indicator_id: str, code_insee: str | None, entries: Sequence[dict]
) -> dict:
    """``kpi review list --indicator … --json``: every decision on one value (``history``),
    oldest first."""
    return {
        "year": year,
        "indicator_id": indicator_id,
        "code_insee": code_insee,
        "history": [
            {
                "status": _status(e["status"]),
                "status_fr": e["status"],
                "comment": e["comment"],
                "reviewer": e["reviewer"],
                "reviewed_at": e["reviewed_at"],
                "value_at_review": e["value_at_review"],
                "origin": e["origin"],
            }
            for e in entries
        ],
    }
