"""Expectation suites as data, generated from the contracts and from ``expectations/marts.yml``.

``sync_suites()`` writes one Great Expectations suite per source contract (``raw_<source_id>``)
and one per entry of ``expectations/marts.yml`` into the GX file project
``expectations/gx/expectations/<suite>.json``. The files are deterministic (stable ids, sorted
keys), so a second run changes nothing and ``git diff`` shows exactly what a contract change
did to the checks. Adding a source is adding its contract: its suite follows.

Everything a runner needs besides the expectations travels in the suite's ``meta``:
``blocking`` (a failure refuses the freeze), ``severity``, ``asset`` (Dagster asset key),
``dataset`` (which DataFrame the suite validates), ``sensitivity`` (``personal`` = no value ever
appears in a message) and ``example_fr`` (how a failing row is named in French messages).

GX itself is imported only inside the functions that need it (3 s import).
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dagster_project.contracts.model import YAML_LOADER, Column, Contract, default_contracts
from dagster_project.settings import EXPECTATIONS_DIR, PROJECT_ROOT

MARTS_YML = EXPECTATIONS_DIR / "marts.yml"
_parsed_marts: dict[tuple[str, int, int], dict] = {}
GENERATOR = "dagster_project.quality.suites"
RAW_PREFIX = "raw_"
# Stable namespace for suite and expectation ids: same suite, same ids, no diff.
_ID_NAMESPACE = uuid.UUID("5f0c1f7e-7a43-4c55-9d55-6b8f0e6f3a10")

LINEAGE_COLUMNS = ("_delivery_id", "_file_sha256", "_sheet", "_row_number", "_campaign_year")
# Grain and unique keys hold within one campaign year (raw tables keep every year in force).
YEAR_COLUMN = "_campaign_year"
PSEUDONYM_REGEX = r"^[0-9a-f]{16}$"
INSEE_REGEX = r"^[0-9][0-9AB][0-9]{3}$"


def gx_dir(project_dir: Path | None = None) -> Path:
    return Path(project_dir or EXPECTATIONS_DIR) / "gx"


def suites_dir(project_dir: Path | None = None) -> Path:
    return gx_dir(project_dir) / "expectations"


# --------------------------------------------------------------------------------------------
# Raw suites, from the contracts
# --------------------------------------------------------------------------------------------


def raw_suite_name(source_id: str) -> str:
    return f"{RAW_PREFIX}{source_id}"


def _expectation(kind: str, description_fr: str, blocking: bool, **kwargs: Any) -> dict:
    return {
        "type": kind,
        "kwargs": {k: v for k, v in kwargs.items() if v is not None},
        "meta": {"description_fr": description_fr, "blocking": blocking},
    }


def _number(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else float(value)


def _bounds_text(low: Any, high: Any, strict_low: bool, strict_high: bool) -> str:
    left = "]" if strict_low or low is None else "["
    right = "[" if strict_high or high is None else "]"
    low_text = "-∞" if low is None else str(low)
    high_text = "+∞" if high is None else str(high)
    return f"{left}{low_text} ; {high_text}{right}"


def _column_expectations(column: Column, blocking: bool) -> list[dict]:
    name = column.stored_name
    if name is None:
        return []
    out = [
        _expectation(
            "expect_column_to_exist", f"La colonne « {name} » existe.", blocking, column=name
        )
    ]
    if column.required or column.default is not None:
        why = "obligatoire" if column.required else f"vide = {column.default}"
        out.append(
            _expectation(
                "expect_column_values_to_not_be_null",
                f"« {name} » est renseignée sur toutes les lignes ({why}).",
                blocking,
                column=name,
            )
        )
    if column.allowed:
        out.append(
            _expectation(
                "expect_column_values_to_be_in_set",
                f"« {name} » prend une des valeurs de la liste : {', '.join(column.allowed)}.",
                blocking,
                column=name,
                value_set=list(column.allowed),
            )
        )
    if column.age_reference:
        low = None if column.age_years_min is None else _number(column.age_years_min * 12)
        high = None if column.age_years_max is None else _number(column.age_years_max * 12)
        if low is not None or high is not None:
            out.append(
                _expectation(
                    "expect_column_values_to_be_between",
                    f"« {name} » (âge en mois) est dans {_bounds_text(low, high, False, False)}"
                    f" ({column.age_years_min}–{column.age_years_max} ans).",
                    blocking,
                    column=name,
                    min_value=low,
                    max_value=high,
                )
            )
    elif column.type in ("integer", "number"):
        low, strict_low = _number(column.lower_bound), False
        if low is None and column.min_exclusive is not None:
            low, strict_low = _number(column.min_exclusive), True
        high, strict_high = _number(column.max), False
        if high is None and column.max_exclusive is not None:
            high, strict_high = _number(column.max_exclusive), True
        if low is not None or high is not None:
            out.append(
                _expectation(
                    "expect_column_values_to_be_between",
                    f"« {name} » est dans {_bounds_text(low, high, strict_low, strict_high)}.",
                    blocking,
                    column=name,
                    min_value=low,
                    max_value=high,
                    strict_min=True if strict_low else None,
                    strict_max=True if strict_high else None,
                )
            )
    if column.is_pseudonymised:
        out.append(
            _expectation(
                "expect_column_values_to_match_regex",
                f"« {name} » ne contient que des pseudonymes (16 caractères hexadécimaux), "
                "jamais une valeur en clair.",
                blocking,
                column=name,
                regex=PSEUDONYM_REGEX,
            )
        )
    if column.type == "commune":
        out.append(
            _expectation(
                "expect_column_values_to_match_regex",
                f"« {name} » est un code INSEE à 5 caractères.",
                blocking,
                column=name,
                regex=INSEE_REGEX,
            )
        )
    return out


def _stored(contract: Contract, name: str) -> str:
    return contract.column(name).stored_name or name


def raw_suite(contract: Contract) -> dict:
    """The suite of one source, as a GX suite dict (not yet normalised by GX)."""
    blocking = True
    expectations: list[dict] = []
    for column in contract.columns:
        expectations += _column_expectations(column, blocking)
    for lineage in ("_delivery_id", "_row_number", YEAR_COLUMN):
        expectations.append(
            _expectation(
                "expect_column_values_to_not_be_null",
                f"La colonne de traçabilité « {lineage} » est renseignée.",
                blocking,
                column=lineage,
            )
        )
    keys: list[tuple[str, ...]] = []
    if contract.grain:
        keys.append(tuple(_stored(contract, g) for g in contract.grain))
    for column in contract.columns:
        if column.unique and column.stored_name and (column.stored_name,) not in keys:
            keys.append((column.stored_name,))
    for key in keys:
        label = "grain" if key == keys[0] and contract.grain else "valeur unique"
        expectations.append(
            _expectation(
                "expect_compound_columns_to_be_unique",
                f"Pas de doublon ({label}) sur ({', '.join(key)}) dans une même année de "
                "campagne, livraisons en vigueur.",
                blocking,
                column_list=[*key, YEAR_COLUMN],
            )
        )
    for rule in contract.rules_of("column_le"):
        expectations.append(
            _expectation(
                "expect_column_pair_values_a_to_be_greater_than_b",
                f"« {rule['column']} » ≤ « {rule['other']} » sur chaque ligne.",
                blocking,
                column_A=rule["other"],
                column_B=rule["column"],
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            )
        )
    for rule in contract.rules_of("required_unless"):
        values = ", ".join(json.dumps(str(v), ensure_ascii=False) for v in rule["values"])
        expectations.append(
            _expectation(
                "expect_column_values_to_not_be_null",
                f"« {rule['column']} » est renseignée sauf si « {rule['other']} » vaut "
                f"{', '.join(str(v) for v in rule['values'])}.",
                blocking,
                column=rule["column"],
                row_condition=f"{rule['other']} not in [{values}]",
                condition_parser="pandas",
            )
        )
    personal = contract.sensitivity == "personal"
    path = contract.path or PROJECT_ROOT / "sources" / "contracts" / f"{contract.source_id}.yml"
    try:
        generated_from = str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        generated_from = Path(path).name
    return {
        "name": raw_suite_name(contract.source_id),
        "expectations": expectations,
        "meta": {
            "blocking": blocking,
            "severity": "ERROR" if blocking else "WARN",
            "asset": [contract.raw_schema, contract.source_id],
            "table": contract.raw_table,
            "dataset": {"kind": "raw_in_force", "table": contract.raw_table},
            "sensitivity": contract.sensitivity,
            "example_fr": None if personal else "{_file_name}, ligne {_row_number}",
            "description_fr": (
                f"{contract.title_fr} : contrôle des lignes des livraisons en vigueur "
                f"de {contract.raw_table} selon le contrat."
            ),
            "generated_from": generated_from,
            "generated_by": GENERATOR,
        },
    }


# --------------------------------------------------------------------------------------------
# Mart suites, from expectations/marts.yml
# --------------------------------------------------------------------------------------------


def expectation_ids(suite: dict) -> list[str] | None:
    """The ids of the suite's expectations, in order; None when one has none or two share one
    (a result cannot then be matched to its expectation by id)."""
    ids = [e.get("id") for e in suite.get("expectations") or []]
    return ids if all(ids) and len(set(ids)) == len(ids) else None


def load_marts_yml(path: Path | None = None) -> dict:
    """expectations/marts.yml (or ``path``) parsed, a copy of its own to each caller. Read again
    only when the file changes (its size or modification time): a run reads it half a dozen
    times (its checks' definitions, the check steps, the summary, the atypical values), 5 ms
    each with PyYAML's Python parser."""
    path = Path(path or MARTS_YML)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    parsed = _parsed_marts.get(key)
    if parsed is None:
        with path.open(encoding="utf-8") as handle:
            parsed = yaml.load(handle, Loader=YAML_LOADER) or {}
        _parsed_marts.clear()  # one file in use at a time: only its latest version is kept
        _parsed_marts[key] = parsed
    return copy.deepcopy(parsed)


def mart_suites_from_yml(data: dict) -> list[dict]:
    suites = []
    for name, spec in (data.get("suites") or {}).items():
        blocking = bool(spec.get("blocking", True))
        expectations = []
        for column in spec.get("columns") or []:
            expectations.append(
                _expectation(
                    "expect_column_to_exist",
                    f"La colonne « {column} » existe.",
                    blocking,
                    column=column,
                )
            )
        for item in spec.get("expectations") or []:
            unknown = set(item) - {"type", "kwargs", "description_fr"}
            if unknown or "type" not in item:
                raise ValueError(f"marts.yml, suite {name} : clés inconnues {sorted(unknown)}")
            expectations.append(
                _expectation(
                    item["type"],
                    item.get("description_fr", item["type"]),
                    blocking,
                    **(item.get("kwargs") or {}),
                )
            )
        dataset = dict(spec["dataset"])
        suites.append(
            {
                "name": name,
                "expectations": expectations,
                "meta": {
                    "blocking": blocking,
                    "severity": "ERROR" if blocking else "WARN",
                    "asset": list(spec["asset"]),
                    "table": dataset.get("table"),
                    "dataset": dataset,
                    "sensitivity": spec.get("sensitivity", "public"),
                    "example_fr": spec.get("example_fr"),
                    "description_fr": " ".join(str(spec.get("description_fr", "")).split()),
                    "generated_from": "expectations/marts.yml",
                    "generated_by": GENERATOR,
                },
            }
        )
    return suites


# --------------------------------------------------------------------------------------------
# Normalisation through GX, and the sync with the file project
# --------------------------------------------------------------------------------------------


def _normalise(suite: dict) -> dict:
    """The suite as GX writes it (its own defaults and shapes), with stable ids."""
    import great_expectations as gx

    name = suite["name"]
    expectations = []
    for index, expectation in enumerate(suite["expectations"]):
        expectations.append(
            {**expectation, "id": str(uuid.uuid5(_ID_NAMESPACE, f"{name}/{index}"))}
        )
    gx_suite = gx.ExpectationSuite(
        name=name,
        expectations=expectations,
        meta=suite["meta"],
        id=str(uuid.uuid5(_ID_NAMESPACE, name)),
    )
    # A JSON round trip gives plain lists and dicts, as read back from disk.
    return json.loads(json.dumps(gx_suite.to_json_dict()))


def desired_suites(
    contracts: dict[str, Contract] | None = None, marts_yml: Path | None = None
) -> dict[str, dict]:
    """Every suite the project should hold, by name, in GX's normalised form."""
    contracts = default_contracts() if contracts is None else contracts
    suites = [raw_suite(c) for c in contracts.values()]
    suites += mart_suites_from_yml(load_marts_yml(marts_yml))
    out: dict[str, dict] = {}
    for suite in suites:
        if suite["name"] in out:
            raise ValueError(f"suite en double : {suite['name']}")
        out[suite["name"]] = _normalise(suite)
    return out


def render(suite: dict) -> str:
    return json.dumps(suite, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass
class SyncReport:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def ensure_project(project_dir: Path | None = None) -> Path:
    """Create the GX file project (``<project_dir>/gx``) once; analytics and progress bars off."""
    import great_expectations as gx

    root = Path(project_dir or EXPECTATIONS_DIR)
    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(root))
    if context.variables.analytics_enabled is not False or context.variables.progress_bars != {
        "globally": False
    }:
        context.variables.analytics_enabled = False
        context.variables.progress_bars = {"globally": False}
        context.variables.save()
    return gx_dir(root)


def _managed(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (data.get("meta") or {}).get("generated_by") == GENERATOR


def sync_suites(
    project_dir: Path | None = None,
    contracts: dict[str, Contract] | None = None,
    marts_yml: Path | None = None,
    check: bool = False,
) -> SyncReport:
    """Write the generated suites into the GX file project; remove the ones no longer generated.

    With ``check=True`` nothing is written: the report lists what a sync would change
    (empty = the files on disk are in sync with the contracts and marts.yml).
    """
    report = SyncReport()
    folder = suites_dir(project_dir)
    if not check:
        ensure_project(project_dir)
        folder.mkdir(parents=True, exist_ok=True)
    desired = desired_suites(contracts, marts_yml)
    for name, suite in sorted(desired.items()):
        path = folder / f"{name}.json"
        text = render(suite)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            report.unchanged.append(name)
            continue
        report.written.append(name)
        if not check:
            path.write_text(text, encoding="utf-8")
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            if path.stem not in desired and _managed(path):
                report.removed.append(path.stem)
                if not check:
                    path.unlink()
    return report


def load_suite(name: str, project_dir: Path | None = None) -> dict:
    """A suite from the GX project; generated on the fly when its file is missing."""
    path = suites_dir(project_dir) / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    desired = desired_suites()
    if name not in desired:
        raise KeyError(f"suite inconnue : {name}")
    return desired[name]


def suites_for_raw(source_id: str, contracts: dict[str, Contract] | None = None) -> list[str]:
    """Suites that check the raw table of a source (one, generated from its contract)."""
    contracts = default_contracts() if contracts is None else contracts
    return [raw_suite_name(source_id)] if source_id in contracts else []


def mart_suites(marts_yml: Path | None = None) -> list[str]:
    """Suites of expectations/marts.yml, in file order."""
    return list((load_marts_yml(marts_yml).get("suites") or {}).keys())


def check_specs(
    contracts: dict[str, Contract] | None = None, marts_yml: Path | None = None
) -> list[dict]:
    """Name and meta of every suite, without GX (for building Dagster checks quickly)."""
    contracts = default_contracts() if contracts is None else contracts
    suites = [raw_suite(c) for c in contracts.values()]
    suites += mart_suites_from_yml(load_marts_yml(marts_yml))
    return [{"name": s["name"], **s["meta"]} for s in suites]
