"""One test per common rule of the collection kit: accepted when valid, rejected with the
right sheet, row and column when not. Workbooks are built in the test."""

from __future__ import annotations

import datetime as dt

import pytest

from dagster_project.contracts.model import CELL_UNITS
from dagster_project.ingest.normalize import CellError, CommuneMatcher, parse_month, parse_number
from dagster_project.ingest.validation.driver import validate_delivery

UDI = {("eau_udi", "udi"): {"UDI-BETHUNOIS", "UDI-LYS"}}
VOLUME_HEADER = [
    "udi",
    "mois",
    "volume_produit_m3",
    "volume_importe_m3",
    "volume_exporte_m3",
    "volume_consomme_autorise_m3",
]
ACTIVITY_HEADER = [
    "commune",
    "mois",
    "controles_spanc_vente",
    "branchements_eu_crees",
    "demandes_eaux_pluviales",
]


def volumes(*rows, header=VOLUME_HEADER, titles=()):
    return {"Volumes": [*titles, header, *rows]}


def run(contracts, make_context, path, source="eau_volumes", **ctx):
    ctx.setdefault("references", UDI)
    return validate_delivery(contracts[source], path, make_context(**ctx))


def only_problem(result):
    assert not result.accepted
    assert len(result.problems) == 1, [p.reason for p in result.problems]
    return result.problems[0]


# --- header search ----------------------------------------------------------------------


@pytest.mark.parametrize("n_titles", [0, 1, 10])
def test_header_found_below_up_to_ten_title_rows(contracts, make_context, workbook, n_titles):
    titles = [["Volumes d'eau potable 2025"]] + [[]] * (n_titles - 1) if n_titles else []
    path = workbook(volumes(["UDI-LYS", "2025-01", 10, 0, 0, 8], titles=titles))
    result = run(contracts, make_context, path)
    assert result.accepted, result.problems
    assert result.records[0]["_row_number"] == n_titles + 2


def test_header_beyond_ten_title_rows_is_rejected(contracts, make_context, workbook):
    titles = [["titre"]] * 11
    path = workbook(volumes(["UDI-LYS", "2025-01", 10, 0, 0, 8], titles=titles))
    problem = only_problem(run(contracts, make_context, path))
    assert "en-tête" in problem.reason


def test_first_sheet_holding_the_header_is_the_data_sheet(contracts, make_context, workbook):
    path = workbook(
        {
            "Notice": [["Mode d'emploi"], ["udi : code de l'UDI"]],
            **volumes(["UDI-LYS", "2025-01", 10, 0, 0, 8]),
            "Brouillon": [["n'importe quoi"], ["udi", "mois"]],
        }
    )
    result = run(contracts, make_context, path)
    assert result.accepted and result.sheet == "Volumes"


def test_a_second_sheet_holding_the_header_is_refused(contracts, make_context, workbook):
    """The kit: a register fits on one sheet; a second sheet whose header holds every
    required column is refused (its rows would be ignored), even a draft of one line."""
    path = workbook(
        {
            **volumes(["UDI-LYS", "2025-01", 10, 0, 0, 8]),
            "Brouillon": [VOLUME_HEADER, ["n'importe quoi"]],
        }
    )
    problem = only_problem(run(contracts, make_context, path))
    assert (problem.sheet, problem.row) == ("Brouillon", 1)
    assert "porte elle aussi l'en-tête et 1 ligne(s) remplie(s)" in problem.reason


def test_missing_required_column_names_the_column(contracts, make_context, workbook):
    header = [h for h in VOLUME_HEADER if h != "volume_produit_m3"]
    path = workbook(volumes(["UDI-LYS", "2025-01", 0, 0, 8], header=header))
    problem = only_problem(run(contracts, make_context, path))
    assert problem.column == "volume_produit_m3" and problem.sheet == "Volumes"


def test_header_matching_ignores_case_accents_spaces_and_underscores(
    contracts, make_context, workbook
):
    header = [
        " UDI ",
        "Mois",
        "Volume_Produit_M3",
        "volume importé m3",
        "VOLUME EXPORTE M3",
        "volume  consommé_autorisé m3",
        "Remarque",
    ]
    path = workbook(volumes(["UDI-LYS", "2025-01", 10, 0, 0, 8, "ok"], header=header))
    result = run(contracts, make_context, path)
    assert result.accepted, result.problems
    assert [w.column for w in result.warnings] == ["Remarque"]  # unknown column: warned


