"""A regular .csv is read by Arrow and judged column by column
(readers.sheet.Sheet.arrow_rows, validation.arrow_chunks._ArrowChunks.validate_arrow_chunk);
every other file, and every chunk holding a problem or a row that is not a plain data row,
goes through the cell-by-cell rules.

The two paths must give the same answer: each file below is validated both ways (Arrow
turned off by making ``_csv_arrow`` answer None) and the results compared whole: verdict,
problems with their row, column, value and reason, warnings, accepted rows and lineage."""

from __future__ import annotations

import re

import pytest

from dagster_project.ingest.readers import csv_file
from dagster_project.ingest.validation import arrow_chunks, driver
from dagster_project.ingest.validation.driver import validate_delivery

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
    # a line with more or fewer fields than the header: refused, never shifted nor padded
    "a field too many": [ACTIVITY, "Béthune;2025-01;3;2;1", "Auchel;2025-02;1;0;0;7"],
    "a field too many on every line": [ACTIVITY, "Béthune;2025-01;3;2;1;", "Auchel;2025-02;1;0;0;"],
    "a field missing on every line": [ACTIVITY, "Béthune;2025-01;3;2", "Auchel;2025-02;1;0"],
    "a header wider than its lines": [ACTIVITY + ";", "Béthune;2025-01;3;2;1"],
    "titles of one field above the header": [
        "Activité 2025",
        "",
        ACTIVITY,
        "Béthune;2025-01;3;2;1",
    ],
    # invisible characters: removed (what a person reads), the same on both paths
    "an invisible character in a commune": [ACTIVITY, "Béthune\u200b;2025-01;3;2;1"],
    "an invisible first cell": [ACTIVITY, "\u200b;;;;", "Béthune;2025-01;3;2;1"],
    "a total behind a byte order mark": [ACTIVITY, "Béthune;2025-01;3;2;1", "\ufeffTotal;;3;2;1"],
    "invisible characters in a duplicate": [
        ACTIVITY,
        "Béthune;2025-01;3;2;1",
        "Béth\u00adune;2025-\u200d01;3;2;1",
    ],
    "a control character in a number": [ACTIVITY, "Béthune;2025-01;3\x1f;2;1"],
    # units, NaN
    "a unit in a count": [ACTIVITY, "Béthune;2025-01;3 kg;2;1"],
    "NaN": [ACTIVITY, "Béthune;2025-01;NaN;2;1"],
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
    # a free text column judged in Arrow: an invisible character sends the chunk to the cells
    "an invisible character in an id": [
        QUALITY,
        *_quality_rows(4),
        "PRL-00001\u200b;02/01/2025;UDI-LYS;microbiologique;P1;0;n/100mL;1;oui",
    ],
    "a byte order mark in a unit": [
        QUALITY,
        *_quality_rows(4),
        "PRL-W;02/01/2025;UDI-LYS;microbiologique;P1;0;\ufeffmg/L;1;oui",
    ],
    "a soft hyphen in a parameter": [
        QUALITY,
        *_quality_rows(5),
        "PRL-V;02/01/2025;UDI-LYS;microbiologique;Nitra\u00adtes;0;mg/L;1;oui",
    ],
    "a unit in a result": [
        QUALITY,
        *_quality_rows(3),
        "PRL-U;02/01/2025;UDI-LYS;microbiologique;P1;12 mg;mg/L;1;oui",
    ],
    "a line of another width": [
        QUALITY,
        *_quality_rows(5),
        "PRL-T;02/01/2025;UDI-LYS;microbiologique;P1;0;mg/L;1;oui;en trop",
    ],
}


def _both_ways(monkeypatch, validate):
    monkeypatch.setattr(driver, "CHUNK_ROWS", 3)  # several chunks, each judged on its own
    calls = []
    real = csv_file._csv_arrow

    def counted(*args):
        table = real(*args)
        calls.append(table is not None)
        return table

    monkeypatch.setattr(csv_file, "_csv_arrow", counted)
    with_arrow = validate()
    monkeypatch.setattr(csv_file, "_csv_arrow", lambda *args: None)
    cell_by_cell = validate()
    return with_arrow, cell_by_cell, calls


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
@pytest.mark.parametrize("name", list(ACTIVITY_FILES))
def test_activity_csv_same_answer_both_ways(
    contracts, outcome, make_context, tmp_path, monkeypatch, name, encoding
):
    path = tmp_path / "assainissement_activite_2025.csv"
    try:
        path.write_bytes(("\r\n".join(ACTIVITY_FILES[name]) + "\r\n").encode(encoding))
    except UnicodeEncodeError:
        pytest.skip("Windows-1252 has no such character")
    contract = contracts["assainissement_activite"]
    with_arrow, cell_by_cell, calls = _both_ways(
        monkeypatch, lambda: validate_delivery(contract, path, make_context())
    )
    assert outcome(with_arrow) == outcome(cell_by_cell)
    if name in ("clean", "titles and blank lines", "negative value", "only separators"):
        assert calls == [True]  # these were read by Arrow, not left to csv.reader
    if name.startswith(("a field", "a header wider")):
        assert not with_arrow.accepted
        assert {p.reason.split(" : ")[0] for p in with_arrow.problems} <= {
            "ligne de 6 champs alors que l'en-tête en a 5",
            "ligne de 4 champs alors que l'en-tête en a 5",
            "ligne de 5 champs alors que l'en-tête en a 6",
        }
    if name == "titles of one field above the header":
        assert with_arrow.accepted  # only the lines below the header are counted
    if name in ("an invisible character in a commune", "an invisible first cell"):
        assert with_arrow.accepted and with_arrow.records[0]["code_insee"] == "62119"
    if name == "invisible characters in a duplicate":
        assert ["doublon" in p.reason for p in with_arrow.problems] == [True]
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
    if name == "an invisible character in an id":  # the same key as PRL-00001 once read
        assert ["doublon" in p.reason for p in with_arrow.problems] == [True]
    if name in ("a byte order mark in a unit", "a soft hyphen in a parameter"):
        assert with_arrow.accepted
        assert {r["unite"] for r in with_arrow.records} <= {"mg/L"}
    if name == "a soft hyphen in a parameter":
        assert "Nitrates" in {r["parametre"] for r in with_arrow.records}


def test_python_spaces_are_what_str_strip_removes():
    spaces = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    assert spaces == arrow_chunks.PYTHON_SPACES


def test_arrow_reads_rows_as_csv_reader_does():
    data = "Titre\r\n\r\na;b;c\r\n1; 2 ;3\r\n\r\n;;\r\nx;y;é\r\n\r\n".encode()
    table = csv_file._csv_arrow(data, "utf-8", ";", 3)
    assert table.to_pydict() == {
        "f0": ["1", "", "", "x"],
        "f1": [" 2 ", "", "", "y"],
        "f2": ["3", "", "", "é"],
    }
    assert csv_file._csv_arrow(b"a;b\r\n1;2\r\n3\r\n", "utf-8", ";", 1) is None  # ragged
