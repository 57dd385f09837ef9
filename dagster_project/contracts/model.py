"""Source contracts: the machine-readable collection kit (``sources/contracts/*.yml``).

The format is documented in ``docs/contracts.md``. Everything that depends on a source's
shape (ingestion, templates, expectations, dbt sources) is derived from these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

from dagster_project.settings import CONTRACTS_DIR

COLUMN_TYPES = ("text", "integer", "number", "date", "month", "commune", "yes_no")
RULE_KINDS = (
    "references",
    "covers_all_communes",
    "column_le",
    "constant",
    "required_unless",
    "declared_indicator",
)
COLUMN_KEYS = {
    "name",
    "type",
    "required",
    "default",
    "description_fr",
    "unit",
    "min",
    "max",
    "min_exclusive",
    "max_exclusive",
    "allow_negative",
    "step",
    "allowed",
    "unique",
    "date_range",
    "not_after",
    "privacy",
    "age_years_min",
    "age_years_max",
}
DUCKDB_TYPES = {
    "text": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "date": "DATE",
    "month": "DATE",
    "commune": "VARCHAR",
    "yes_no": "BOOLEAN",
}
TYPE_LABELS_FR = {
    "text": "texte",
    "integer": "nombre entier",
    "number": "nombre",
    "date": "date (JJ/MM/AAAA)",
    "month": "mois (AAAA-MM ou « janvier 2025 »)",
    "commune": "commune (code INSEE ou nom)",
    "yes_no": "oui / non",
}
ANY_DEPARTMENT = "any"
# the units a contract column may declare (``unit``), each with how it may be written after a
# number in a cell: a number followed by its column's own unit is read (``12 500 t`` in a
# column in tonnes); any other unit is refused, never converted (``12 500 kg`` there), and a
# column without ``unit`` takes no unit at all (docs/contracts.md)
CELL_UNITS: dict[str, tuple[str, ...]] = {
    "eur": ("€", "eur", "euro", "euros"),
    "t": ("t", "tonne", "tonnes"),
    "m3": ("m3", "m³"),
    "km": ("km",),
    "jours": ("j", "jour", "jours"),
}


class ContractError(ValueError):
    """A contract file that does not follow docs/contracts.md."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = True
    default: Any = None
    description_fr: str = ""
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    min_exclusive: float | None = None
    max_exclusive: float | None = None
    allow_negative: bool = False
    step: float | None = None
    allowed: tuple[str, ...] | None = None
    unique: bool = False
    date_range: Any = None
    not_after: str | None = None
    privacy: Any = None
    age_years_min: float | None = None
    age_years_max: float | None = None

    @cached_property
    def header_names(self) -> tuple[str, ...]:
        """Kit headers that fill this column (a commune is given by code or by name)."""
        if self.type == "commune":
            return ("code_insee", "commune")
        return (self.name,)

    @cached_property
    def is_pseudonymised(self) -> bool:
        return self.privacy == "pseudonymise"

    @cached_property
    def age_reference(self) -> str | None:
        if isinstance(self.privacy, dict):
            return self.privacy.get("age_months_at")
        return None

    @cached_property
    def stored_name(self) -> str | None:
        """Name of the warehouse column; None when the value never reaches the warehouse."""
        if self.age_reference:
            return "age_months"
        return self.name

    @cached_property
    def stored_type(self) -> str:
        if self.age_reference:
            return "BIGINT"
        return DUCKDB_TYPES[self.type]

    @cached_property
    def cell_units(self) -> tuple[str, ...]:
        """How the column's unit may follow a number in a cell (lower case); () without unit."""
        return CELL_UNITS.get(self.unit, ()) if self.unit else ()

    @cached_property
    def effective_date_range(self) -> Any:
        if self.type not in ("date", "month"):
            return None
        return self.date_range if self.date_range is not None else "campaign_year"

    @cached_property
    def allowed_lookup(self) -> dict[str, str] | None:
        """Accepted values by their case-folded spelling (enumerations match any case)."""
        if self.allowed is None:
            return None
        return {value.casefold(): value for value in self.allowed}

    @cached_property
    def lower_bound(self) -> float | None:
        if self.type not in ("integer", "number"):
            return None
        if self.min is not None:
            return self.min
        if self.min_exclusive is None and not self.allow_negative:
            return 0.0
        return None


@dataclass(frozen=True)
class Rule:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)