def test_header_with_unit_in_brackets_is_a_different_column(contracts, make_context, workbook):
    header = ["udi", "mois", "Volume produit (m3)", "volume_consomme_autorise_m3"]
    path = workbook(volumes(["UDI-LYS", "2025-01", 10, 8], header=header))
    problem = only_problem(run(contracts, make_context, path))
    assert problem.column == "volume_produit_m3"


# --- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("4 548", 4548.0),
        ("4 548,5", 4548.5),
        ("1 234 567,25", 1234567.25),
        ("4\u00a0548,5", 4548.5),
        ("4\u202f548", 4548.0),
        ("4548.5", 4548.5),
        ("4548,5", 4548.5),
        ("12 m3", 12.0),
        ("12 m³", 12.0),
        ("2 776 000 €", 2776000.0),
        ("2 776 000 EUR", 2776000.0),
        ("3,5 t", 3.5),
        ("3,5 tonnes", 3.5),
        ("1,5 j", 1.5),
        ("12\u200b500", 12500.0),  # an invisible character is not part of the number
    ],
)
def test_french_number_text(text, expected):
    """A trailing unit is read only when it is the column's own (``Column.cell_units``)."""
    unit = {"3": "m3", "³": "m3", "€": "eur", "R": "eur", "t": "t", "s": "t", "j": "jours"}.get(
        text[-1]
    )
    units = CELL_UNITS[unit] if unit else ()
    assert parse_number(text, units) == expected


@pytest.mark.parametrize("text", ["12,34,5", "douze", "4.548,5", "45 48", "1e3x", "NaN"])
def test_bad_number_text(text):
    with pytest.raises(CellError):
        parse_number(text)


@pytest.mark.parametrize(
    "text, unit, reason",
    [
        ("12 500 kg", "t", "unité « kg » différente de celle de la colonne (t)"),
        ("35 %", "eur", "unité « % » différente de celle de la colonne (€)"),
        ("125 000 €", "m3", "unité « € » différente de celle de la colonne (m3)"),
        ("1,2 M€", "eur", "unité « M€ »"),
        ("99,5 %", None, "unité « % » dans la cellule : cette colonne n'a pas d'unité"),
        ("12 t", None, "cette colonne n'a pas d'unité"),
        ("1,234.5", "t", "séparateur de milliers « , » non accepté"),
        ("1.234,5", "t", "séparateur de milliers « . » non accepté"),
        ("NaN", "t", "valeur NaN"),
    ],
)
def test_unit_not_the_columns_is_refused_never_converted(text, unit, reason):
    with pytest.raises(CellError) as refused:
        parse_number(text, CELL_UNITS[unit] if unit else ())
    assert reason in refused.value.reason


def test_french_numbers_in_a_workbook(contracts, make_context, workbook):
    path = workbook(volumes(["UDI-LYS", "2025-01", "4 548,5", "", None, "1\u00a0000 m3"]))
    result = run(contracts, make_context, path)
    assert result.accepted, result.problems
    record = result.records[0]
    assert record["volume_produit_m3"] == 4548.5
    assert record["volume_importe_m3"] == 0  # empty = 0
    assert record["volume_consomme_autorise_m3"] == 1000


def test_bad_number_rejected_at_row_and_column(contracts, make_context, workbook):
    path = workbook(
        volumes(["UDI-LYS", "2025-01", 10, 0, 0, 8], ["UDI-LYS", "2025-02", "dix", 0, 0, 8])
    )
    problem = only_problem(run(contracts, make_context, path))
    assert (problem.row, problem.column, problem.value) == (3, "volume_produit_m3", "dix")
    assert "nombre" in problem.reason


def test_negative_number_rejected(contracts, make_context, workbook):
    path = workbook(volumes(["UDI-LYS", "2025-01", -5, 0, 0, 8]))
    problem = only_problem(run(contracts, make_context, path))
    assert (problem.row, problem.column) == (2, "volume_produit_m3")
    assert "négative" in problem.reason


