"""A long, clean worksheet is read by fastexcel into typed Arrow columns and judged column by
column (readers.xlsx_file._fastexcel_sheet, validation.arrow_chunks._python_values); any other
sheet, and any delivery whose Arrow columns hold a problem or something only the
cell-by-cell rules explain, is judged on python-calamine's values (``Sheet.reread``).

The two paths must give the same answer: each workbook below is validated both ways (the
Arrow path turned off by raising ``ARROW_MIN_ROWS``) and the results compared whole:
verdict, problems with their row, column, value and reason, warnings, accepted rows and
lineage. Where the Arrow path is expected to decide alone, the test also checks that it did
(no second reading by calamine)."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pytest

from dagster_project.ingest.readers import xlsx_file
from dagster_project.ingest.readers.archive import check_archive
from dagster_project.ingest.readers.scan import scan_archive
from dagster_project.ingest.validation import driver
from dagster_project.ingest.validation.driver import validate_delivery

QUALITY = [
    "ID prélèvement",
    "Date prélèvement",
    "UDI",
    "Type analyse",
    "Paramètre",
    "Résultat",
    "Unité",
    "Limite qualité",
    "Conforme",
]
ACTIVITY = [
    "commune",
    "mois",
    "controles_spanc_vente",
    "branchements_eu_crees",
    "demandes_eaux_pluviales",
]
UDI = {("eau_udi", "udi"): {"UDI-BETHUNOIS", "UDI-LYS", "12"}}
NAN_MARK = 987654.25  # written by openpyxl, then made a NaN in the XML (``_nan``)


def _quality(n: int, start: int = 0) -> list[list[object]]:
    return [
        [
            f"PRL-{k:05d}",
            dt.datetime(2025, 1 + k % 12, 1 + k % 28),
            "UDI-LYS" if k % 3 else "UDI-BETHUNOIS",
            "microbiologique" if k % 2 else "physico-chimique",
            f"P{k % 7}",
            k % 5 + 0.5,
            "mg/L",
            10,
            "oui" if k % 4 else None,
        ]
        for k in range(start, start + n)
    ]


def _activity(n: int) -> list[list[object]]:
    communes = ["Béthune", "Auchel", "Bruay-la-Buissière"]
    return [
        [communes[k % 3], f"2025-{1 + k // 3 % 12:02d}", k % 4, 2, 1.0] for k in range(min(n, 36))
    ]


def _with(rows: list[list[object]], at: int, **columns) -> list[list[object]]:
    """``rows`` with row ``at`` (0-based, below the header) changed: column index -> value."""
    rows = [list(row) for row in rows]
    for index, value in columns.items():
        rows[at][int(index.removeprefix("c"))] = value
    return rows


QUALITY_BOOKS = {
    "clean, several chunks": [QUALITY, *_quality(23)],
    "optional cells left empty": [QUALITY, *_quality(9)],
    "spaces around texts": [
        QUALITY,
        *[[f" {r[0]} ", r[1], r[2], r[3], f" {r[4]}  ", *r[5:]] for r in _quality(8)],
    ],
    "dates with a time of day": _with(
        [QUALITY, *_quality(6)], 3, c1=dt.datetime(2025, 3, 4, 9, 30)
    ),
    "dates as text": [QUALITY, *[[r[0], r[1].strftime("%d/%m/%Y"), *r[2:]] for r in _quality(6)]],
    "a date written 32/01": _with(
        [QUALITY, *[[r[0], r[1].strftime("%d/%m/%Y"), *r[2:]] for r in _quality(6)]],
        4,
        c1="32/01/2025",
    ),
    "a time of day in a date column": _with([QUALITY, *_quality(5)], 2, c1=dt.time(10, 15)),
    "a date out of the campaign": _with([QUALITY, *_quality(5)], 2, c1=dt.datetime(2019, 5, 6)),
    "text in a number column": _with([QUALITY, *_quality(7)], 5, c5="n.c."),
    "a negative result": _with([QUALITY, *_quality(7)], 5, c5=-1.5),
    "a zero limit": _with([QUALITY, *_quality(7)], 2, c7=0),
    "empty required cell": _with([QUALITY, *_quality(7)], 4, c2=None),
    "empty required number": _with([QUALITY, *_quality(7)], 4, c5=None),
    "blank id": _with([QUALITY, *_quality(7)], 4, c0="   "),
    "empty id": _with([QUALITY, *_quality(7)], 4, c0=None),
    "id reading total": _with([QUALITY, *_quality(7)], 6, c0="Total analyses"),
    "empty row in the middle": [QUALITY, *_quality(4), [None] * 9, *_quality(3, start=4)],
    "type not allowed": _with([QUALITY, *_quality(5)], 1, c3="chimique"),
    "unknown udi": _with([QUALITY, *_quality(5)], 1, c2="UDI-ATLANTIS"),
    "udi given as a number": _with([QUALITY, *_quality(5)], 1, c2=12),
    "ids as numbers": [QUALITY, *[[1000 + k, *r[1:]] for k, r in enumerate(_quality(6))]],
    "ids as whole and decimal floats": [
        QUALITY,
        *[[1000 + k + (0.25 if k == 2 else 0.0), *r[1:]] for k, r in enumerate(_quality(6))],
    ],
    "ids that are dates, one a time of day": _with(
        [QUALITY, *[[dt.datetime(2025, 2, 3 + k), *r[1:]] for k, r in enumerate(_quality(6))]],
        2,
        c0=dt.time(7, 0),
    ),
    "an id that is a date": _with([QUALITY, *_quality(5)], 3, c0=dt.datetime(2025, 2, 3)),
    "ids that are dates": [
        QUALITY,
        *[[dt.datetime(2025, 2, 3, k % 2 * 7), *r[1:]] for k, r in enumerate(_quality(6))],
    ],
    "conforme as booleans": [QUALITY, *[[*r[:8], k % 2 == 0] for k, r in enumerate(_quality(6))]],
    "conforme as text and booleans": _with([QUALITY, *_quality(6)], 2, c8=True),
    "conforme not a yes or no": _with([QUALITY, *_quality(6)], 2, c8="peut-être"),
    "duplicate grain": [QUALITY, *_quality(5), _quality(1)[0]],
    "excel error as text": _with([QUALITY, *_quality(5)], 2, c0="#DIV/0!"),
    "unknown column": [
        [*QUALITY, "Commentaire"],
        *[[*r, "vu"] for r in _quality(5)],
    ],
    "repeated column": [[*QUALITY, "UDI"], *[[*r, r[2]] for r in _quality(5)]],
    "a column without header": [[*QUALITY, None], *[[*r, 1] for r in _quality(5)]],
    "missing required column": [QUALITY[:-2], *[r[:-2] for r in _quality(5)]],
    "header only": [QUALITY],
    "title above the header": [["Contrôle sanitaire 2025"], [], QUALITY, *_quality(5)],
    "titles above the header": [
        ["Contrôle sanitaire 2025", None, "Source : ARS"],
        ["Extraction du 15/01/2026"],
        [],
        QUALITY,
        *_quality(5),
    ],
    "a wide title row": [
        ["Contrôle", "sanitaire", "2025", "ARS", "UDI", "tous", "paramètres", "x", "y"],
        QUALITY,
        *_quality(5),
    ],
    "a data row above the header": [_quality(1)[0], QUALITY, *_quality(5)],
    "a header repeated above the header": [QUALITY, QUALITY, *_quality(5)],
    "a shorter header above the header": [QUALITY[:-1], QUALITY, *_quality(5)],
    "the header too low": [*([["titre"]] * 11), QUALITY, *_quality(5)],
    # invisible characters are removed (what a person reads), the same on both paths
    "an invisible character in an id": _with(
        [QUALITY, *_quality(6)], 4, c0="PRL-00002\u200b", c4="P2"
    ),
    "an invisible first cell": _with([QUALITY, *_quality(6)], 3, c0="\u200b"),
    "a byte order mark in a type": _with([QUALITY, *_quality(6)], 3, c3="\ufeffmicrobiologique"),
    "a soft hyphen in a parameter": _with([QUALITY, *_quality(6)], 3, c4="Nitra\u00adtes"),
    # a unit in a column without one, NaN: refused
    "a unit in a result": _with([QUALITY, *_quality(6)], 3, c5="12 kg"),
    "a result of NaN": _with([QUALITY, *_quality(6)], 3, c5=NAN_MARK),
    "an id of NaN": _with([QUALITY, *_quality(6)], 3, c0=NAN_MARK),
}

ACTIVITY_BOOKS = {
    "clean": [ACTIVITY, *_activity(30)],
    "a decimal count": _with([ACTIVITY, *_activity(9)], 4, c2=2.5),
    "a month as a date": _with([ACTIVITY, *_activity(9)], 4, c1=dt.datetime(2025, 2, 1)),
    "months as dates": [
        ACTIVITY,
        *[[r[0], dt.datetime(2025, 1 + k // 3, 1), *r[2:]] for k, r in enumerate(_activity(9))],
    ],
    "an unknown commune": _with([ACTIVITY, *_activity(9)], 4, c0="Atlantis"),
    "a commune code": _with([ACTIVITY, *_activity(9)], 4, c0="62119"),
    "a boolean count": _with([ACTIVITY, *_activity(9)], 4, c3=True),
    "a word joiner in a commune": _with([ACTIVITY, *_activity(9)], 4, c0="Béthune\u2060"),
    "a count of NaN": _with([ACTIVITY, *_activity(9)], 4, c3=NAN_MARK),
    "control total": [
        ACTIVITY,
        *_activity(6),
        ["Total", None, sum(r[2] for r in _activity(6)), 12, 6],
    ],
}


def _write(path, rows, *, notice: bool = True, at: str = "A1", hidden_row: int | None = None):
    book = openpyxl.Workbook()
    sheet = book.active
    if notice:
        sheet.title = "Notice"
        sheet["A1"] = "Notice : une ligne par résultat."
        sheet = book.create_sheet("Données")
    first = openpyxl.utils.cell.coordinate_from_string(at)
    column0 = openpyxl.utils.column_index_from_string(first[0])
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is not None:
                cell = sheet.cell(first[1] + r, column0 + c, value)
                if isinstance(value, dt.datetime | dt.date):
                    cell.number_format = "dd/mm/yyyy hh:mm" if value.hour else "dd/mm/yyyy"
                if isinstance(value, dt.time):
                    cell.number_format = "hh:mm"
    if hidden_row is not None:
        sheet.row_dimensions[hidden_row].hidden = True
    book.save(path)
    _nan(path)


def _nan(path) -> None:
    """The cells holding ``NAN_MARK`` made numeric NaN cells (which no library writes)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        parts = [(info.filename, archive.read(info)) for info in archive.infolist()]
    mark = f"<v>{NAN_MARK}</v>".encode()
    if not any(mark in data for _, data in parts):
        return
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts:
            archive.writestr(name, data.replace(mark, b"<v>NaN</v>"))


