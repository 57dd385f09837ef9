"""The contracts exported as Table Schema (``kpi schemas``) say what the engine says.

frictionless (the library behind Validata) checks the demo deliveries against the schemas
written by ``write_schemas`` for the 2025 campaign: every schema is a valid descriptor; a
delivery as a department fills it is accepted by both frictionless and the engine; the rows
the engine accepts from every public demo delivery, written in the schema's spelling, pass
the schema (it is never stricter than the engine); and a delivery with broken cells (out of range, not in the list, empty where required, of the
wrong type, outside the campaign year, a duplicate key) has the same rows and columns
flagged by both. Table Schema names the columns exactly, where the engine matches headers
whatever their case and accents: the workbooks are checked with their header written as in
the kit (``_with_kit_headers``), everything else as delivered.

frictionless reads the schemas from files (as Validata and its command line do: a Schema
object handed to a Resource is judged under Data Package v1, which refuses the v2
``exclusiveMinimum``); nothing goes to the network (``no_network``).
"""

from __future__ import annotations

import csv
import json
import shutil
import socket
from pathlib import Path

import openpyxl
import pytest
from frictionless import Dialect, Resource, Schema, formats

from dagster_project.cli import main
from dagster_project.contracts.model import Column, Contract, default_contracts
from dagster_project.contracts.table_schema import (
    INDEX_FILE,
    SCHEMA_FILE,
    TYPES,
    field_name,
    render_schema,
    table_schema,
    write_schemas,
)
from dagster_project.ingest.normalize import normalize_header
from dagster_project.ingest.validation.driver import validate_delivery

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "sources" / "2025"
YEAR = 2025


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """frictionless must find everything locally (no remote profile, no remote data)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"connexion réseau pendant un test : {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def schemas_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("schemas")
    write_schemas(default_contracts(), out, year=YEAR, version="0.1.0")
    return out


@pytest.fixture
def workdir(tmp_path, monkeypatch, schemas_dir) -> Path:
    """frictionless opens relative paths only (an absolute one is « not safe »): the test
    works in tmp_path, with the schemas under ``schemas/``."""
    shutil.copytree(schemas_dir, tmp_path / "schemas")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _kit_names(contract: Contract) -> dict[str, str]:
    """The kit's name of each header the engine matches, by its normalised spelling."""
    return {
        normalize_header(header): field_name(column)
        for column in contract.columns
        for header in column.header_names
    }


def _schema_path(source_id: str) -> str:
    return f"schemas/{source_id}/{SCHEMA_FILE}"


def _with_kit_headers(
    delivery: Path, contract: Contract, sheet: str, header_row: int, out: Path, edit=None
) -> Path:
    """A copy of the workbook whose header cells are the kit's names, as the engine matched
    them (« Date début » → date_debut); ``edit(ws)`` then changes cells. A workbook already
    headed with the kit's names and left as it is, is copied as it is."""
    names = _kit_names(contract)
    if edit is None:
        wb = openpyxl.load_workbook(delivery, read_only=True)
        header = next(wb[sheet].iter_rows(min_row=header_row, max_row=header_row, values_only=True))
        wb.close()
        if all(names.get(normalize_header(text), text) == text for text in header if text):
            shutil.copyfile(delivery, out)
            return out
    wb = openpyxl.load_workbook(delivery)
    ws = wb[sheet]
    for cell in ws[header_row]:
        key = normalize_header(cell.value)
        if key in names:
            cell.value = names[key]
    if edit is not None:
        edit(ws)
    wb.save(out)
    return out


def _frictionless_flags(
    path: Path, contract: Contract, sheet: str | None, header_row: int
) -> set[tuple[int, str]]:
    """(row, field) of every error frictionless reports on the file (a duplicate key on the
    first field of the key, where the engine reports it)."""
    controls = [formats.ExcelControl(sheet=sheet)] if sheet else []
    resource = Resource(
        path.name,
        schema=_schema_path(contract.source_id),
        dialect=Dialect(header_rows=[header_row], controls=controls),
    )
    report = resource.validate()
    flags = set()
    for row, field, kind, note in report.flatten(["rowNumber", "fieldName", "type", "note"]):
        assert row is not None, f"erreur hors des lignes : {kind} {note}"
        if kind == "primary-key":
            field = field_name(contract.column(contract.grain[0]))
        flags.add((row, field))
    return flags


def _engine_flags(result, contract: Contract) -> set[tuple[int, str]]:
    """(row, field) of every problem the engine reports (headers read as the kit's names)."""
    names = _kit_names(contract)
    flags = set()
    for problem in result.problems:
        assert problem.row is not None, problem
        flags.add((problem.row, names[normalize_header(problem.column)]))
    return flags


def _delivery(department: str, source_id: str) -> Path:
    return DEMO / department / f"{source_id}_{YEAR}.xlsx"


# --- the schemas ----------------------------------------------------------------------------