# --- months and dates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2025, 3, 17),
        "2025-03",
        "03/2025",
        "mars 2025",
        "Mars 2025",
        "MARS 2025",
        "17/03/2025",
        "2025-03-01",
    ],
)
def test_month_formats(value):
    assert parse_month(value) == dt.date(2025, 3, 1)


@pytest.mark.parametrize(
    "value, month",
    [
        ("janvier 2025", 1),
        ("Janv. 2025", 1),
        ("févr. 2025", 2),
        ("août 2025", 8),
        ("Déc. 2025", 12),
    ],
)
def test_french_month_names(value, month):
    assert parse_month(value) == dt.date(2025, month, 1)


def test_bad_month_rejected_at_row_and_column(contracts, make_context, workbook):
    path = workbook(
        volumes(["UDI-LYS", "janvier 2025", 10, 0, 0, 8], ["UDI-LYS", "brumaire 2025", 10, 0, 0, 8])
    )
    problem = only_problem(run(contracts, make_context, path))
    assert (problem.row, problem.column) == (3, "mois")
    assert "brumaire" in problem.reason


def test_month_outside_campaign_year_rejected(contracts, make_context, workbook):
    path = workbook(
        volumes(
            ["UDI-LYS", dt.datetime(2025, 12, 1), 10, 0, 0, 8], ["UDI-LYS", "2024-12", 1, 0, 0, 1]
        )
    )
    problem = only_problem(run(contracts, make_context, path))
    assert (problem.row, problem.column) == (3, "mois")
    assert "2025" in problem.reason


def test_dates_in_earlier_years_allowed_when_the_contract_says_so(
    contracts, make_context, workbook
):
    header = [
        "id_dossier",
        "code_insee",
        "dispositif",
        "nb_logements",
        "aide_agglo_eur",
        "aide_anah_eur",
        "montant_travaux_eur",
        "date_engagement",
    ]
    rows = [
        ["D1", "62119", "OPAH_RU", 1, 1000, 2000, 5000, "15/06/2022"],
        ["D2", "62119", "OPAH_RU", 1, 1000, 2000, 5000, "2014-06-15"],
        ["D3", "62119", "OPAH_RU", 1, 1000, 2000, 5000, dt.datetime(2027, 1, 2)],
    ]
    path = workbook({"Dossiers": [header, *rows]})
    result = run(contracts, make_context, path, source="amelioration_habitat", department="housing")
    assert [(p.row, p.column) for p in result.problems] == [
        (3, "date_engagement"),
        (4, "date_engagement"),
    ]
    assert "2015" in result.problems[0].reason and "futur" in result.problems[1].reason


# --- communes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, code",
    [
        ("BRUAY LA BUISSIERE", "62178"),
        ("Noeux les Mines", "62617"),
        ("St Venant", "62770"),
        ("Fouquières-lez-Béthune", "62350"),
        ("Fouquieres les Bethune", "62350"),
        ("la comte", "62232"),
        ("Béthune", "62119"),
    ],
)
def test_commune_names_match_the_official_list(communes, name, code):
    assert communes.from_name(name) == code


def test_commune_outside_the_agglomeration_rejected(contracts, make_context, workbook):
    rows = [["Béthune", "2025-01", 1, 2, 3], ["Lens", "2025-01", 1, 2, 3]]
    path = workbook({"Activité": [ACTIVITY_HEADER, *rows]})
    problem = only_problem(run(contracts, make_context, path, source="assainissement_activite"))
    assert (problem.row, problem.column, problem.value) == (3, "commune", "Lens")
    assert "agglomération" in problem.reason


def test_insee_code_outside_the_agglomeration_rejected(contracts, make_context, workbook):
    header = ["code_insee", *ACTIVITY_HEADER[1:]]
    rows = [[62119, "2025-01", 1, 2, 3], ["62498", "2025-01", 1, 2, 3]]
    path = workbook({"Activité": [header, *rows]})
    result = run(contracts, make_context, path, source="assainissement_activite")
    problem = only_problem(result)
    assert (problem.row, problem.column) == (3, "code_insee")


def test_ambiguous_commune_name_rejected():
    matcher = CommuneMatcher({"62001": "Saint-Pol", "62002": "St Pol"})
    with pytest.raises(CellError, match="ambigu"):
        matcher.from_name("saint pol")


# --- control totals -----------------------------------------------------------------------