def _both_ways(monkeypatch, validate):
    """(result with the Arrow path, result cell by cell, whether the Arrow path decided)."""
    monkeypatch.setattr(driver, "CHUNK_ROWS", 3)  # several chunks, each judged on its own
    read, reread = [], []
    real_read, real_python = xlsx_file._fastexcel_sheet, driver._python_sheets

    def fastexcel_sheet(path, name, scan):
        sheet = real_read(path, name, scan)
        read.append(sheet is not None)
        return sheet

    def python_sheets(sheets):
        reread.append([s.name for s in sheets if s.reread is not None])
        return real_python(sheets)

    monkeypatch.setattr(xlsx_file, "_fastexcel_sheet", fastexcel_sheet)
    monkeypatch.setattr(driver, "_python_sheets", python_sheets)
    monkeypatch.setattr(xlsx_file, "ARROW_MIN_ROWS", 2)  # the data sheet, not the notice
    with_arrow = validate()
    arrow_decided = read == [True] and not any(reread)
    monkeypatch.setattr(xlsx_file, "ARROW_MIN_ROWS", 10**12)
    read.clear()
    cell_by_cell = validate()
    assert read == []  # the cell-by-cell run never asked fastexcel
    return with_arrow, cell_by_cell, arrow_decided


BOOKS = {"eau_qualite": QUALITY_BOOKS, "assainissement_activite": ACTIVITY_BOOKS}
REFERENCES = {"eau_qualite": UDI}
# the workbooks the Arrow path must decide alone (no second reading by calamine)
ARROW_DECIDES = {
    ("eau_qualite", name)
    for name in (
        "clean, several chunks",
        "optional cells left empty",
        "spaces around texts",
        "dates with a time of day",
        "dates as text",
        "unknown udi",  # a rule on the whole table: same table either way
        "ids as numbers",
        "ids as whole and decimal floats",
        "ids that are dates",
        "conforme as booleans",
        "duplicate grain",
        "title above the header",
        "titles above the header",
    )
} | {("assainissement_activite", "clean"), ("assainissement_activite", "months as dates")}


