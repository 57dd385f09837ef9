"""A regular .csv is read by Arrow and judged column by column (readers.Sheet.arrow_rows,
engine._SheetState.validate_arrow_chunk); every other file, and every chunk holding a
problem or a row that is not a plain data row, goes through the cell-by-cell rules.

The two paths must give the same answer: each file below is validated both ways (Arrow
turned off by making ``_csv_arrow`` answer None) and the results compared whole: verdict,
problems with their row, column, value and reason, warnings, accepted rows and lineage."""

from __future__ import annotations

import re

import pytest

from dagster_project.ingest import engine, readers
from dagster_project.ingest.engine import validate_delivery

ACTIVITY = "commune;mois;controles_spanc_vente;branchements_eu_crees;demandes_eaux_pluviales"
QUALITY = (
    "ID prélèvement;Date prélèvement;UDI;Type analyse;Paramètre;Résultat;Unité;"
    "Limite qualité;Conforme"
)
UDI = {("eau_udi", "udi"): {"UDI-BETHUNOIS", "UDI-LYS"}}


def _quality_rows(n: int) -> list[str]:
    return [
        f"PRL-{k:05d};{1 + k % 28:02d}/{1 + k % 12:02d}/2025;UDI-{'LYS' if k % 3 else 'BETHUNOIS'};"
        f"{'microbiologique' if k % 2 else 'physico-chimique'};P{k % 7};{k % 5},5;mg/L;10;"
        + ("oui" if k % 4 else "")
        for k in range(n)
    ]


ACTIVITY_FILES = {
    "clean": [ACTIVITY, "Béthune;janvier 2025;3;2;1", "Auchel;2025-02;1;0;0"],
    "titles and blank lines": [
        "Activité assainissement 2025",
        "",
        ACTIVITY,
        "Béthune;2025-01;3;2;1",
        "",
        "Auchel;2025-02;1;0;0",
        "",
        "",
    ],
    "control total right": [
        ACTIVITY,
        "Béthune;2025-01;3;2;1",
        "Auchel;2025-02;1;0;0",
        "Total;;4;2;1",
    ],
    "control total wrong": [ACTIVITY, "Béthune;2025-01;3;2;1", "TOTAL ;;5;2;1"],
    "negative value": [ACTIVITY, "Béthune;2025-01;3;2;1", "Béthune;2025-02;-1;2;1"],
    "text in a number": [ACTIVITY, "Béthune;2025-01;trois;2;1"],
    "empty required cell": [ACTIVITY, "Béthune;;3;2;1"],
    "unknown commune": [ACTIVITY, "Atlantis;2025-01;3;2;1"],
    "ragged line": [ACTIVITY, "Béthune;2025-01;3;2;1", "Auchel;2025-02;1"],
    "quoted field": [ACTIVITY, '"Béthune";2025-01;3;2;1'],
    "spaces around values": [ACTIVITY, "  Béthune ; 2025-01 ; 3 ;2;1", "Auchel;2025-02;1;0;0"],
    "only separators": [ACTIVITY, "Béthune;2025-01;3;2;1", ";;;;", "Auchel;2025-02;1;0;0"],
    "blank first cell": [ACTIVITY, " ;2025-01;3;2;1"],
    "duplicate grain": [ACTIVITY, "Béthune;2025-01;3;2;1", "Béthune;2025-01;1;0;0"],
    "excel error": [ACTIVITY, "Béthune;#N/A;3;2;1"],
    "header only": [ACTIVITY],
}