RESEAU_HEADER = [
    "code_insee",
    "reseau",
    "mode_gestion",
    "lineaire_km",
    "lineaire_unitaire_km",
    "lineaire_renouvele_km",
    "nb_abonnes",
    "investissement_eur",
]


def reseau(total):
    return {
        "Réseaux": [
            RESEAU_HEADER,
            ["62119", "eau_potable", "regie", 10.5, None, 0.25, 100, 1000],
            ["62119", "assainissement", "delegation", 8, 2, 0, 90, 500],
            total,
        ]
    }


def test_control_total_row_is_checked_and_excluded(contracts, make_context, workbook):
    path = workbook(reseau(["TOTAL", None, None, 18.5, 2, 0.25, 190, "1 500"]))
    result = run(contracts, make_context, path, source="eau_reseau")
    assert result.accepted, result.problems
    assert len(result.records) == 2 and result.total_rows == 1


def test_wrong_control_total_rejected(contracts, make_context, workbook):
    path = workbook(reseau(["Total général", None, None, 18.6, 2, 0.25, 190, 1500]))
    problem = only_problem(run(contracts, make_context, path, source="eau_reseau"))
    assert (problem.row, problem.column, problem.value) == (4, "lineaire_km", "18.6")
    assert "18.5" in problem.reason


# --- duplicates -----------------------------------------------------------------------------


def test_duplicate_grain_keys_rejected(contracts, make_context, workbook):
    path = workbook(
        volumes(
            ["UDI-LYS", "2025-01", 10, 0, 0, 8],
            ["UDI-LYS", "2025-02", 10, 0, 0, 8],
            ["UDI-LYS", "janvier 2025", 11, 0, 0, 9],
        )
    )
    problem = only_problem(run(contracts, make_context, path))
    assert problem.row == 4 and "ligne 2" in problem.reason


# --- Excel errors ---------------------------------------------------------------------------


def test_excel_error_cells_rejected(contracts, make_context, workbook):
    path = workbook(
        volumes(["UDI-LYS", "2025-01", 10, 0, 0, 8], ["UDI-LYS", "2025-02", 1, 0, 0, "#N/A"]),
        errors=[("Volumes", "C2", "#DIV/0!")],
    )
    result = run(contracts, make_context, path)
    assert [(p.row, p.column, p.value) for p in result.problems] == [
        (2, "volume_produit_m3", "#DIV/0!"),
        (3, "volume_consomme_autorise_m3", "#N/A"),
    ]


def test_typed_error_text_rejected(contracts, make_context, workbook):
    path = workbook(volumes(["UDI-LYS", "2025-01", "#VALEUR!", 0, 0, 8]))
    problem = only_problem(run(contracts, make_context, path))
    assert "#VALEUR!" in problem.reason


# --- references ------------------------------------------------------------------------------


def test_unknown_udi_rejected(contracts, make_context, workbook):
    path = workbook(volumes(["UDI-INCONNUE", "2025-01", 10, 0, 0, 8]))
    problem = only_problem(run(contracts, make_context, path))
    assert (problem.row, problem.column) == (2, "udi")


# --- CSV ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding, sep",
    [("utf-8", ";"), ("utf-8-sig", ";"), ("cp1252", ";"), ("utf-8", ","), ("cp1252", ",")],
)
def test_csv_encodings_and_separators(contracts, make_context, tmp_path, encoding, sep):
    rows = [
        ACTIVITY_HEADER,
        ["Béthune", "janvier 2025", "3", "2", "1"],
        ["Nœux-les-Mines", "févr. 2025", "1", "0", "0"],
    ]
    if encoding == "cp1252":
        rows[2][0] = "Noeux-les-Mines"  # œ exists in cp1252, but keep one plain spelling too
        rows[1][0] = "Béthune"
    text = "\n".join(sep.join(r) for r in rows) + "\n"
    path = tmp_path / "assainissement_activite_2025.csv"
    path.write_bytes(text.encode(encoding))
    result = run(contracts, make_context, path, source="assainissement_activite")
    assert result.accepted, result.problems
    assert [r["code_insee"] for r in result.records] == ["62119", "62617"]
    assert result.records[1]["mois"] == dt.date(2025, 2, 1)