@pytest.mark.parametrize(
    ("source_id", "name"), [(source_id, name) for source_id in BOOKS for name in BOOKS[source_id]]
)
def test_workbook_same_answer_both_ways(
    contracts, outcome, make_context, tmp_path, monkeypatch, source_id, name
):
    path = tmp_path / f"{source_id}_2025.xlsx"
    _write(path, BOOKS[source_id][name])
    contract = contracts[source_id]
    references = REFERENCES.get(source_id)
    with_arrow, cell_by_cell, arrow_decided = _both_ways(
        monkeypatch,
        lambda: validate_delivery(contract, path, make_context(references=references)),
    )
    assert outcome(with_arrow) == outcome(cell_by_cell)
    if (source_id, name) in ARROW_DECIDES:
        assert arrow_decided
    if name == "spaces around texts":
        assert with_arrow.records[0]["id_prelevement"] == "PRL-00000"
        assert with_arrow.records[0]["parametre"] == "P0"
    if name == "clean, several chunks":
        assert with_arrow.accepted and len(with_arrow.records) == 23
        assert [r["_row_number"] for r in with_arrow.records] == list(range(2, 25))
    if "NaN" in name:  # never an empty cell (then 0): refused
        assert [p.reason.startswith("valeur NaN") for p in with_arrow.problems] == [True]
    if name == "an invisible character in an id":  # PRL-00002 twice once read
        assert ["doublon" in p.reason for p in with_arrow.problems] == [True]
    if name in ("a byte order mark in a type", "a soft hyphen in a parameter"):
        assert with_arrow.accepted
        assert {r["type_analyse"] for r in with_arrow.records} <= {
            "microbiologique",
            "physico-chimique",
        }
        assert "Nitra\u00adtes" not in {r["parametre"] for r in with_arrow.records}
    if name == "a word joiner in a commune":
        assert with_arrow.accepted