def test_every_contract_exports_a_valid_table_schema(schemas_dir):
    contracts = default_contracts()
    assert sorted(p.name for p in schemas_dir.iterdir()) == sorted([*contracts, INDEX_FILE])
    for source_id, contract in contracts.items():
        path = schemas_dir / source_id / SCHEMA_FILE
        report = Schema.validate_descriptor(
            str(path.relative_to(schemas_dir)), basepath=str(schemas_dir)
        )
        assert report.valid, (source_id, [error.message for error in report.errors])
        descriptor = json.loads(path.read_text(encoding="utf-8"))
        assert descriptor["name"] == source_id
        assert descriptor["title"] == contract.title_fr
        assert [f["name"] for f in descriptor["fields"]] == [
            field_name(c) for c in contract.columns
        ]
        for column, field in zip(contract.columns, descriptor["fields"], strict=True):
            assert field["type"] == TYPES[column.type]
            assert field["title"] and field["description"], (source_id, column.name)
            if column.allowed:
                assert field["constraints"]["enum"] == list(column.allowed)
            required = column.required and column.default is None
            assert field.get("constraints", {}).get("required", False) == required
        assert descriptor["primaryKey"] == [field_name(contract.column(g)) for g in contract.grain]
    index = (schemas_dir / INDEX_FILE).read_text(encoding="utf-8")
    assert all(f"`{source_id}/{SCHEMA_FILE}`" in index for source_id in contracts)


def test_schemas_are_deterministic_and_bound_dates_to_the_campaign_year():
    contract = default_contracts()["rh_effectifs"]
    first = render_schema(table_schema(contract, year=YEAR))
    assert first == render_schema(table_schema(contract, year=YEAR))
    schema = json.loads(first)
    assert not {"created", "lastModified"} & set(schema)  # no timestamp
    quotite = next(f for f in schema["fields"] if f["name"] == "quotite")
    assert quotite["constraints"] == {"required": True, "exclusiveMinimum": 0, "maximum": 1}
    observation = next(f for f in schema["fields"] if f["name"] == "date_observation")
    assert observation["format"] == "%d/%m/%Y"
    assert observation["constraints"]["minimum"] == "01/01/2025"
    assert observation["constraints"]["maximum"] == "31/12/2025"
    assert "identique sur toutes les lignes" in observation["description"]
    generic = table_schema(contract)  # any year: the campaign year in the description only
    observation = next(f for f in generic["fields"] if f["name"] == "date_observation")
    assert "minimum" not in observation["constraints"]
    assert "dans l'année de la campagne" in observation["description"]