def test_csv_bad_value_located(contracts, make_context, tmp_path):
    text = ";".join(ACTIVITY_HEADER) + "\nBéthune;2025-01;3;2;1\nBéthune;2025-02;-1;2;1\n"
    path = tmp_path / "assainissement_activite_2025.csv"
    path.write_bytes(text.encode("cp1252"))
    problem = only_problem(run(contracts, make_context, path, source="assainissement_activite"))
    assert (problem.row, problem.column) == (3, "controles_spanc_vente")


# --- unreadable files ---------------------------------------------------------------------


def test_non_xlsx_renamed_is_rejected(contracts, make_context, tmp_path):
    path = tmp_path / "eau_volumes_2025.xlsx"
    path.write_text("udi;mois\n", encoding="utf-8")
    problem = only_problem(run(contracts, make_context, path))
    assert ".xlsx" in problem.reason


def test_empty_file_is_rejected(contracts, make_context, tmp_path):
    path = tmp_path / "eau_volumes_2025.xlsx"
    path.write_bytes(b"")
    problem = only_problem(run(contracts, make_context, path))
    assert "vide" in problem.reason


# --- what a person does not see, what is not the column's ---------------------------------


def test_invisible_characters_are_unicode_controls_and_formats():
    """normalize.INVISIBLE_CHARACTERS: Unicode's control (but tab and line breaks) and format
    characters (zero-width space, joiners, byte order mark, soft hyphen, direction marks)."""
    import re
    import unicodedata

    from dagster_project.ingest.normalize import INVISIBLE_CHARACTERS

    every = "".join(map(chr, range(0x110000)))
    expected = [c for c in every if unicodedata.category(c) in ("Cc", "Cf") and c not in "\t\n\r"]
    assert re.findall(f"[{INVISIBLE_CHARACTERS}]", every) == expected


@pytest.mark.parametrize(
    "unit, error",
    [("kg", "unité inconnue 'kg'"), ("t", None)],
)
def test_a_contract_unit_is_one_the_cells_can_carry(unit, error):
    from dagster_project.contracts.model import ContractError, parse_contract

    data = {
        "source_id": "x",
        "department": "waste",
        "grain": [],
        "columns": [{"name": "poids", "type": "number", "unit": unit}],
    }
    if error is None:
        assert parse_contract(data).columns[0].cell_units == CELL_UNITS[unit]
        return
    with pytest.raises(ContractError, match=error):
        parse_contract(data)


def test_the_units_of_the_contracts_columns(contracts):
    """The kit's units are declared in the contracts (``unit``), so that a cell may carry its
    column's own unit and no other: every column named after its unit declares it."""
    for contract in contracts.values():
        for column in contract.columns:
            suffix = column.name.rsplit("_", 1)[-1]
            if column.type in ("integer", "number") and suffix in CELL_UNITS:
                assert column.unit == suffix, (contract.source_id, column.name)
    assert contracts["rh_formation"].column("nb_jours").cell_units == ("j", "jour", "jours")
    assert contracts["eau_qualite"].column("resultat").cell_units == ()  # its unit: `unite`


def test_csv_declaring_its_separator(contracts, make_context, tmp_path):
    """Excel's « sep=, » first line says which separator the file uses."""
    text = "sep=,\n" + ",".join(ACTIVITY_HEADER) + "\nBéthune,2025-01,3,2,1\nAuchel,2025-02,1,0,0\n"
    path = tmp_path / "assainissement_activite_2025.csv"
    path.write_bytes(text.encode("utf-8"))
    result = run(contracts, make_context, path, source="assainissement_activite")
    assert result.accepted, result.problems
    assert [r["_row_number"] for r in result.records] == [3, 4]


@pytest.mark.parametrize(
    "suffix, reason",
    [
        (".xlsm", "classeur Excel avec macros"),
        (".xls", "Excel 97-2003"),
        (".ods", "LibreOffice"),
        (".txt", "CSV (séparateur : point-virgule)"),
    ],
)
def test_other_formats_are_refused_with_how_to_save_them(
    contracts, make_context, tmp_path, suffix, reason
):
    path = tmp_path / f"eau_volumes_2025{suffix}"
    path.write_bytes(b"PK\x03\x04 whatever")
    problem = only_problem(run(contracts, make_context, path))
    assert problem.reason.startswith(f"format {suffix} non accepté") and reason in problem.reason