@pytest.mark.parametrize(
    "layout",
    [
        {"at": "B1"},  # a range not starting at A1: the row and column of each cell would shift
        {"at": "A3"},  # two empty rows above the header
        {"hidden_row": 4},
        {"notice": False},
    ],
)
def test_layouts_same_answer_both_ways(
    contracts, outcome, make_context, tmp_path, monkeypatch, layout
):
    path = tmp_path / "eau_qualite_2025.xlsx"
    _write(path, [QUALITY, *_quality(7)], **layout)
    contract = contracts["eau_qualite"]
    with_arrow, cell_by_cell, arrow_decided = _both_ways(
        monkeypatch, lambda: validate_delivery(contract, path, make_context(references=UDI))
    )
    assert outcome(with_arrow) == outcome(cell_by_cell)
    assert arrow_decided == (layout == {"notice": False})


def test_error_cells_and_uncached_formulas_stay_with_calamine(tmp_path, monkeypatch):
    """The scan sees what fastexcel would turn into empty cells: such a sheet is not offered."""
    monkeypatch.setattr(xlsx_file, "ARROW_MIN_ROWS", 1)
    path = tmp_path / "book.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    for row in [QUALITY, *_quality(3)]:
        sheet.append(row)
    sheet["F3"] = "#N/A"  # openpyxl writes it as an error cell (t="e")
    book.save(path)
    (parsed,) = xlsx_file.read_xlsx(path)
    assert parsed.reread is None and parsed.errors == {(2, 5): "#N/A"}
    sheet["F3"] = "=1/0"  # a formula saved without its value
    book.save(path)
    (parsed,) = xlsx_file.read_xlsx(path)
    assert parsed.reread is None and parsed.uncached_formulas == {(2, 5)}
    sheet["F3"] = 1.5
    book.save(path)
    (parsed,) = xlsx_file.read_xlsx(path)
    assert parsed.reread is not None and parsed.rows == [QUALITY]


