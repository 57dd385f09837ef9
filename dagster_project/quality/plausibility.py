"""Implausible values: what a person must qualify before the year's figures are frozen.

A statistics office does not publish a figure that jumps a thousandfold without someone having
looked at it (SISPEA publishes an indicator only once it is qualified; a value « avec anomalie »
is never published). A value of the year is **implausible** when

- it moves beyond its plausibility bound from the previous year: more than ×F or less than ÷F
  (``F`` = ``plausibility_factor`` of ``indicator_catalogue_extensions``, ``DEFAULT_FACTOR``
  otherwise). 0 → 15 000 is not a ratio: an agglomeration value that appears or vanishes is
  flagged when the other year reaches ``MIN_MAGNITUDE``; a commune's value is not (activity
  figures of a commune are often 0 one year: 376 such values in the demo's 2025 campaign,
  none of them news); or
- a **warning check** of the marts fails on it (``expectations/marts.yml``, non-blocking
  suites whose dataset names values by ``indicator_id``, ``year`` and ``code_insee``: today
  ``marts_fct_yoy_jumps``, ±50 % on stock figures). Its ``between`` expectations are applied
  to the same dataset the check validated (``quality.datasets``), without Great
  Expectations: the rows out of bounds are the values it failed on.

An implausible value is **qualified** when its current review (``kpi review``) says « sans
anomalie apparente » or « présomption d'anomalie » with a comment, for the value as it is now
(a value changed since its review must be reviewed again). « anomalie » still blocks the
freeze (``release.gate``). ``freeze_summary`` gathers what ``kpi freeze`` shows before it
writes anything.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import duckdb

from dagster_project.lib.french import format_number
from dagster_project.settings import CATALOGUE_CSV
from dagster_project.warehouse.relations import table_exists

DEFAULT_FACTOR = 10.0
MIN_MAGNITUDE = 10.0  # 0 -> 3 is news only when the other year is at least this large


@cache
def plausibility_factors(path: Path = CATALOGUE_CSV) -> dict[str, float]:
    """Per-indicator bound from ``indicator_catalogue_extensions.csv`` (blank: the default)."""
    extensions = path.with_name("indicator_catalogue_extensions.csv")
    factors: dict[str, float] = {}
    if extensions.is_file():
        with extensions.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                text = (row.get("plausibility_factor") or "").strip()
                if text:
                    factors[row["indicator_id"]] = float(text)
    return factors


def _number(value: float | None) -> str:
    return format_number(value) if value is not None else "vide"


def bound_reason(
    value: float | None,
    previous: float | None,
    factor: float = DEFAULT_FACTOR,
    *,
    zero_counts: bool = True,
) -> str | None:
    """Why ``value`` is beyond ×factor / ÷factor of ``previous`` (French), or None;
    ``zero_counts``: a value appearing or vanishing (0 on one side) is flagged."""
    if value is None or previous is None or math.isnan(value) or math.isnan(previous):
        return None
    low, high = sorted((abs(value), abs(previous)))
    if low == 0:
        if zero_counts and high >= MIN_MAGNITUDE:
            return f"{_number(previous)} l'an dernier, {_number(value)} cette année"
        return None
    ratio = high / low
    if ratio <= factor and (value >= 0) == (previous >= 0):
        return None
    if (value >= 0) != (previous >= 0):
        return f"changement de signe ({_number(previous)} → {_number(value)})"
    way = "×" if abs(value) > abs(previous) else "÷"
    return (
        f"{way}{_number(round(ratio, 1 if ratio < 100 else None))} en un an "
        f"({_number(previous)} → {_number(value)} ; borne ×{_number(factor)})"
    )


@dataclass
class Flag:
    """One implausible value of the year, and whether someone qualified it."""

    indicator_id: str
    code_insee: str | None
    commune: str | None
    label: str | None
    value: float | None
    previous_value: float | None
    unit: str | None
    reasons: list[str] = field(default_factory=list)
    status: str | None = None
    comment: str | None = None
    reviewer: str | None = None
    value_at_review: float | None = None
    # review.ReviewedValue's own answer: one definition of « changed since its review »
    changed_since_review: bool = False

    @property
    def where(self) -> str:
        return (
            f"{self.commune or ''} ({self.code_insee})".strip()
            if self.code_insee
            else ("agglomération")
        )

    @property
    def qualified(self) -> bool:
        from dagster_project.quality.review import STATUS_OK, STATUS_SUSPECT

        return (
            self.status in (STATUS_OK, STATUS_SUSPECT)
            and bool((self.comment or "").strip())
            and not self.changed_since_review
        )

    @property
    def note(self) -> str:
        """What the release and its report say next to a qualified value (French)."""
        return "valeur atypique (" + " ; ".join(self.reasons) + ")"

    def line(self) -> str:
        text = f"{self.indicator_id} — {self.where} : " + " ; ".join(self.reasons)
        if self.qualified:
            text += f" — qualifiée « {self.status} » par {self.reviewer} : {self.comment}"
        elif self.changed_since_review:
            text += " — valeur modifiée depuis sa revue : à revoir"
        return text

    def command(self, year: int) -> str:
        commune = f" --commune {self.code_insee}" if self.code_insee else ""
        return (
            f"kpi review set --year {year} --indicator {self.indicator_id}{commune} "
            '--status ok --comment "…" --reviewer "…"'
        )


def _warning_check_rows(con: duckdb.DuckDBPyConnection, year: int) -> dict[tuple, list[str]]:
    """(indicator_id, code_insee) -> reasons, for the values of ``year`` a non-blocking marts
    suite's ``between`` expectations reject."""
    from dagster_project.quality.datasets import build_dataset
    from dagster_project.quality.suites import load_marts_yml

    found: dict[tuple, list[str]] = {}
    for name, spec in (load_marts_yml().get("suites") or {}).items():
        if spec.get("blocking", True):
            continue
        try:
            df = build_dataset(con, dict(spec["dataset"]))
        except Exception:  # data not there (a table missing): the check said so in its run
            continue
        if not {"indicator_id", "year"} <= set(df.columns) or df.empty:
            continue
        df = df[df["year"] == year]
        for item in spec.get("expectations") or []:
            if item.get("type") != "expect_column_values_to_be_between":
                continue
            kwargs = item.get("kwargs") or {}
            column = kwargs.get("column")
            if column not in df.columns:
                continue
            values = df[column]
            out = values.notna() & (
                (values < kwargs["min_value"] if kwargs.get("min_value") is not None else False)
                | (values > kwargs["max_value"] if kwargs.get("max_value") is not None else False)
            )
            rule = str(item.get("description_fr") or name).rstrip(".")
            for _, row in df[out].iterrows():
                code = row.get("code_insee") if "code_insee" in df.columns else None
                code = (
                    None if code is None or (isinstance(code, float) and math.isnan(code)) else code
                )
                found.setdefault((row["indicator_id"], code), []).append(
                    f"contrôle {name} : {rule} ({column} = {_number(float(row[column]))})"
                )
    return found


