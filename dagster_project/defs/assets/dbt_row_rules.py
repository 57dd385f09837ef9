"""The generic dbt tests of each model, run in production as a few generated dbt tests.

Each data test is a dbt node, and dbt pays ≈ 45 ms a node whatever the volume (bench/README.md).
The models' .yml files declare ≈ 320 generic tests (``ROW_RULE_TESTS``): row-level ones (a value
in a range, in a list, a true expression, a non-null or non-empty cell) and set-level ones (a
unique value or combination of columns, a reference to another model, the catalogue's
breakdown). They stay there, they document the models and developers and CI run them as they
are. ``kpi generate`` writes, from dbt's parsed manifest, one singular test per model and
dependency set (below), ``dbt/tests/row_rules/row_rules_<model>.sql``, which calls the same test
macros with the same arguments on the same data (with the test's ``where``) and returns one row
per failing original test: ``rule`` (its dbt name) and ``failures`` (what the original test
would have counted, its ``fail_calc``). The production build (``DBT_BUILD_ARGS``) runs these and
excludes the fine-grained ones (``EXCLUDE_ROW_RULE_TESTS``).

What ``dbt build`` skips does not change. A failing (or erroring, or skipped) node skips every
node downstream of it in dbt's graph, and dbt links a test to the nodes downstream of *all* the
nodes it depends on (``Linker.add_test_edges``, dbt-core 1.11: ``depends_on``, never
``attached_node``, which a singular test does not even have). A test that also reads another
model (``relationships`` to ``communes``, the catalogue tests) therefore skips less downstream
than the model's other tests, and is itself skipped when that other model is. So tests are
grouped only when their dependencies are the same, once those that are ancestors of another
dependency are left out (``dependency_key``: such a dependency changes neither side): the
model's own tests in ``row_rules_<model>``, a relationship from ``stg_x`` to ``communes``,
which ``stg_x`` does not read, in ``row_rules_stg_x__communes``.

Only tests of the same severity are grouped (``…__warn`` for warnings); a test with other
thresholds (``warn_if``, ``error_if``), a ``limit`` or ``store_failures`` cannot be grouped
without changing what it judges: generation refuses it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster_project.settings import DBT_PROJECT_DIR

# generic tests judged on the rows of one model, each failing row counted
ROW_LEVEL_TESTS = (
    "accepted_range",
    "accepted_values",
    "expression_is_true",
    "not_empty_string",
    "not_null",
    "not_null_columns",
)
# generic tests judged on a set of rows (duplicates, a reference to another model, the
# catalogue's breakdown): their failing rows are counted the same way (``count(*)``)
SET_LEVEL_TESTS = (
    "complete_commune_breakdown",
    "matches_catalogue_breakdown",
    "relationships",
    "unique",
    "unique_combination_of_columns",
)
# every generic test the generated tests run (the name predates the set-level ones)
ROW_RULE_TESTS = ROW_LEVEL_TESTS + SET_LEVEL_TESTS
# what the production build leaves out (dbt's test_name method; one string: dagster-dbt
# splits a --exclude value on spaces and folds it into its generated selector when it makes one)
EXCLUDE_ROW_RULE_TESTS = " ".join(f"test_name:{name}" for name in ROW_RULE_TESTS)
ROW_RULES_DIR = DBT_PROJECT_DIR / "tests" / "row_rules"
PREFIX = "row_rules_"
TAG = "row_rules"
HEADER = "GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py)"
_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.S)
_MODEL_ARG = re.compile(r"^\{\{\s*get_where_subquery\((?P<relation>.+)\)\s*\}\}$", re.S)
# a test argument dbt renders as this call (dbt.clients.jinja.add_rendered_test_kwargs):
# ``to: ref('communes')`` is the relation, not the text
_FUNCTION = re.compile(r"^\s*(env_var|ref|var|source|doc)\s*\(.+\)\s*$")
# what a grouped test must keep as dbt's defaults for its verdict to stay the same
_DEFAULTS = {"warn_if": "!= 0", "error_if": "!= 0", "limit": None}


class RowRulesError(ValueError):
    """A test generation cannot group without changing what it judges."""


def test_name_of(node: Mapping[str, Any]) -> str | None:
    """The generic test a test node instantiates (``accepted_range``), None for a singular one."""
    return ((node.get("test_metadata") or {}).get("name")) or None


def is_row_rule(node: Mapping[str, Any]) -> bool:
    """A fine-grained generic test: replaced in production by a generated test.

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
    """The names of the fine-grained tests the manifest's generated tests run."""
    return {
        name.replace("''", "'")
        for unique_id, node in (manifest.get("nodes") or {}).items()
        if is_generated(unique_id)
        for name in _RULE.findall(node.get("raw_code") or "")
    }