def test_head_rows_counted_by_the_scan(tmp_path):
    path = tmp_path / "book.xlsx"
    _write(path, [["Titre", None, "source"], [], ["a", "b", "c", "d"], *[[1, 2, 3, 4]] * 12])
    with check_archive(path) as archive:
        scan = scan_archive(path, archive)["Données"]
    assert scan.head_filled == {0: 2, 2: 4, **{row: 4 for row in range(3, 11)}}
    assert xlsx_file._header_guess(scan) == 2


def test_first_cell_seen_by_the_scan(tmp_path):
    path = tmp_path / "book.xlsx"
    book = openpyxl.Workbook()
    book.active["A1"] = "x"
    book.active["B2"] = 1
    book.save(path)
    with check_archive(path) as archive:
        (scan,) = scan_archive(path, archive).values()
    assert scan.first_cell == b"A1"
    book.active["A1"] = None
    book.active["A1"].number_format = "0.00"  # a styled cell without a value: not the first
    book.save(path)
    with check_archive(path) as archive:
        (scan,) = scan_archive(path, archive).values()
    assert scan.first_cell is None


def test_demo_campaign_same_answer_both_ways(contracts, outcome, make_context, monkeypatch):
    """Every workbook of the bundled campaign (three years, every source, the flawed
    deliveries included), validated both ways."""
    from pathlib import Path

    from dagster_project.ingest.discovery import discover
    from dagster_project.ingest.privacy import pseudonymiser

    root = Path(__file__).resolve().parents[3] / "sources"
    files = [f for f in discover(root, contracts) if f.path.suffix == ".xlsx"]
    decided = 0
    for delivery in files:
        contract = contracts[delivery.source_id]

        def validate(delivery=delivery, contract=contract):
            context = make_context(
                year=delivery.campaign_year,
                department=delivery.department,
                pseudonymise=pseudonymiser(b"k" * 32),
            )
            return validate_delivery(contract, delivery.path, context)

        with_arrow, cell_by_cell, arrow_decided = _both_ways(monkeypatch, validate)
        assert outcome(with_arrow) == outcome(cell_by_cell), delivery.path.name
        decided += arrow_decided
    assert len(files) > 100 and decided > len(files) // 2


