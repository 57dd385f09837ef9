"""Every contract as a Table Schema (``schema.json``), for Validata and frictionless.

French collectivités check tabular files against Table Schema (schema.data.gouv.fr,
Validata). ``table_schema`` turns a contract into such a schema: the Table Schema of the Data
Package standard v2 (https://datapackage.org/standard/table-schema/; ``$schema`` says so,
since two of its constraints, ``exclusiveMinimum`` and ``exclusiveMaximum``, are v2), with
the descriptive properties schema.data.gouv.fr adds (``name``, ``title``, ``description``,
``countryCode``, ``version``, ``contributors``), French titles and descriptions, and no
timestamp: the same contracts give the same bytes (``render_schema``). ``write_schemas``
writes one ``<source_id>/schema.json`` per source and a French ``README.md`` (``kpi schemas``;
docs/contracts.md, « Export Table Schema »).

The schema describes the *canonical* form of a delivery, the one the templates ask for: the
kit's headers exactly (``code_insee`` for a commune), dates ``15/03/2025`` (the kit's
JJ/MM/AAAA), months ``2025-03``, numbers with a decimal point, enumerations spelled as in the
contract, ``oui`` / ``non``. The engine is more tolerant than that (see below) and, cell
hygiene aside, never stricter on what the schema expresses: a file the schema accepts passes
every rule of the engine that the schema expresses. What the schema expresses, rule by rule:

================================  ===========================================================
contract                          Table Schema
================================  ===========================================================
``type: text``                    ``string``
``type: integer`` / ``number``    ``integer`` / ``number`` (decimal point)
``type: date``                    ``date``, format ``%d/%m/%Y`` (the kit's JJ/MM/AAAA)
``type: month``                   ``yearmonth`` (``AAAA-MM``)
``type: yes_no``                  ``boolean``, ``trueValues`` oui, ``falseValues`` non
``type: commune``                 ``string`` named ``code_insee``, ``enum`` of the INSEE
                                  codes of the member communes (``reference.load_communes``)
``required`` (without default)    ``constraints.required``
``min`` / ``max`` (numbers        ``minimum`` / ``maximum``
default to ``min: 0``)
``min_exclusive`` /               ``exclusiveMinimum`` / ``exclusiveMaximum`` (v2)
``max_exclusive``
``allowed``                       ``enum``, spelled as in the contract
``unique``                        ``constraints.unique``
``grain``                         ``primaryKey`` (nulls compared equal, as the engine does)
``date_range: campaign_year``     ``minimum`` / ``maximum`` of the year, when the schema is
                                  written for a campaign year (``year``); otherwise in the
                                  description only
``date_range: {min_year}``        ``minimum`` (1 January of that year)
header rules                      ``fieldsMatch: partial``: headers matched by name in any
                                  order, the required ones present, the others optional,
                                  unknown columns ignored
``declared_indicator``            partly: ``enum`` of the catalogue's declared indicators
================================  ===========================================================

What Table Schema cannot express, checked by the engine only (and said in the descriptions):

================================  ===========================================================
rule                              why
================================  ===========================================================
``references``                    the values of another delivery in force (a ``foreignKeys``
                                  entry names another resource of a data package: a file
                                  validated alone, as Validata does, would fail on it)
``covers_all_communes``           a property of the whole file (every commune, once)
``column_le``, ``not_after``,     comparisons between two columns of a row
age bounds (``age_years_*``)
``required_unless``               a condition on another column
``constant``                      the same value on every row
``declared_indicator``            the indicator must belong to the delivering department, and
                                  a negative value must be allowed for that indicator
``step``                          no « multiple of » constraint in Table Schema
``date_range: not_future``        depends on the day of the check
``default`` (empty = 0)           an empty cell is accepted by both; its value is not expressed
``privacy``                       pseudonymisation and ages are the warehouse's treatment,
                                  described only
tolerant spellings                headers whatever their case, accents and spaces, a commune
                                  by its name (header ``commune``), dates ``AAAA-MM-JJ``,
                                  months « janvier 2025 » or ``01/2025``, French numbers
                                  (``4 548,5``), the column's unit after a number, any case of
                                  an enumeration, other spellings of oui / non: accepted by the
                                  engine, refused by the schema (one spelling per value)
cell hygiene                      a cell of spaces is empty, an Excel error value (``#N/A``)
                                  or ``NaN`` is refused, invisible characters are removed:
                                  the schema reads such a text as a value
layout                            title rows above the header, notice sheets, hidden or merged
                                  cells, number formats that show another value: the
                                  workbook's, outside a table's schema
================================  ===========================================================
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster_project.contracts.model import Column, Contract
from dagster_project.contracts.reference import load_communes, load_declared_indicators

TABLE_SCHEMA_PROFILE = "https://datapackage.org/profiles/2.0/tableschema.json"
PUBLISHER = "Communauté d'agglomération de Béthune-Bruay, Artois Lys Romane"
SCHEMA_FILE = "schema.json"
INDEX_FILE = "README.md"
MISSING_VALUES = [""]  # an empty cell (the engine also reads a cell of spaces as empty)
TRUE_VALUES = ["oui", "Oui", "OUI"]
FALSE_VALUES = ["non", "Non", "NON"]
# the year of the examples when the schema is not written for a campaign year: the year of
# the contracts' own examples (« janvier 2025 », « 01/10/2025 »)
EXAMPLE_YEAR = 2025

TYPES = {
    "text": "string",
    "integer": "integer",
    "number": "number",
    "date": "date",
    "month": "yearmonth",
    "commune": "string",
    "yes_no": "boolean",
}
# how a date and a month are written: the kit's JJ/MM/AAAA (the templates and the contracts'
# descriptions say so), and AAAA-MM, the month spelling Table Schema knows (``yearmonth``)
FORMATS = {"date": "%d/%m/%Y", "month": "default"}
# the spelling the schema asks for, and what else the engine reads (French)
FORMAT_NOTES = {
    "date": "Format : JJ/MM/AAAA, ou cellule au format Date (l'entrepôt lit aussi AAAA-MM-JJ).",
    "month": "Format : AAAA-MM (l'entrepôt lit aussi « janvier 2025 » et 01/2025).",
    "commune": (
        "Ici le code INSEE d'une des communes membres ; l'entrepôt lit aussi le nom de la "
        "commune dans une colonne « commune »."
    ),
}
UNITS_FR = {  # every unit of contracts.CELL_UNITS, in words
    "eur": "euros",
    "t": "tonnes",
    "m3": "mètres cubes",
    "km": "kilomètres",
    "jours": "jours",
}


def field_name(column: Column) -> str:
    """The column's header in the kit (a commune: ``code_insee``; the engine also reads a
    header ``commune`` holding names, which a Table Schema, one name per field, cannot)."""
    return "code_insee" if column.type == "commune" else column.name


def _plain(text: str) -> str:
    return " ".join(text.split())


def field_title(column: Column) -> str:
    """A short French title: the first clause of the column's description (« Sexe de l'agent
    : F ou M » → « Sexe de l'agent »); the column name when it has no description."""
    text = _plain(column.description_fr)
    if not text:
        return column.name
    head, colon, rest = text.partition(" : ")
    if colon and head.split()[-1] in ("seulement", "uniquement"):  # « X seulement : titre »
        return f"{_first_clause(rest)[:1].upper()}{_first_clause(rest)[1:]} ({head.lower()})"
    return _first_clause(text)