def jinja_literal(value: Any, render: bool = True) -> str:
    """A test argument from the manifest as the Jinja expression of what dbt passes to the test
    macro (``render``: dbt renders it; not a test's ``column_name``)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if "{%" in value or "{#" in value or (not render and "{{" in value):
            raise RowRulesError(f"argument Jinja non regroupable : {value!r}")
        if not render:
            return json.dumps(value, ensure_ascii=False)
        if _FUNCTION.match(value):
            if "{{" in value or "}}" in value:
                raise RowRulesError(f"argument Jinja non regroupable : {value!r}")
            return f"({value.strip()})"
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
        return "[" + ", ".join(jinja_literal(v, render) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{jinja_literal(str(k), False)}: {jinja_literal(v, render)}"
                for k, v in value.items()
            )
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
    """One generated test: the tests of one model with the same dependencies and severity."""

    name: str
    relation: str  # Jinja: ref('stg_x') or source('raw', 'x')
    severity: str
    # the other models the tests read, beyond the model's own ancestors (names)
    reads: tuple[str, ...] = ()
    rules: list[Rule] = field(default_factory=list)

    def render(self) -> str:
        files = ", ".join(sorted({r.source_file for r in self.rules}))
        lines = ["{#", f"    {HEADER} : ne pas modifier à la main."]
        if len(self.rules) > 1:
            lines += [
                f"    Les {len(self.rules)} tests de {self.relation} déclarés dans {files},",
                "    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes "
                "arguments, mêmes données.",
            ]
        else:
            lines += [
                f"    Le test de {self.relation} déclaré dans {files},",
                "    en test singulier : même macro, mêmes arguments, mêmes données.",
            ]
        if self.reads:
            several = len(self.rules) > 1
            lines += [
                ("    Ils lisent" if several else "    Il lit")
                + " aussi "
                + ", ".join(self.reads)
                + " : à part des autres tests du modèle, pour que dbt build saute",
                "    en cas d'échec exactement ce que "
                + ("sautaient les tests d'origine" if several else "sautait le test d'origine")
                + " (mêmes dépendances).",
            ]
        lines += [
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
    for key in ("store_failures", "store_failures_as"):
        if config.get(key):
            raise RowRulesError(f"{node['unique_id']} : {key}")
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
    args = [f"model={model}"] + [
        # dbt renders every argument but the column's name (add_rendered_test_kwargs)
        f"{k}={jinja_literal(v, render=k != 'column_name')}"
        for k, v in sorted(kwargs.items())
    ]
    call = "{{ " + _macro(node) + "(" + ", ".join(args) + ") }}"
    rule = Rule(
        name=node["name"],
        unique_id=node["unique_id"],
        call=call,
        fail_calc=config.get("fail_calc") or "count(*)",
        source_file=node.get("original_file_path") or "?",
    )
    return relation, rule


def _name(unique_id: str, manifest: Mapping[str, Any]) -> str:
    """A model's, seed's or source's name (``communes``, ``raw_eau_reseau``)."""
    node = (manifest.get("nodes") or {}).get(unique_id)
    if node:
        return node["name"]
    source = (manifest.get("sources") or {}).get(unique_id)
    if source:
        return f"{source['source_name']}_{source['name']}"
    return unique_id.split(".")[-1]


def _tested(node: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    """The unique id of the model (seed, source) a test tests."""
    attached = node.get("attached_node")
    if attached:
        return attached
    for source_name, table in node.get("sources") or []:
        for dependency in _dependencies(node):
            if dependency.startswith("source.") and dependency.endswith(f".{source_name}.{table}"):
                return dependency
    raise RowRulesError(f"{node['unique_id']} : modèle testé introuvable")


def _dependencies(node: Mapping[str, Any]) -> list[str]:
    return list((node.get("depends_on") or {}).get("nodes") or [])


class Ancestry:
    """Each node's ancestors in dbt's graph (its models, seeds and sources, read from the
    manifest's ``parent_map``, or the nodes' ``depends_on`` without it)."""

    def __init__(self, manifest: Mapping[str, Any]):
        parents = manifest.get("parent_map")
        if not parents:
            parents = {
                unique_id: _dependencies(node)
                for unique_id, node in (manifest.get("nodes") or {}).items()
            }
        self._parents: Mapping[str, list[str]] = parents
        self._ancestors: dict[str, frozenset[str]] = {}

    def of(self, unique_id: str) -> frozenset[str]:
        known = self._ancestors.get(unique_id)
        if known is None:
            found: set[str] = set()
            for parent in self._parents.get(unique_id) or []:
                found.add(parent)
                found |= self.of(parent)
            known = self._ancestors[unique_id] = frozenset(found)
        return known


def dependency_key(node: Mapping[str, Any], ancestry: Ancestry) -> frozenset[str]:
    """What decides, in ``dbt build``, what a test skips when it fails (the nodes downstream of
    all its dependencies) and what skips it (its dependencies and their ancestors): its
    dependencies but those that are ancestors of another (``stg_x``'s own seeds), which change
    neither."""
    dependencies = set(_dependencies(node))
    return frozenset(
        dependency
        for dependency in dependencies
        if not any(dependency in ancestry.of(other) for other in dependencies - {dependency})
    )


def groups(manifest: Mapping[str, Any]) -> dict[str, Group]:
    """{file stem: group} of the manifest's fine-grained generic tests, one group per model,
    dependencies (``dependency_key``) and severity."""
    found: dict[str, Group] = {}
    keys: dict[str, tuple[str, frozenset[str], str]] = {}
    ancestry = Ancestry(manifest)
    for unique_id, node in sorted((manifest.get("nodes") or {}).items()):
        if not is_row_rule(node):
            continue
        relation, rule = _rule(node)
        severity = str((node.get("config") or {}).get("severity") or "ERROR").lower()
        tested = _tested(node, manifest)
        dependencies = dependency_key(node, ancestry) or frozenset({tested})
        reads = tuple(sorted(_name(d, manifest) for d in dependencies - {tested}))
        stem = (
            PREFIX
            + _name(tested, manifest)
            + "".join(f"__{name}" for name in reads)
            + ("" if severity == "error" else "__warn")
        )
        key = (tested, dependencies, severity)
        if keys.setdefault(stem, key) != key:
            raise RowRulesError(f"{unique_id} : deux groupes de tests nommés {stem}")
        group = found.setdefault(stem, Group(stem, relation, severity, reads))
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
