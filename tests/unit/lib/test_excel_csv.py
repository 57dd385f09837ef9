"""The CSV files people open with a double-click are in French Excel's dialect (issue 18,
point 3): UTF-8 with BOM, « ; », CRLF, decimal comma, no thousands separator, dates JJ/MM/AAAA,
text neutralised (csv_safety); written through a temporary file renamed over the name."""

from __future__ import annotations

import datetime as dt

import pytest

from dagster_project.lib.csv_safety import excel_cell, excel_number, write_excel_csv


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (1234.5, "1234,5"),
        (-3.5, "-3,5"),
        (1760451.0, "1760451"),
        (12, "12"),
        (0.1 + 0.2, "0,3"),  # Excel's 15 significant digits
        (1e20, "1e+20"),
        (None, ""),
        (float("nan"), ""),
    ],
)
def test_excel_number(value, written):
    assert excel_number(value) == written


def test_excel_cell():
    assert excel_cell("=SOMME(A1)") == "'=SOMME(A1)"
    assert excel_cell("Béthune") == "Béthune"
    assert excel_cell(dt.date(2025, 12, 31)) == "31/12/2025"
    assert excel_cell(dt.datetime(2026, 1, 15, 9, 30)) == "15/01/2026 09:30"
    assert excel_cell(2.5) == "2,5" and excel_cell(None) == ""


def test_write_excel_csv(tmp_path):
    path = tmp_path / "x.csv"
    path.symlink_to(tmp_path / "ailleurs.csv")  # a link at that name is replaced, not followed
    write_excel_csv(path, ["commune", "valeur"], [["Béthune", 1234.5], ["@x", None]])
    assert not path.is_symlink() and not (tmp_path / "ailleurs.csv").exists()
    assert path.read_bytes() == (
        b"\xef\xbb\xbfcommune;valeur\r\n" + "Béthune;1234,5\r\n'@x;\r\n".encode()
    )
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]  # no temporary file left
