"""Rules on the whole table of accepted rows, and what the table becomes before it is stored.

Once the rows have passed their cell and row rules, the rules between rows run on the Arrow
table: the grain (no two rows with the same key), unique and constant columns, references to
the delivery in force of another source, every member commune present, declared indicators
known to the catalogue and declared in their own department's folder. Arrow tells whether a
rule can fail; the rows that fail it are then found in Python. An accepted table then gets
pseudonyms instead of identifiers and an age in months instead of a birth date
(``_apply_privacy``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa

from dagster_project.contracts.model import Contract
from dagster_project.ingest.normalize import display
from dagster_project.ingest.validation.context import IngestContext
from dagster_project.ingest.validation.rows import _age_in_months


def _has_duplicates(table: pa.Table, names: list[str]) -> bool:
    """Whether two rows share the same values of ``names`` (nulls equal), in Arrow."""
    keys = table.select(names)
    return keys.group_by(names).aggregate([]).num_rows < keys.num_rows


def _table_rules(contract, table: pa.Table, label, ctx: IngestContext, problem) -> None:
    """Rules on the whole table. Arrow tells whether a rule can fail; the rows that fail it
    are then found in Python, on the columns the rule reads."""
    n = table.num_rows

    def values(name: str) -> list:
        return table.column(name).to_pylist()

    def row_numbers() -> list[int]:
        return values("_row_number")

    if contract.grain and n > 1 and _has_duplicates(table, list(contract.grain)):
        seen: dict[tuple, int] = {}
        keys = zip(*(values(g) for g in contract.grain), strict=True)
        for key, row in zip(keys, row_numbers(), strict=True):
            if key in seen:
                problem(
                    "doublon : même clé (" + ", ".join(contract.grain) + ") que la ligne "
                    f"{seen[key]}",
                    row,
                    label.get(contract.grain[0], contract.grain[0]),
                    " / ".join(display(k) for k in key),
                )
            else:
                seen[key] = row
    for column in contract.columns:
        if not column.unique or tuple(contract.grain) == (column.name,) or n < 2:
            continue
        filled = table.filter(table.column(column.name).is_valid())
        if not _has_duplicates(filled, [column.name]):
            continue
        first: dict[Any, int] = {}
        for value, row in zip(values(column.name), row_numbers(), strict=True):
            if value is None:
                continue
            if value in first:
                problem(
                    f"valeur en double (déjà présente ligne {first[value]})",
                    row,
                    label.get(column.name, column.name),
                    value,
                )
            else:
                first[value] = row
    for rule in contract.rules_of("constant"):
        column = rule["column"]
        counts = Counter(values(column))
        if len(counts) > 1:
            common = counts.most_common(1)[0][0]
            for value, row in zip(values(column), row_numbers(), strict=True):
                if value != common:
                    problem(
                        f"doit être identique sur toutes les lignes (valeur majoritaire : {display(common)})",
                        row,
                        label.get(column, column),
                        value,
                    )
    for rule in contract.rules_of("references"):
        target_column = rule.get("source_column", rule["column"])
        known = ctx.references(rule["source"], target_column)
        if known is None:
            problem(
                f"la source de référence « {rule['source']} » n'a pas encore de livraison acceptée "
                f"pour {ctx.campaign_year} : livrez-la d'abord",
                None,
                label.get(rule["column"], rule["column"]),
            )
            continue
        distinct = set(table.column(rule["column"]).unique().to_pylist())
        unknown = distinct - set(known) - {None}
        if not unknown:
            continue
        for value, row in zip(values(rule["column"]), row_numbers(), strict=True):
            if value in unknown:
                problem(
                    f"valeur inconnue de la source de référence « {rule['source']} »",
                    row,
                    label.get(rule["column"], rule["column"]),
                    value,
                )
    for _rule in contract.rules_of("covers_all_communes"):
        column = next(c.name for c in contract.columns if c.type == "commune")
        present = set(table.column(column).unique().to_pylist())
        missing = sorted(set(ctx.communes.names) - present)
        if missing and n:
            names = ", ".join(f"{ctx.communes.names[c]} ({c})" for c in missing[:10])
            more = f" et {len(missing) - 10} autres" if len(missing) > 10 else ""
            problem(
                f"{len(missing)} commune(s) membre(s) absente(s) : {names}{more}",
                None,
                label.get(column, column),
            )
    for rule in contract.rules_of("declared_indicator"):
        column = rule["column"]
        value_column = rule.get("value_column", "valeur")
        for indicator, amount, row in zip(
            values(column), values(value_column), row_numbers(), strict=True
        ):
            entry = ctx.catalogue.get(indicator)
            where = (row, label.get(column, column), indicator)
            if entry is None:
                problem("identifiant d'indicateur inconnu du catalogue", *where)
            elif entry.computation != "declared":
                problem(
                    "indicateur calculé à partir d'une source détaillée : il ne se déclare pas",
                    *where,
                )
            elif entry.department != ctx.department:
                problem(
                    f"indicateur de la direction « {entry.department} » : il se déclare dans son "
                    "propre dossier",
                    *where,
                )
            elif not entry.allow_negative and amount is not None and amount < 0:
                problem(
                    "valeur négative non autorisée pour cet indicateur",
                    row,
                    label.get(value_column, value_column),
                    amount,
                )


def _apply_privacy(contract: Contract, table: pa.Table, ctx: IngestContext) -> pa.Table:
    """Pseudonyms instead of identifiers, age in months instead of a birth date."""
    pseudonymised = [c for c in contract.columns if c.is_pseudonymised]
    aged = [c for c in contract.columns if c.age_reference]
    if pseudonymised and ctx.pseudonymise is None:
        raise RuntimeError("pseudonymisation requise mais aucune clé n'est configurée")
    for column in pseudonymised:
        memo: dict[str, str] = {}
        hidden = [
            None
            if value is None
            else memo.get(value) or memo.setdefault(value, ctx.pseudonymise(str(value)))
            for value in table.column(column.name).to_pylist()
        ]
        position = table.schema.get_field_index(column.name)
        table = table.set_column(position, column.name, pa.array(hidden, type=pa.string()))
    for column in aged:
        births = table.column(column.name).to_pylist()
        references = table.column(column.age_reference).to_pylist()
        ages = [
            _age_in_months(birth, at) if birth and at else None
            for birth, at in zip(births, references, strict=True)
        ]
        table = table.drop_columns([column.name]).append_column(
            pa.field("age_months", pa.int64()), pa.array(ages, type=pa.int64())
        )
    return table
