"""The row-level dbt tests of each model, run in production as one dbt test per model.

Each data test is a dbt node, and dbt pays ≈ 45 ms a node whatever the volume (bench/README.md).
The models' .yml files declare ~190 row-level generic tests (``ROW_RULE_TESTS``: a value in a
range, in a list, a true expression, a non-null or non-empty cell): they stay there, they
document the models and developers and CI run them as they are. ``kpi generate`` writes, from
dbt's parsed manifest, one singular test per model, ``dbt/tests/row_rules/row_rules_<model>.sql``,
which calls the same test macros with the same arguments on the same data (with the test's
``where``) and returns one row per failing original test: ``rule`` (its dbt name) and
``failures`` (what the original test would have counted). The production build
(``DBT_BUILD_ARGS``) runs these and excludes the fine-grained ones (``EXCLUDE_ROW_RULE_TESTS``):
≈ 145 fewer nodes.

Only tests of the same severity are grouped (``row_rules_<model>__warn`` for warnings); a
row-level test with other thresholds (``warn_if``, ``error_if``), a ``limit`` or
``store_failures`` cannot be grouped without changing what it judges: generation refuses it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster_project.settings import DBT_PROJECT_DIR

# generic tests judged row by row on one model: grouped. Uniqueness, relationships and the
# project's cross-model tests (catalogue breakdown, commune completeness) stay one node each.
ROW_RULE_TESTS = (
    "accepted_range",
    "accepted_values",
    "expression_is_true",
    "not_empty_string",
    "not_null",
    "not_null_columns",
)
# what the production build leaves out (dbt's test_name method; one string: dagster-dbt
# splits a --exclude value on spaces and folds it into its generated selector when it makes one)
EXCLUDE_ROW_RULE_TESTS = " ".join(f"test_name:{name}" for name in ROW_RULE_TESTS)
ROW_RULES_DIR = DBT_PROJECT_DIR / "tests" / "row_rules"
PREFIX = "row_rules_"
TAG = "row_rules"
HEADER = "GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py)"
_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.S)
_MODEL_ARG = re.compile(r"^\{\{\s*get_where_subquery\((?P<relation>.+)\)\s*\}\}$", re.S)
# what a grouped test must keep as dbt's defaults for its verdict to stay the same
_DEFAULTS = {"warn_if": "!= 0", "error_if": "!= 0", "limit": None}


class RowRulesError(ValueError):
    """A row-level test generation cannot group without changing what it judges."""


def test_name_of(node: Mapping[str, Any]) -> str | None:
    """The generic test a test node instantiates (``accepted_range``), None for a singular one."""
    return ((node.get("test_metadata") or {}).get("name")) or None


def is_row_rule(node: Mapping[str, Any]) -> bool:
    """A fine-grained row-level test: replaced in production by its model's generated test.

    Matches what ``--exclude test_name:<name>`` leaves out (any namespace)."""
    return (
        node.get("resource_type") == "test"
        and test_name_of(node) in ROW_RULE_TESTS
        and (node.get("config") or {}).get("enabled", True)
    )


def rule_name(unique_id: str) -> str:
    """``test.kpi_warehouse.<name>.<hash>`` -> ``<name>``."""
    parts = unique_id.split(".")
    return parts[2] if len(parts) >= 3 else unique_id


def is_generated(unique_id: str) -> bool:
    """A generated row-rules test (``test.kpi_warehouse.row_rules_<model>``)."""
    return unique_id.startswith("test.") and rule_name(unique_id).startswith(PREFIX)


_RULE = re.compile(r"select '((?:[^']|'')+)' as rule")


def covered_rules(manifest: Mapping[str, Any]) -> set[str]:
    """The names of the row-level tests the manifest's generated tests run."""
    return {
        name.replace("''", "'")
        for unique_id, node in (manifest.get("nodes") or {}).items()
        if is_generated(unique_id)
        for name in _RULE.findall(node.get("raw_code") or "")
    }