# a relative margin on the bound in SQL: the values it lets through are judged in Python
_MARGIN = 1e-9


def _candidates(factors: dict[str, float], checks: dict[tuple, list[str]]) -> tuple[str, list, str]:
    """``review.reviewed_values``' narrowing to the values that may be implausible: those a
    warning check names, and those beyond their bound in SQL with a margin (``bound_reason``,
    below, then judges each of them as it would have judged every value). The others — all
    but a few of a year's values — are never read into Python (a year of 390 000 values at
    SF100: 1.1 s of objects for none implausible)."""
    ids = sorted(factors)
    keys = sorted(checks, key=lambda key: (key[0], key[1] or ""))
    joins = (
        "left join (select unnest(?::varchar[]) as indicator_id, "
        "unnest(?::double[]) as factor) as kpi_bound on kpi_bound.indicator_id = f.indicator_id "
        "left join (select distinct unnest(?::varchar[]) as indicator_id, "
        "unnest(?::varchar[]) as code_insee) as kpi_checked "
        "on kpi_checked.indicator_id = f.indicator_id "
        "and kpi_checked.code_insee is not distinct from f.code_insee"
    )
    params = [ids, [factors[i] for i in ids], [k[0] for k in keys], [k[1] for k in keys]]
    low, high = "least(abs(f.value), abs(p.value))", "greatest(abs(f.value), abs(p.value))"
    condition = (
        "kpi_checked.indicator_id is not null or (f.value is not null and p.value is not null "
        f"and (({low} = 0 and {high} >= {MIN_MAGNITUDE!r} * (1 - {_MARGIN!r})) "
        f"or {high} > coalesce(kpi_bound.factor, {DEFAULT_FACTOR!r}) * {low} * (1 - {_MARGIN!r}) "
        "or (f.value >= 0) != (p.value >= 0) or isnan(f.value) or isnan(p.value)))"
    )
    return joins, params, condition


def implausible_values(
    con: duckdb.DuckDBPyConnection, year: int, values: list | None = None
) -> list[Flag]:
    """Every implausible value of ``year`` with its review, those to qualify first
    (``values``: ``review.reviewed_values(con, year)`` when the caller has them)."""
    from dagster_project.quality.review import reviewed_values

    if not table_exists(con, "marts.fct_indicator_values"):
        return []
    factors = plausibility_factors()
    checks = _warning_check_rows(con, year)
    if values is None:
        values = reviewed_values(con, year, narrowed=_candidates(factors, checks))
    flags = []
    for v in values:
        reasons = []
        bound = bound_reason(
            v.value,
            v.previous_value,
            factors.get(v.indicator_id, DEFAULT_FACTOR),
            zero_counts=v.code_insee is None,
        )
        if bound:
            reasons.append(bound)
        reasons += checks.get((v.indicator_id, v.code_insee), [])
        if not reasons:
            continue
        flags.append(
            Flag(
                indicator_id=v.indicator_id,
                code_insee=v.code_insee,
                commune=v.commune,
                label=v.label,
                value=v.value,
                previous_value=v.previous_value,
                unit=v.unit,
                reasons=reasons,
                status=v.status,
                comment=v.comment,
                reviewer=v.reviewer,
                value_at_review=v.value_at_review,
                changed_since_review=v.changed_since_review,
            )
        )
    return sorted(flags, key=lambda f: (f.qualified, f.indicator_id, f.code_insee or ""))