@pytest.mark.parametrize("authorised", [None, 10_000])
def test_rules_between_cells_same_answer_both_ways(
    contracts, outcome, make_context, tmp_path, monkeypatch, authorised
):
    """Rules between the cells of a row (here: authorisations ≤ requests) run on the Arrow
    columns too; a row breaking one sends the delivery to the cell-by-cell path."""
    from pathlib import Path

    source = Path(__file__).resolve().parents[3] / "sources/2025/housing/permis_de_louer_2025.xlsx"
    book = openpyxl.load_workbook(source)
    sheet = book.active
    if authorised is not None:
        sheet.cell(5, 5, authorised)
    path = tmp_path / "permis_de_louer_2025.xlsx"
    book.save(path)
    contract = contracts["permis_de_louer"]
    with_arrow, cell_by_cell, arrow_decided = _both_ways(
        monkeypatch, lambda: validate_delivery(contract, path, make_context(department="housing"))
    )
    assert outcome(with_arrow) == outcome(cell_by_cell)
    assert arrow_decided == (authorised is None)
    assert with_arrow.accepted == (authorised is None)


HIDDEN_LAYOUTS = {
    "hidden column": "colonne masquée (ou de largeur nulle) contenant des données",
    "row of height 0.1": "ligne masquée contenant des données (hauteur de ligne nulle)",
    "rows hidden by a filter": "(cachée par le filtre automatique A1:I8)",
    "hidden copy first": "la feuille « Copie » (masquée) porte elle aussi l'en-tête",
    "very hidden copy first": "la feuille « Copie » (masquée) porte elle aussi l'en-tête",
    "visible copy": "la feuille « Copie » porte elle aussi l'en-tête et 7 ligne(s)",
    "rest in Feuil2": "la feuille « Feuil2 » contient 2 ligne(s) qui ont la forme des lignes",
    "data sheet hidden": "la feuille « Données », qui porte l'en-tête et les données, est masquée",
}


@pytest.mark.parametrize("layout", list(HIDDEN_LAYOUTS))
def test_hidden_and_split_layouts_same_answer_both_ways(
    contracts, outcome, make_context, tmp_path, monkeypatch, layout
):
    """What a person does not see is refused, and a register fits on one sheet: the same
    answer on both paths, whichever sheet fastexcel read."""
    rows = [QUALITY, *_quality(7)]
    path = tmp_path / "eau_qualite_2025.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Notice"
    book.active["A1"] = "Notice : une ligne par résultat."
    data = book.create_sheet("Données")
    for row in rows[:6] if layout == "rest in Feuil2" else rows:
        data.append(row)
    if layout == "hidden column":
        data.column_dimensions["G"].hidden = True
    if layout == "row of height 0.1":
        data.row_dimensions[4].height = 0.1
    if layout == "rows hidden by a filter":
        data.auto_filter.ref = "A1:I8"
        data.auto_filter.add_filter_column(0, ["PRL-00000"])
        for row in range(3, 9):
            data.row_dimensions[row].hidden = True
    if "copy" in layout:
        copy = book.create_sheet("Copie", 0 if "first" in layout else None)
        for row in rows:
            copy.append(row)
        copy.sheet_state = {
            "hidden copy first": "hidden",
            "very hidden copy first": "veryHidden",
        }.get(layout, "visible")
    if layout == "rest in Feuil2":
        rest = book.create_sheet("Feuil2")
        for row in rows[6:]:
            rest.append(row)
    if layout == "data sheet hidden":
        data.sheet_state = "hidden"
    book.save(path)
    contract = contracts["eau_qualite"]
    with_arrow, cell_by_cell, _ = _both_ways(
        monkeypatch, lambda: validate_delivery(contract, path, make_context(references=UDI))
    )
    assert outcome(with_arrow) == outcome(cell_by_cell)
    assert not with_arrow.accepted
    assert any(HIDDEN_LAYOUTS[layout] in p.reason for p in with_arrow.problems), [
        p.reason for p in with_arrow.problems
    ]