def test_kpi_schemas_writes_every_schema_and_an_index(tmp_path, capsys):
    assert main(["schemas", "--out", str(tmp_path / "out"), "--year", str(YEAR)]) == 0
    assert "15 sources écrites" in capsys.readouterr().out
    written = {p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")}
    assert f"dechets_collecte/{SCHEMA_FILE}" in written and INDEX_FILE in written
    before = (tmp_path / "out" / "eau_udi" / SCHEMA_FILE).read_bytes()
    assert main(["schemas", "--out", str(tmp_path / "out"), "--year", str(YEAR)]) == 0
    assert (tmp_path / "out" / "eau_udi" / SCHEMA_FILE).read_bytes() == before


# --- a filled template: accepted by both --------------------------------------------------


@pytest.mark.parametrize(
    ("department", "source_id"),
    [
        ("waste", "dechets_collecte"),  # the kit's headers, months as text, 6 000 rows
        ("hr", "rh_formation"),  # headers as labels, dates JJ/MM/AAAA as text, 0,5 day steps
        ("hr", "rh_effectifs"),  # a notice sheet first, a share in ]0, 1], enumerations
        ("water", "indicateurs_declares"),  # a title row, date cells, an empty key column
    ],
)
def test_a_filled_template_is_valid_against_its_schema(
    workdir, make_context, department, source_id
):
    contract = default_contracts()[source_id]
    delivery = _delivery(department, source_id)
    ctx = make_context(department=department, pseudonymise=lambda value: f"p-{value}")
    result = validate_delivery(contract, delivery, ctx)
    assert result.accepted, result.problems[:3]
    path = _with_kit_headers(
        delivery, contract, result.sheet, result.header_row, workdir / "f.xlsx"
    )
    assert _frictionless_flags(path, contract, result.sheet, result.header_row) == set()


def _canonical(column: Column, value) -> str:
    """A value of the engine's table as the schema asks it written."""
    if value is None:
        return ""
    if column.type == "yes_no":
        return "oui" if value else "non"
    if column.type == "month":
        return value.strftime("%Y-%m")
    if column.type == "date":
        return value.strftime("%d/%m/%Y")
    return str(value)


def test_what_the_engine_accepts_the_schema_accepts_in_its_canonical_spelling(
    workdir, make_context
):
    """Every public demo delivery (some written as departments do: commune names, « janvier
    2025 », « Regie »): its rows as the engine read them, written in the spelling the schema
    asks for, pass the schema. The schema is never stricter than the engine."""
    contracts = default_contracts()
    known: dict[tuple[str, str], set] = {}
    deliveries = [
        p for p in sorted(DEMO.glob("*/*.xlsx")) if not p.name.startswith("indicateurs_declares")
    ]
    deliveries.append(_delivery("water", "indicateurs_declares"))
    # eau_udi first: the sources referring to it read its values
    deliveries.sort(key=lambda p: not p.name.startswith("eau_udi"))
    checked = []
    for delivery in deliveries:
        source_id = delivery.name.removesuffix(f"_{YEAR}.xlsx")
        contract = contracts[source_id]
        if contract.sensitivity == "personal":  # pseudonyms and ages: not the delivered form
            continue
        ctx = make_context(department=delivery.parent.name, references=known)
        result = validate_delivery(contract, delivery, ctx)
        assert result.accepted, (source_id, result.problems[:3])
        rows = result.table.slice(0, 300).to_pylist()
        for column in contract.columns:  # what a ``references`` rule reads
            known[(source_id, column.name)] = set(result.table.column(column.name).to_pylist())
        path = workdir / f"{source_id}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([field_name(c) for c in contract.columns])
            for row in rows:
                writer.writerow([_canonical(c, row[c.name]) for c in contract.columns])
        flags = _frictionless_flags(path, contract, None, 1)
        assert flags == set(), (source_id, sorted(flags)[:5])
        checked.append(source_id)
    assert len(checked) == 12, checked


# --- a broken delivery: the same rows flagged --------------------------------------------


def _break_collecte(ws) -> dict[int, str]:
    """Breaks cells of dechets_collecte (keeping its first 120 rows); {row: field broken}."""
    ws.delete_rows(122, ws.max_row)
    header = {cell.value: cell.column for cell in ws[1]}
    cell = lambda row, name: ws.cell(row=row, column=header[name])  # noqa: E731
    cell(5, "tonnage_t").value = -3.5  # below the minimum (0)
    cell(9, "flux").value = "PAPIER"  # not in the list
    cell(14, "tonnage_t").value = None  # required
    cell(20, "tonnage_t").value = "beaucoup"  # not a number
    cell(27, "code_insee").value = "62999"  # not a member commune
    cell(33, "mois").value = "2024-05"  # outside the campaign year
    cell(41, "mois").value = "2025-13"  # not a month
    for name in ("code_insee", "mois", "flux"):  # row 60 repeats the key of row 50
        cell(60, name).value = cell(50, name).value
    return {
        5: "tonnage_t",
        9: "flux",
        14: "tonnage_t",
        20: "tonnage_t",
        27: "code_insee",
        33: "mois",
        41: "mois",
        60: "code_insee",
    }


def _break_formation(ws) -> dict[int, str]:
    """Breaks cells of rh_formation (keeping its first 150 rows); {row: field broken}."""
    ws.delete_rows(152, ws.max_row)
    header = {cell.value: cell.column for cell in ws[1]}
    cell = lambda row, name: ws.cell(row=row, column=header[name])  # noqa: E731
    cell(4, "nb_jours").value = 0  # not strictly positive
    cell(8, "date_debut").value = "31/02/2025"  # no such day
    cell(12, "date_debut").value = "15/06/2024"  # outside the campaign year
    cell(16, "intitule").value = None  # required
    cell(21, "nb_jours").value = "deux"  # not a number
    cell(30, "organisme").value = None  # optional: no problem
    for name in ("matricule", "date_debut", "intitule"):  # row 70 repeats the key of row 40
        cell(70, name).value = cell(40, name).value
    return {
        4: "nb_jours",
        8: "date_debut",
        12: "date_debut",
        16: "intitule",
        21: "nb_jours",
        70: "matricule",
    }


@pytest.mark.parametrize(
    ("department", "source_id", "breaks"),
    [("waste", "dechets_collecte", _break_collecte), ("hr", "rh_formation", _break_formation)],
)
def test_a_broken_delivery_has_the_same_rows_flagged_by_frictionless_and_the_engine(
    workdir, make_context, department, source_id, breaks
):
    contract = default_contracts()[source_id]
    delivery = _delivery(department, source_id)
    ctx = make_context(department=department, pseudonymise=lambda value: f"p-{value}")
    original = validate_delivery(contract, delivery, ctx)
    broken: dict[int, str] = {}

    def edit(ws):
        broken.update(breaks(ws))

    path = _with_kit_headers(
        delivery, contract, original.sheet, original.header_row, workdir / "f.xlsx", edit
    )
    engine = _engine_flags(validate_delivery(contract, path, ctx), contract)
    table_schema_flags = _frictionless_flags(path, contract, original.sheet, original.header_row)
    assert engine == set(broken.items())
    assert table_schema_flags == engine
