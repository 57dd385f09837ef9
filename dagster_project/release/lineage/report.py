"""A trace (``trace.Trace``) as ``kpi trace`` prints it: French text for an auditor
(``format_trace``, with ``describe_selection``: how many rows feed the value and by which
filter), or JSON (``trace_json``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict

from dagster_project.contracts.reference import amount_fr, computation_fr, direction_fr, kind_fr
from dagster_project.lib.french import format_number
from dagster_project.release.lineage.trace import RowSelection, Trace


def _when(value) -> str:
    if value is None:
        return "—"
    return value.strftime("%d/%m/%Y %H:%M:%S") if hasattr(value, "strftime") else str(value)


def _day(value) -> str:
    """31/12/2025 for a date (« — » when there is none)."""
    if value is None:
        return "—"
    return value.strftime("%d/%m/%Y") if hasattr(value, "strftime") else str(value)


def _lines(n: int) -> str:
    return f"{n} ligne" if n <= 1 else f"{n} lignes"


def describe_selection(selection: RowSelection, code_insee: str | None = None) -> str:
    """« 100 lignes de eau_reseau (reseau = eau_potable) entrent dans le calcul, sur 200
    lignes livrées »: how many rows feed the value, and by which filter."""
    s = selection
    verb = "entre" if s.row_count <= 1 else "entrent"
    if not s.filter_declared:
        return (
            f"{_lines(s.row_count)} de {s.source_id} listée(s) : toutes les lignes livrées"
            + (f" pour la commune {code_insee}" if code_insee and s.row_filter else "")
            + ", les lignes du calcul ne sont pas connues (voir les remarques)"
        )
    text = (
        f"{_lines(s.row_count)} de {s.source_id} ({s.row_filter or 'toutes les lignes livrées'}) "
    )
    text += f"{verb} dans le calcul"
    if s.delivered_row_count != s.row_count:
        text += f", sur {_lines(s.delivered_row_count)} livrée"
        text += "s" if s.delivered_row_count > 1 else ""
        text += " pour cette commune" if code_insee and s.row_filter.startswith("commune ") else ""
    return text


def format_trace(t: Trace, max_ranges: int = 30) -> str:
    where = f"{t.commune} ({t.code_insee})" if t.commune else (t.code_insee or "agglomération")
    lines = [f"{t.indicator_id} — {t.label or 'libellé inconnu'}", f"  {t.year}, {where}"]
    if t.release:
        r = t.release
        lines.append(
            f"Publication : {r['release_id']} (version {r['version']}, figée le "
            f"{_when(r['created_at'])})" + (f", motif : {r['reason']}" if r.get("reason") else "")
        )
    else:
        lines.append("Publication : aucune (valeur actuelle de l'entrepôt)")
    v = t.value
    about = [
        f"nature : {kind_fr(v['kind'])}" if v["kind"] else "",
        computation_fr(v["computation"]),
        f"au {_day(v['as_of_date'])}" if v["as_of_date"] else "",
    ]
    lines.append(
        f"Valeur : {amount_fr(v['value'], v['unit'])}"
        + (f" ({', '.join(a for a in about if a)})" if any(about) else "")
    )
    if v.get("comment"):
        lines.append(f"  commentaire : {v['comment']}")
    if t.release:
        status = v.get("review_status") or "non revu"
        review = f"Statut de revue au gel : {status}"
        if v.get("review_comment"):
            review += f" — {v['review_comment']}"
        lines.append(review)
    m = t.model
    lines.append(
        f"Modèle dbt : {m['unique_id'] or m['name']}" + (f" ({m['path']})" if m["path"] else "")
    )
    if m.get("wide_model"):
        lines.append(f"  colonne {t.indicator_id} du modèle {m['wide_model']}")
    lines.append(f"  d'après : {m['origin']}")
    lines.append(f"Livraisons ({len(t.deliveries)}) :")
    for d in t.deliveries:
        status = "en vigueur" if d["in_force"] else "remplacée depuis"
        lines.append(
            f"  - {d['file_name']} ({d['source_id']}, campagne {d['campaign_year']}, "
            f"{direction_fr(d['department'])}, reçue le {_when(d['received_at'])}, {status})"
        )
        lines.append(f"    SHA-256 {d['file_sha256']} — livraison {d['delivery_id']}")
    total = sum(s.row_count for s in t.source_rows)
    lines.append(f"Lignes sources ({total}) :")
    for selection in t.row_selection:
        lines.append("  " + describe_selection(selection, t.code_insee))
    for s in t.source_rows:
        shown = ", ".join(s.ranges[:max_ranges])
        if len(s.ranges) > max_ranges:
            shown += f", … ({len(s.ranges) - max_ranges} plage(s) de plus)"
        scope = f", commune {t.code_insee}" if s.commune_filtered else ""
        lines.append(
            f"  - {s.table}, feuille « {s.sheet} »{scope} : {s.row_count} ligne(s) — "
            f"ligne(s) {shown} (livraison {s.delivery_id})"
        )
        if s.declared is not None:
            d = s.declared
            lines.append(
                f"    valeur déclarée {format_number(d['valeur'])}, date {_day(d['date_valeur'])}"
                + (f", commentaire : {d['commentaire']}" if d["commentaire"] else "")
            )
        if s.restricted:
            lines.append(
                "    données personnelles : seuls la feuille et les numéros de ligne sont montrés"
            )
    for note in t.notes:
        lines.append(f"Remarque : {note}")
    return "\n".join(lines)


def _json_value(value):
    """Dates and times in ISO 8601 (``2026-01-15T09:30:00``), as in every ``--json`` of
    ``kpi`` (docs/cli.md); any other value the JSON module does not know, as its text."""
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return str(value)


def trace_json(t: Trace) -> str:
    return json.dumps(asdict(t), ensure_ascii=False, indent=2, default=_json_value)