def _first_clause(text: str) -> str:
    return re.split(r" \(| : | ; |, |\. ", text, maxsplit=1)[0].rstrip(". ")


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _written(column: Column, day: dt.date) -> str:
    """A date as the column's field writes it (``FORMATS``)."""
    if column.type == "month":
        return f"{day.year}-{day.month:02d}"
    return day.strftime(FORMATS["date"])


def _date_bounds(column: Column, year: int | None) -> tuple[str | None, str | None]:
    """(minimum, maximum) of a date or month column, as its field writes them."""
    rule = column.effective_date_range
    low = high = None
    if rule == "campaign_year" and year is not None:
        low, high = dt.date(year, 1, 1), dt.date(year, 12, 31)
    elif isinstance(rule, dict) and rule.get("min_year"):
        low = dt.date(int(rule["min_year"]), 1, 1)
    return (
        _written(column, low) if low else None,
        _written(column, high) if high else None,
    )


def _constraints(
    column: Column, contract: Contract, year: int | None, enums: Mapping[str, list[str]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if column.required and column.default is None:
        out["required"] = True
    if column.unique:
        out["unique"] = True
    if column.type in ("integer", "number"):
        if column.lower_bound is not None:
            out["minimum"] = _number(column.lower_bound)
        if column.min_exclusive is not None:
            out["exclusiveMinimum"] = _number(column.min_exclusive)
        if column.max is not None:
            out["maximum"] = _number(column.max)
        if column.max_exclusive is not None:
            out["exclusiveMaximum"] = _number(column.max_exclusive)
    if column.type in ("date", "month"):
        low, high = _date_bounds(column, year)
        if low:
            out["minimum"] = low
        if high:
            out["maximum"] = high
    if column.allowed is not None:
        out["enum"] = list(column.allowed)
    elif column.type == "commune":
        out["enum"] = list(enums["communes"])
    elif column.name in {rule["column"] for rule in contract.rules_of("declared_indicator")}:
        out["enum"] = list(enums["declared"])
    return out


def _example(column: Column, constraints: dict[str, Any], year: int | None) -> Any:
    """A canonical value of the column that passes its constraints (None: no example)."""
    enum = constraints.get("enum")
    if enum:
        return enum[0]
    shown = year or EXAMPLE_YEAR
    if column.type in ("date", "month"):  # (a birth date: an adult's)
        return _written(column, dt.date(shown - 40 if column.age_years_min else shown, 3, 15))
    if column.type == "yes_no":
        return TRUE_VALUES[0]
    if column.type in ("integer", "number"):
        if column.max is not None:  # a share (quotité): its maximum
            return _number(column.max)
        low = constraints.get("minimum", constraints.get("exclusiveMinimum", 0))
        if column.type == "integer":
            return _number(low + 1)
        return _number(low + (column.step or 1) * 2) if column.step else low + 12.5
    if column.is_pseudonymised:
        return None  # no example of a personal identifier
    examples = re.findall(r"\(ex\. ([^),;]+)\)", _plain(column.description_fr))
    return examples[0] if examples else None


def _notes(column: Column, contract: Contract, year: int | None) -> tuple[list[str], list[str]]:
    """(what to know, what the engine checks that the schema does not express) on this column,
    in French: sentences, then clauses."""
    infos, rules = [], []
    if column.type in FORMAT_NOTES:
        infos.append(FORMAT_NOTES[column.type])
    if column.unit:
        infos.append(
            f"Unité : {UNITS_FR[column.unit]} (l'entrepôt lit aussi l'unité écrite après le "
            "nombre)."
        )
    if column.default is not None:
        infos.append(f"Cellule vide = {_number(column.default)}.")
    if column.is_pseudonymised:
        infos.append("Donnée personnelle : remplacée par un pseudonyme à l'ingestion.")
    if column.step:
        rules.append(f"multiple de {str(_number(column.step)).replace('.', ',')}")
    date_range = column.effective_date_range
    if date_range == "campaign_year" and year is None:
        rules.append("dans l'année de la campagne")
    if isinstance(date_range, dict) and date_range.get("not_future"):
        rules.append("pas dans le futur")
    if column.not_after:
        rules.append(f"au plus tard la date {column.not_after} de la même ligne")
    if column.age_reference:
        rules.append(
            f"âge à la date {column.age_reference} entre {_number(column.age_years_min)} et "
            f"{_number(column.age_years_max)} ans (seul l'âge en mois entre dans l'entrepôt)"
        )
    for rule in contract.rules:
        if rule.get("column") != column.name:
            continue
        if rule.kind == "references":
            target = rule.get("source_column", column.name)
            rules.append(
                f"présent dans la colonne {target} de la livraison en vigueur de la source "
                f"{rule['source']} (même campagne)"
            )
        elif rule.kind == "column_le":
            rules.append(f"au plus égal à {rule['other']} sur la même ligne")
        elif rule.kind == "constant":
            rules.append("identique sur toutes les lignes")
        elif rule.kind == "required_unless":
            values = ", ".join(rule["values"])
            rules.append(f"obligatoire, sauf quand {rule['other']} vaut {values}")
        elif rule.kind == "declared_indicator":
            rules.append(
                "indicateur de la direction qui livre le fichier ; valeur négative seulement "
                "pour un indicateur qui l'admet"
            )
    return infos, rules


def _described(text: str, infos: list[str], rules: list[str]) -> str:
    parts = [text] if text else []
    parts += infos
    if rules:
        parts.append("Vérifié par l'entrepôt seulement : " + " ; ".join(rules) + ".")
    return " ".join(parts)


def _field(
    column: Column, contract: Contract, year: int | None, enums: Mapping[str, list[str]]
) -> dict[str, Any]:
    constraints = _constraints(column, contract, year, enums)
    title = field_title(column)
    if column.unit:
        title += f" (en {UNITS_FR[column.unit]})"
    if column.type == "commune":
        title += " (code INSEE)"
    field: dict[str, Any] = {
        "name": field_name(column),
        "title": title,
        "description": _described(_plain(column.description_fr), *_notes(column, contract, year)),
        "type": TYPES[column.type],
    }
    if column.type in ("date", "month"):
        field["format"] = FORMATS[column.type]
    if column.type == "yes_no":
        field["trueValues"] = list(TRUE_VALUES)
        field["falseValues"] = list(FALSE_VALUES)
    example = _example(column, constraints, year)
    if example is not None:
        field["example"] = example
    if constraints:
        field["constraints"] = constraints
    return field


def _table_notes(contract: Contract) -> list[str]:
    """What the engine checks on the whole table that the schema does not express."""
    if contract.rules_of("covers_all_communes"):
        return ["chaque commune membre figure une fois et une seule"]
    return []


def reference_enums() -> dict[str, list[str]]:
    """The enumerations taken from the reference data: the INSEE codes of the member
    communes, the declared indicators of the catalogue."""
    declared = sorted(
        {ind.indicator_id for inds in load_declared_indicators().values() for ind in inds}
    )
    return {"communes": [code for code, _ in load_communes()], "declared": declared}


def table_schema(
    contract: Contract,
    *,
    year: int | None = None,
    version: str | None = None,
    enums: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The Table Schema of a contract (a dict, in the order it is written).

    ``year``: the campaign year the schema is written for (the dates and months bound to it
    get its first and last day as bounds); None: a schema for any year. ``version``: the
    schema's version (the kit's); ``enums``: ``reference_enums()`` (read once for many)."""
    enums = enums if enums is not None else reference_enums()
    scope = [f"Schéma de la campagne {year}."] if year is not None else []
    description = _described(_plain(contract.description_fr), scope, _table_notes(contract))
    schema: dict[str, Any] = {
        "$schema": TABLE_SCHEMA_PROFILE,
        "name": contract.source_id,
        "title": contract.title_fr,
        "description": description,
        "countryCode": "FR",
    }
    if version:
        schema["version"] = version
    contributors = [{"title": PUBLISHER, "role": "author"}]
    if contract.direction_fr and contract.department != "any":
        contributors.append(
            {"title": contract.direction_fr, "organisation": PUBLISHER, "role": "contributor"}
        )
    schema["contributors"] = contributors
    schema["missingValues"] = list(MISSING_VALUES)
    schema["fieldsMatch"] = "partial"
    schema["fields"] = [_field(c, contract, year, enums) for c in contract.columns]
    if contract.grain:
        schema["primaryKey"] = [field_name(contract.column(name)) for name in contract.grain]
    return schema


def render_schema(schema: Mapping[str, Any]) -> str:
    """The schema as written: UTF-8 JSON, French text as is, indented, a final newline."""
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"


def render_index(
    contracts: Mapping[str, Contract], schemas: Mapping[str, Mapping[str, Any]], year: int | None
) -> str:
    """The French README beside the schemas: what each is, how to check a file with it."""
    scope = f"de la campagne {year}" if year is not None else "valables pour toute campagne"
    lines = [
        "# Schémas Table Schema des sources de la collecte",
        "",
        f"{PUBLISHER}. Un schéma par source de la collecte ({scope}), écrit par "
        "`kpi schemas` depuis les contrats `sources/contracts/*.yml` : ne pas le modifier à "
        "la main.",
        "",
        "| source | fichier | titre | direction | colonnes |",
        "|---|---|---|---|---|",
    ]
    for source_id, contract in contracts.items():
        direction = contract.direction_fr if contract.department != "any" else "toute direction"
        lines.append(
            f"| `{source_id}` | [`{source_id}/{SCHEMA_FILE}`]({source_id}/{SCHEMA_FILE}) "
            f"| {contract.title_fr} | {direction} | {len(schemas[source_id]['fields'])} |"
        )
    lines += [
        "",
        "## Vérifier un fichier",
        "",
        "- Validata (https://validata.fr) : valider le fichier avec un schéma externe, "
        "donné par l'adresse (URL) où le `schema.json` de la source est publié.",
        "- frictionless (Python) : `frictionless validate --schema <source>/schema.json "
        "fichier.csv` (pour un classeur : `--sheet <onglet>` et, s'il y a des lignes de "
        "titre au-dessus de l'en-tête, `--header-rows <numéro de la ligne d'en-tête>`).",
        "",
        "Le schéma décrit la forme attendue, celle que demandent les modèles : les en-têtes "
        "du modèle, dans n'importe quel ordre (`code_insee` pour une commune ; les colonnes "
        "facultatives peuvent manquer, les colonnes inconnues sont ignorées), dates "
        "JJ/MM/AAAA, mois AAAA-MM, nombres avec un point décimal, valeurs des listes écrites "
        "comme dans la liste, `oui` / `non`. L'entrepôt est plus tolérant (en-têtes sans "
        "accents ni majuscules, noms de communes, dates AAAA-MM-JJ, mois « janvier 2025 », "
        "nombres à la française, unité après le nombre, majuscules des listes) : un fichier "
        "accepté par le schéma l'est par l'entrepôt pour toutes les règles que le schéma "
        "exprime.",
        "",
        "Règles vérifiées par l'entrepôt seulement (Table Schema ne sait pas les dire) : "
        "valeurs présentes dans une autre livraison (références), toutes les communes "
        "présentes, comparaisons entre deux colonnes d'une ligne, colonne obligatoire selon "
        "une autre, valeur identique sur toutes les lignes, indicateur de la direction qui "
        "livre, multiples (0,5 jour), dates dans le futur, mise en page du classeur. Chaque "
        "colonne concernée le dit dans sa description (« Vérifié par l'entrepôt "
        "seulement : … »).",
        "",
    ]
    return "\n".join(lines)


def write_schemas(
    contracts: Mapping[str, Contract],
    out: Path,
    *,
    year: int | None = None,
    version: str | None = None,
) -> list[Path]:
    """Write ``out/<source_id>/schema.json`` for every contract and ``out/README.md``; the
    paths written, in order. A file already holding the same bytes is left as it is."""
    enums = reference_enums()
    schemas = {
        source_id: table_schema(contract, year=year, version=version, enums=enums)
        for source_id, contract in sorted(contracts.items())
    }
    written = []
    for source_id, schema in schemas.items():
        written.append(_write(out / source_id / SCHEMA_FILE, render_schema(schema)))
    ordered = {source_id: contracts[source_id] for source_id in schemas}
    written.append(_write(out / INDEX_FILE, render_index(ordered, schemas, year)))
    return written


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path