@dataclass(frozen=True)
class Contract:
    source_id: str
    department: str
    direction_fr: str
    title_fr: str
    description_fr: str
    grain: tuple[str, ...]
    columns: tuple[Column, ...]
    rules: tuple[Rule, ...] = ()
    sensitivity: str = "public"
    path: Path | None = None

    @property
    def raw_schema(self) -> str:
        return "raw_restricted" if self.sensitivity == "personal" else "raw"

    @property
    def raw_table(self) -> str:
        return f"{self.raw_schema}.{self.source_id}"

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def stored_columns(self) -> list[tuple[str, str]]:
        """(name, DuckDB type) of the warehouse columns, in contract order."""
        return [(c.stored_name, c.stored_type) for c in self.columns if c.stored_name]

    def rules_of(self, kind: str) -> list[Rule]:
        return self._rules_by_kind.get(kind, [])

    @cached_property
    def _rules_by_kind(self) -> dict[str, list[Rule]]:
        by_kind: dict[str, list[Rule]] = {}
        for rule in self.rules:
            by_kind.setdefault(rule.kind, []).append(rule)
        return by_kind

    @cached_property
    def referenced_sources(self) -> frozenset[str]:
        """The sources whose in-force values this one's ``references`` rules check against
        (ingested before it)."""
        return frozenset(rule["source"] for rule in self.rules_of("references"))

    @cached_property
    def row_rule_columns(self) -> list[Column]:
        """Columns with a rule across the row (not_after, age bounds)."""
        return [c for c in self.columns if c.not_after or c.age_reference]

    def accepts_department(self, department: str) -> bool:
        return self.department in (ANY_DEPARTMENT, department)


def _column(raw: dict[str, Any], where: str) -> Column:
    unknown = set(raw) - COLUMN_KEYS
    if unknown:
        raise ContractError(f"{where}: clés inconnues {sorted(unknown)}")
    if raw.get("type") not in COLUMN_TYPES:
        raise ContractError(f"{where}: type inconnu {raw.get('type')!r}")
    if raw.get("unit") is not None and raw["unit"] not in CELL_UNITS:
        raise ContractError(
            f"{where}: unité inconnue {raw['unit']!r} (connues : {', '.join(CELL_UNITS)})"
        )
    if raw.get("unit") is not None and raw.get("type") not in ("integer", "number"):
        raise ContractError(f"{where}: une unité ne s'applique qu'à une colonne numérique")
    values = dict(raw)
    if values.get("allowed") is not None:
        values["allowed"] = tuple(str(v) for v in values["allowed"])
    return Column(**values)


def parse_contract(data: dict[str, Any], path: Path | None = None) -> Contract:
    where = str(path or data.get("source_id"))
    try:
        columns = tuple(_column(c, f"{where}, colonne {c.get('name')}") for c in data["columns"])
        rules = []
        for raw_rule in data.get("rules") or []:
            params = dict(raw_rule)
            kind = params.pop("kind")
            if kind not in RULE_KINDS:
                raise ContractError(f"{where}: règle inconnue {kind!r}")
            rules.append(Rule(kind, params))
        contract = Contract(
            source_id=data["source_id"],
            department=data["department"],
            direction_fr=data.get("direction_fr", ""),
            title_fr=data.get("title_fr", data["source_id"]),
            description_fr=(data.get("description_fr") or "").strip(),
            grain=tuple(data.get("grain") or ()),
            columns=columns,
            rules=tuple(rules),
            sensitivity=data.get("sensitivity", "public"),
            path=path,
        )
    except KeyError as exc:
        raise ContractError(f"{where}: clé obligatoire manquante {exc}") from exc
    names = {c.name for c in contract.columns}
    missing = [g for g in contract.grain if g not in names]
    if missing:
        raise ContractError(f"{where}: grain sur des colonnes absentes {missing}")
    return contract


# libyaml's safe loader when PyYAML was built with it (5 to 10 times faster), else PyYAML's
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_contracts(directory: Path = CONTRACTS_DIR) -> dict[str, Contract]:
    """Every contract of the directory, by source id."""
    contracts: dict[str, Contract] = {}
    for path in sorted(Path(directory).glob("*.yml")):
        contract = parse_contract(
            yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER), path
        )
        if contract.source_id != path.stem:
            raise ContractError(f"{path}: source_id {contract.source_id!r} ≠ nom du fichier")
        contracts[contract.source_id] = contract
    return contracts


@cache
def default_contracts() -> dict[str, Contract]:
    return load_contracts(CONTRACTS_DIR)


def source_of(file_name: str, source_ids: list[str]) -> str | None:
    """The contract a file belongs to: the longest source id its name starts with."""
    lowered = file_name.lower()
    matches = [s for s in source_ids if lowered.startswith(s)]
    return max(matches, key=len) if matches else None


def reference_levels(contracts: dict[str, Contract]) -> dict[str, int]:
    """0 for a source that references no other, 1 + the highest level of those it references
    otherwise (``eau_volumes`` -> ``eau_udi``: 1)."""
    levels: dict[str, int] = {}

    def level(source_id: str, seen: frozenset[str] = frozenset()) -> int:
        if source_id not in levels:
            upstream = [
                s
                for s in contracts[source_id].referenced_sources
                if s in contracts and s not in seen
            ]
            levels[source_id] = 1 + max(
                (level(s, seen | {source_id}) for s in upstream), default=-1
            )
        return levels[source_id]

    for source_id in contracts:
        level(source_id)
    return levels


def by_reference_level(contracts: list[Contract] | dict[str, Contract]) -> list[list[Contract]]:
    """The contracts grouped by ``reference_levels`` (level 0 first), each group in the given
    order: what can be ingested, or checked, together before the next level."""
    listed = list(contracts.values()) if isinstance(contracts, dict) else list(contracts)
    levels = reference_levels({c.source_id: c for c in listed})
    return [
        [c for c in listed if levels[c.source_id] == level]
        for level in sorted(set(levels.values()))
    ]