QUALITY_FILES = {
    "clean, several chunks": [QUALITY, *_quality_rows(23)],
    "spaces around texts": [
        QUALITY,
        *(" " + re.sub(r";(P\d);", r"; \1  ;", row) for row in _quality_rows(8)),
    ],
    "a bad cell in the third chunk": [
        QUALITY,
        *_quality_rows(7),
        "PRL-X;32/01/2025;UDI-LYS;microbiologique;E. coli;0;n/100mL;1;oui",
        *_quality_rows(4),
    ],
    "unknown udi": [
        QUALITY,
        *_quality_rows(5),
        "PRL-Y;02/01/2025;UDI-ATLANTIS;microbiologique;E. coli;0;n/100mL;1;oui",
    ],
    "blank id": [
        QUALITY,
        *_quality_rows(4),
        "   ;02/01/2025;UDI-LYS;microbiologique;E. coli;0;n/100mL;1;oui",
    ],
    "id reading total": [
        QUALITY,
        *_quality_rows(4),
        "total analyses;02/01/2025;UDI-LYS;microbiologique;E. coli;0;n/100mL;1;oui",
    ],
    "excel error as text": [
        QUALITY,
        *_quality_rows(3),
        "#DIV/0!;02/01/2025;UDI-LYS;microbiologique;E. coli;0;n/100mL;1;oui",
    ],
    "type not allowed": [
        QUALITY,
        *_quality_rows(3),
        "PRL-Z;02/01/2025;UDI-LYS;chimique;E. coli;0;n/100mL;1;oui",
    ],
}


def _both_ways(monkeypatch, validate):
    monkeypatch.setattr(engine, "CHUNK_ROWS", 3)  # several chunks, each judged on its own
    calls = []
    real = readers._csv_arrow

    def counted(*args):
        table = real(*args)
        calls.append(table is not None)
        return table

    monkeypatch.setattr(readers, "_csv_arrow", counted)
    with_arrow = validate()
    monkeypatch.setattr(readers, "_csv_arrow", lambda *args: None)
    cell_by_cell = validate()
    return with_arrow, cell_by_cell, calls


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
@pytest.mark.parametrize("name", list(ACTIVITY_FILES))
def test_activity_csv_same_answer_both_ways(
    contracts, outcome, make_context, tmp_path, monkeypatch, name, encoding
):
    path = tmp_path / "assainissement_activite_2025.csv"
    path.write_bytes(("\r\n".join(ACTIVITY_FILES[name]) + "\r\n").encode(encoding))
    contract = contracts["assainissement_activite"]
    with_arrow, cell_by_cell, calls = _both_ways(
        monkeypatch, lambda: validate_delivery(contract, path, make_context())
    )
    assert outcome(with_arrow) == outcome(cell_by_cell)
    if name in ("clean", "titles and blank lines", "negative value", "only separators"):
        assert calls == [True]  # these were read by Arrow, not left to csv.reader
    if name in ("quoted field", "ragged line"):
        assert calls in ([], [False])


@pytest.mark.parametrize("separator", [";", ","])
@pytest.mark.parametrize("name", list(QUALITY_FILES))
def test_quality_csv_same_answer_both_ways(
    contracts, outcome, make_context, tmp_path, monkeypatch, name, separator
):
    lines = [line.replace(";", separator) for line in QUALITY_FILES[name]]
    if separator == ",":  # a decimal comma would be a field separator
        lines = [line.replace(",5", ".5") if "," in line else line for line in lines]
        lines = [line.replace(",5,", ".5,") for line in lines]  # keep the results plain decimals
    path = tmp_path / "eau_qualite_2025.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    contract = contracts["eau_qualite"]
    with_arrow, cell_by_cell, calls = _both_ways(
        monkeypatch, lambda: validate_delivery(contract, path, make_context(references=UDI))
    )
    assert outcome(with_arrow) == outcome(cell_by_cell)
    if name in ("clean, several chunks", "spaces around texts"):
        assert with_arrow.accepted and calls == [True]
    if name == "spaces around texts":
        assert with_arrow.records[0]["id_prelevement"] == "PRL-00000"
        assert with_arrow.records[0]["parametre"] == "P0"


def test_python_spaces_are_what_str_strip_removes():
    spaces = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    assert spaces == engine.PYTHON_SPACES


def test_arrow_reads_rows_as_csv_reader_does():
    data = "Titre\r\n\r\na;b;c\r\n1; 2 ;3\r\n\r\n;;\r\nx;y;é\r\n\r\n".encode()
    table = readers._csv_arrow(data, "utf-8", ";", 3)
    assert table.to_pydict() == {
        "f0": ["1", "", "", "x"],
        "f1": [" 2 ", "", "", "y"],
        "f2": ["3", "", "", "é"],
    }
    assert readers._csv_arrow(b"a;b\r\n1;2\r\n3\r\n", "utf-8", ";", 1) is None  # ragged