def jinja_literal(value: Any) -> str:
    """A Python value from the manifest as a Jinja literal (what the .yml said)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if "{%" in value or "{#" in value:
            raise RowRulesError(f"argument Jinja non regroupable : {value!r}")
        # dbt renders a test argument's {{ … }} (``{{ ref('communes') }}`` in an expression):
        # the same expression, concatenated
        parts = _EXPRESSION.split(value)
        if "{{" in parts[-1] or any("{{" in p or "}}" in p for p in parts[::2]):
            raise RowRulesError(f"argument Jinja non regroupable : {value!r}")
        pieces = [
            f"({part.strip()})" if index % 2 else json.dumps(part, ensure_ascii=False)
            for index, part in enumerate(parts)
            if index % 2 or part
        ]
        return " ~ ".join(pieces) if len(pieces) > 1 else (pieces or ['""'])[0]
    if isinstance(value, list | tuple):
        return "[" + ", ".join(jinja_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{jinja_literal(str(k))}: {jinja_literal(v)}" for k, v in value.items())
            + "}"
        )
    raise RowRulesError(f"argument de type {type(value).__name__} non regroupable : {value!r}")


@dataclass
class Rule:
    name: str  # the original test's dbt name
    unique_id: str
    call: str  # the Jinja call of its test macro
    fail_calc: str
    source_file: str


@dataclass
class Group:
    """One generated test: the row-level tests of one model and one severity."""

    name: str
    relation: str  # Jinja: ref('stg_x') or source('raw', 'x')
    severity: str
    rules: list[Rule] = field(default_factory=list)

    def render(self) -> str:
        files = sorted({r.source_file for r in self.rules})
        lines = [
            "{#",
            f"    {HEADER} : ne pas modifier à la main.",
            f"    Les {len(self.rules)} test(s) de ligne de {self.relation} déclarés dans "
            + ", ".join(files)
            + ",",
            "    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes "
            "arguments, mêmes données.",
            "    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce "
            "qu'il aurait compté).",
            "    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests "
            "d'origine.",
            "#}",
            "select rule, failures",
            "from (",
        ]
        for index, rule in enumerate(self.rules):
            if index:
                lines.append("    union all")
            lines += [
                f"    select '{_sql_string(rule.name)}' as rule, cast({rule.fail_calc} as bigint) "
                "as failures",
                "    from (",
                f"        {rule.call}",
                "    ) as rule_rows",
            ]
        lines += [
            ") as row_rules",
            "where failures <> 0",
            # last: a test macro may call config() itself (not_null_columns sets its fail_calc)
            "{{ config(tags=['" + TAG + "'], severity='" + self.severity + "', "
            "fail_calc='coalesce(sum(failures), 0)') }}",
            "",
        ]
        return "\n".join(lines)


def _sql_string(text: str) -> str:
    return text.replace("'", "''")


def _macro(node: Mapping[str, Any]) -> str:
    metadata = node["test_metadata"]
    namespace = metadata.get("namespace")
    return f"{namespace + '.' if namespace else ''}test_{metadata['name']}"


def _rule(node: Mapping[str, Any]) -> tuple[str, Rule]:
    config = node.get("config") or {}
    for key, default in _DEFAULTS.items():
        if config.get(key, default) != default:
            raise RowRulesError(f"{node['unique_id']} : {key} = {config.get(key)!r}")
    if config.get("store_failures"):
        raise RowRulesError(f"{node['unique_id']} : store_failures")
    kwargs = dict(node["test_metadata"].get("kwargs") or {})
    match = _MODEL_ARG.match(str(kwargs.pop("model", "")))
    if not match:
        raise RowRulesError(f"{node['unique_id']} : modèle testé illisible")
    relation = match["relation"].strip()
    model = relation
    if config.get("where"):
        # dbt's get_where_subquery, as the original test's compiled SQL has it
        model = (
            f'"(select * from " ~ {relation} ~ " where " ~ {jinja_literal(config["where"])} '
            '~ ") dbt_subquery"'
        )
    args = [f"model={model}"] + [f"{k}={jinja_literal(v)}" for k, v in sorted(kwargs.items())]
    call = "{{ " + _macro(node) + "(" + ", ".join(args) + ") }}"
    rule = Rule(
        name=node["name"],
        unique_id=node["unique_id"],
        call=call,
        fail_calc=config.get("fail_calc") or "count(*)",
        source_file=node.get("original_file_path") or "?",
    )
    return relation, rule


def _file_stem(node: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    attached = node.get("attached_node")
    if attached:
        return manifest["nodes"][attached]["name"]
    sources = node.get("sources") or []
    if sources:
        return "_".join(sources[0])
    raise RowRulesError(f"{node['unique_id']} : modèle testé introuvable")


def groups(manifest: Mapping[str, Any]) -> dict[str, Group]:
    """{file stem: group} of the manifest's row-level tests, one group per model and severity."""
    found: dict[str, Group] = {}
    for unique_id, node in sorted((manifest.get("nodes") or {}).items()):
        if not is_row_rule(node):
            continue
        relation, rule = _rule(node)
        severity = str((node.get("config") or {}).get("severity") or "ERROR").lower()
        stem = PREFIX + _file_stem(node, manifest) + ("" if severity == "error" else "__warn")
        group = found.setdefault(stem, Group(stem, relation, severity))
        if group.relation != relation:
            raise RowRulesError(f"{unique_id} : {relation} et {group.relation} dans {stem}")
        group.rules.append(rule)
    for group in found.values():
        group.rules.sort(key=lambda r: r.name)
    return dict(sorted(found.items()))


def render_all(manifest: Mapping[str, Any]) -> dict[str, str]:
    """{file name: text} of every generated test."""
    return {f"{stem}.sql": group.render() for stem, group in groups(manifest).items()}


def _generated_here(path: Path) -> bool:
    try:
        return HEADER in path.read_text(encoding="utf-8")[:400]
    except OSError:
        return False


def sync_row_rules(
    manifest: Mapping[str, Any], check: bool = False, folder: Path | None = None
) -> list[str]:
    """Write the generated tests of the parsed ``manifest`` (nothing with ``check``); the
    names of those that were (or are) stale, ``… (à retirer)`` for a file no test needs any
    more."""
    folder = folder or ROW_RULES_DIR
    wanted = render_all(manifest)
    stale = []
    for name, text in wanted.items():
        path = folder / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not check:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if folder.is_dir():
        for path in sorted(folder.glob("*.sql")):
            if path.name not in wanted and _generated_here(path):
                stale.append(f"{path.name} (à retirer)")
                if not check:
                    path.unlink()
    return stale


def failing_rules(con, compiled_sql: str) -> list[tuple[str, int]]:
    """(rule, failures) of a generated test, by running its compiled SQL again."""
    return [
        (str(rule), int(failures or 0))
        for rule, failures in con.execute(
            f"select rule, failures from ({compiled_sql}) as row_rules order by rule"
        ).fetchall()
    ]