# --- what `kpi freeze` shows before it writes ---------------------------------------------------


@dataclass
class FreezeSummary:
    year: int
    run_id: str | None
    value_count: int
    flags: list[Flag]
    failed_warnings: list[tuple[str, str]]  # (check, French summary) of the last run
    changed_since_review: list[str]  # lines
    unreviewed: int

    @property
    def unqualified(self) -> list[Flag]:
        return [f for f in self.flags if not f.qualified]

    def text(self, limit: int = 30) -> str:
        lines = [
            f"Avant le gel de {self.year} : {self.value_count} valeur(s) "
            f"(dernière exécution {self.run_id[:8] if self.run_id else 'inconnue'})."
        ]
        if self.failed_warnings:
            lines.append(f"Contrôles d'avertissement en échec : {len(self.failed_warnings)}")
            lines += [f"  - {name} : {text[:300]}" for name, text in self.failed_warnings]
        else:
            lines.append("Contrôles d'avertissement en échec : aucun")
        unqualified = self.unqualified
        qualified = [f for f in self.flags if f.qualified]
        lines.append(
            f"Valeurs atypiques : {len(self.flags)} ({len(unqualified)} à qualifier, "
            f"{len(qualified)} qualifiée(s))"
        )
        for flag in (unqualified + qualified)[:limit]:
            lines.append(f"  - {flag.line()}")
        if len(self.flags) > limit:
            lines.append(f"  … et {len(self.flags) - limit} autre(s) : kpi freeze --dry-run")
        lines.append(f"Valeurs modifiées depuis leur revue : {len(self.changed_since_review)}")
        lines += [f"  - {line}" for line in self.changed_since_review[:limit]]
        lines.append(f"Valeurs non revues : {self.unreviewed} sur {self.value_count}")
        return "\n".join(lines)

    def refusal(self) -> str:
        unqualified = self.unqualified
        listed = "\n".join(
            f"  - {f.line()}\n      {f.command(self.year)}" for f in unqualified[:20]
        )
        more = f"\n  … et {len(unqualified) - 20} autre(s)" if len(unqualified) > 20 else ""
        return (
            f"gel refusé : {len(unqualified)} valeur(s) atypique(s) de {self.year} non "
            f"qualifiée(s) :\n{listed}{more}\nVérifiez chaque valeur auprès de la direction qui "
            "l'a livrée : corrigez la livraison (puis `kpi run`), ou qualifiez la valeur avec un "
            "commentaire qui dit pourquoi elle est juste (`kpi review set … --comment`)."
        )

    def manifest(self) -> dict:
        """The release manifest's record of what was looked at (auditors)."""
        return {
            "default_factor": DEFAULT_FACTOR,
            "flagged": [
                {
                    "indicator_id": f.indicator_id,
                    "code_insee": f.code_insee,
                    "value": f.value,
                    "previous_value": f.previous_value,
                    "reasons": f.reasons,
                    "status": f.status,
                    "comment": f.comment,
                    "reviewer": f.reviewer,
                }
                for f in self.flags
            ],
            "failed_warning_checks": [name for name, _ in self.failed_warnings],
            "changed_since_review": len(self.changed_since_review),
            "unreviewed": self.unreviewed,
        }


def freeze_summary(con: duckdb.DuckDBPyConnection, year: int, run_id: str | None) -> FreezeSummary:
    from dagster_project.quality.review import reviewed_values

    values = reviewed_values(con, year) if table_exists(con, "marts.fct_indicator_values") else []
    failed: list[tuple[str, str]] = []
    if table_exists(con, "audit.check_results"):  # each check's latest result (a run of a
        # few sources does not run every check)
        failed = [
            (name, summary or "")
            for name, summary in con.execute(
                "select check_name, description_fr from audit.check_results "
                "qualify row_number() over (partition by check_name order by checked_at desc) = 1 "
                "and not passed and not blocking order by check_name"
            ).fetchall()
        ]
    changed = [
        f"{v.indicator_id} ({f'commune {v.code_insee}' if v.code_insee else 'agglomération'}) : "
        f"{_number(v.value_at_review)} à la revue, {_number(v.value)} maintenant"
        for v in values
        if v.changed_since_review
    ]
    return FreezeSummary(
        year=year,
        run_id=run_id,
        value_count=len(values),
        flags=implausible_values(con, year, values),
        failed_warnings=failed,
        changed_since_review=changed,
        unreviewed=sum(1 for v in values if not v.status),
    )