def test_other_formats_are_deliveries(tmp_path, contracts):
    """An .xlsm (or .xls, .ods...) named after a source is discovered, to be refused with a
    report, never skipped; reports and notices are not deliveries."""
    from dagster_project.ingest.discovery import discover

    folder = tmp_path / "2025" / "water"
    folder.mkdir(parents=True)
    for name in (
        "eau_volumes_2025.xlsm",
        "eau_reseau_2025.ods",
        "eau_udi_2025.xls",
        "eau_udi_2025.xls.rejet.csv",
        "notes.docx",
    ):
        (folder / name).write_bytes(b"x")
    found = sorted(d.path.name for d in discover(tmp_path, contracts))
    assert found == ["eau_reseau_2025.ods", "eau_udi_2025.xls", "eau_volumes_2025.xlsm"]


def test_number_formats_that_show_the_value_as_it_is_are_accepted(
    contracts, make_context, tmp_path
):
    """A cell shows what is read: a percentage format on a share (quotite, at most 1), a
    format showing the column's own unit, hiding zeros, are fine; the corpus holds the others
    (a percentage in euros, « kg » in tonnes, ÷ 1 000, ;;;)."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["code_insee", "mois", "flux", "tonnage_t"])
    sheet.append(["62119", "2025-01", "OMR", 812.4])
    sheet.append(["62119", "2025-01", "VERRE", 12.5])
    sheet.append(["62119", "2025-01", "EMB_PAP", 0])
    sheet["D2"].number_format = '#,##0.0 "t"'
    sheet["D3"].number_format = "# ##0,00 [$t-40C]"
    sheet["D4"].number_format = "0;-0;;@"  # a zero shown as a blank
    path = tmp_path / "dechets_collecte_2025.xlsx"
    book.save(path)
    result = run(contracts, make_context, path, source="dechets_collecte", department="waste")
    assert result.accepted, result.problems
    assert [r["tonnage_t"] for r in result.records] == [812.4, 12.5, 0]

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["matricule", "date_observation", "date_naissance", "sexe", "statut"]
                 + ["categorie", "direction", "quotite", "date_entree"])  # fmt: skip
    sheet.append(["M1", dt.datetime(2025, 10, 1), dt.datetime(1980, 1, 1), "F", "TITULAIRE"]
                 + ["A", "Eau", 0.8, dt.datetime(2010, 1, 1)])  # fmt: skip
    sheet["H2"].number_format = "0%"  # shows 80 %: the share 0.8 it holds
    path = tmp_path / "rh_effectifs_2025.xlsx"
    book.save(path)
    from dagster_project.ingest.privacy import pseudonymiser

    result = run(
        contracts,
        make_context,
        path,
        source="rh_effectifs",
        department="hr",
        pseudonymise=pseudonymiser(b"k" * 32),
    )
    assert result.accepted, result.problems
    assert result.records[0]["quotite"] == 0.8


@pytest.mark.parametrize(
    "code, percent, unit, scaled, hides",
    [
        ("0%", True, "", False, (False, False, False)),
        ('#,##0 "kg"', False, "kg", False, (False, False, False)),
        ('#,##0\\ "t"', False, "t", False, (False, False, False)),
        ("#,##0.00 [$€-40C]", False, "€", False, (False, False, False)),
        ("# ##0 €", False, "€", False, (False, False, False)),
        ("#,##0,", False, "", True, (False, False, False)),
        (";;;", False, "", False, (True, True, True)),
        ('"n.c."', False, "", False, (True, True, True)),
        ("0;-0;;@", False, "", False, (False, False, True)),
    ],
)
def test_number_formats_read_from_the_workbook(code, percent, unit, scaled, hides):
    from dagster_project.ingest.readers.number_formats import _number_format
    from dagster_project.ingest.readers.sheet import NumberFormat

    assert _number_format(code) == NumberFormat(code, percent, unit, scaled, hides)


@pytest.mark.parametrize(
    "code", ["General", "#,##0", "#,##0.00_);(#,##0.00)", "[Red]0.00", "dd/mm/yyyy", "@", "0.0E+00"]
)
def test_number_formats_showing_the_number_as_it_is(code):
    from dagster_project.ingest.readers.number_formats import _number_format

    assert _number_format(code) is None
