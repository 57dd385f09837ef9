"""Blank campaign workbooks derived from the contracts (dagster_project/campaign/templates/).

The main test is a round trip for every source: generate the template, fill it the way a
department would (openpyxl, values respecting the contract), and check the ingestion engine
accepts it from the ``Données`` sheet without a warning.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import openpyxl
import pytest

from dagster_project.campaign.templates.layout import (
    DATA_SHEET,
    INDICATORS_SHEET,
    LISTS_SHEET,
    NOTICE_SHEET,
)
from dagster_project.campaign.templates.workbook import write_templates
from dagster_project.contracts.model import default_contracts
from dagster_project.contracts.reference import direction_of
from dagster_project.ingest.privacy import pseudonymiser
from dagster_project.ingest.validation.driver import validate_delivery
from dagster_project.settings import CATALOGUE_CSV, COMMUNES_CSV

YEAR = 2025
DEADLINE = (dt.date(2026, 3, 13), "pilotage.kpi@bethunebruay.fr")
DECLARING_DEPARTMENT = "culture"  # department whose declared template is filled in the round trip
UDI = "UDI-LYS"


def _catalogue_declared() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with CATALOGUE_CSV.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["computation"] == "declared":
                out.setdefault(row["department"], []).append(row["indicator_id"])
    return out


def _commune_codes() -> list[str]:
    with COMMUNES_CSV.open(encoding="utf-8") as handle:
        return sorted(row["code_insee"] for row in csv.DictReader(handle))


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    """Every template of the campaign, once for the module (about 3 s)."""
    out = tmp_path_factory.mktemp("templates")
    paths = write_templates(YEAR, out, deadlines={("water", "eau_volumes"): DEADLINE})
    assert paths == sorted(paths) and all(p.is_file() for p in paths)
    return out


def template(out_dir: Path, department: str, source_id: str) -> Path:
    return out_dir / department / f"{source_id}_{YEAR}.xlsx"


# --- what a department types --------------------------------------------------------------

# source_id -> (department, rows as {contract column: value}); commune columns are filled under
# the template's `code_insee` header.
C1, C2, C3 = "62119", "62178", "62023"  # Béthune, Bruay-la-Buissière, Allouagne
EXAMPLES: dict[str, tuple[str, list[dict[str, object]]]] = {
    "eau_udi": ("water", []),  # every commune: built from the template's own list below
    "eau_volumes": (
        "water",
        [
            {
                "udi": UDI,
                "mois": f"{YEAR}-03",
                "volume_produit_m3": 120_000,
                "volume_consomme_autorise_m3": "98 450,5",
            },
            {
                "udi": UDI,
                "mois": dt.date(YEAR, 4, 1),
                "volume_produit_m3": 118_000.25,
                "volume_importe_m3": 2_000,
                "volume_exporte_m3": 0,
                "volume_consomme_autorise_m3": 97_000,
            },
        ],
    ),
    "eau_qualite": (
        "water",
        [
            {
                "id_prelevement": "ARS-2025-0001",
                "date_prelevement": dt.date(YEAR, 3, 4),
                "udi": UDI,
                "type_analyse": "microbiologique",
                "parametre": "E. coli",
                "resultat": 0,
                "unite": "n/100mL",
                "limite_qualite": 1,
                "conforme": "oui",
            },
            {
                "id_prelevement": "ARS-2025-0001",
                "date_prelevement": "04/03/2025",
                "udi": UDI,
                "type_analyse": "physico-chimique",
                "parametre": "Nitrates",
                "resultat": "12,4",
                "unite": "mg/L",
                "limite_qualite": 50,
            },
        ],
    ),
    "eau_reseau": (
        "water",
        [
            {
                "code_insee": C1,
                "reseau": "eau_potable",
                "mode_gestion": "regie",
                "lineaire_km": 152.3,
                "lineaire_renouvele_km": 1.2,
                "nb_abonnes": 11_250,
                "investissement_eur": 850_000,
            },
            {
                "code_insee": C1,
                "reseau": "assainissement",
                "mode_gestion": "delegation",
                "lineaire_km": 140,
                "lineaire_unitaire_km": 60.5,
                "lineaire_renouvele_km": 0,
                "nb_abonnes": 10_900,
                "investissement_eur": "1 200 000 €",
            },
        ],
    ),
    "assainissement_activite": (
        "water",
        [
            {
                "code_insee": C1,
                "mois": f"{YEAR}-01",
                "controles_spanc_vente": 3,
                "branchements_eu_crees": 2,
                "demandes_eaux_pluviales": 0,
            },
            {
                "code_insee": C2,
                "mois": f"janvier {YEAR}",
                "controles_spanc_vente": 1,
                "branchements_eu_crees": 0,
                "demandes_eaux_pluviales": 4,
            },
        ],
    ),
    "dechets_collecte": (
        "waste",
        [
            {"code_insee": C1, "mois": f"{YEAR}-03", "flux": "OMR", "tonnage_t": 812.4},
            {"code_insee": C1, "mois": f"{YEAR}-03", "flux": "VERRE", "tonnage_t": "95,2"},
            {"code_insee": C3, "mois": f"{YEAR}-03", "flux": "BIODECHETS", "tonnage_t": 40},
        ],
    ),
    "dechets_prevention": (
        "waste",
        [
            {
                "id_action": "PREV-001",
                "date": dt.date(YEAR, 5, 12),
                "code_insee": C2,
                "type_action": "COMPOSTEUR",
                "quantite": 35,
            },
            {
                "id_action": "PREV-002",
                "date": dt.date(YEAR, 6, 3),
                "type_action": "CONTROLE_BACS",
                "quantite": 420,
                "foyers_sensibilises": 18,
            },
        ],
    ),
    "dechetteries_apports": (
        "waste",
        [
            {
                "decheterie": "Béthune",
                "mois": f"{YEAR}-02",
                "fraction": "BOIS",
                "filiere": "VALORISATION_MATIERE",
                "tonnage_t": 210.5,
            },
            {
                "decheterie": "Béthune",
                "mois": f"{YEAR}-02",
                "fraction": "TOUT_VENANT",
                "filiere": "ENFOUISSEMENT",
                "tonnage_t": 305,
            },
        ],
    ),
    "amelioration_habitat": (
        "housing",
        [
            {
                "id_dossier": "OPAH-2019-017",
                "code_insee": C1,
                "dispositif": "OPAH_RU",
                "nb_logements": 2,
                "aide_agglo_eur": 12_000,
                "aide_anah_eur": 30_000,
                "montant_travaux_eur": 95_000,
                "date_engagement": dt.date(2019, 5, 14),
            },
            {
                "id_dossier": "MPA-2025-003",
                "code_insee": C3,
                "dispositif": "MA_PRIME_ADAPT",
                "nb_logements": 1,
                "aide_agglo_eur": 1_500,
                "aide_anah_eur": 8_000,
                "montant_travaux_eur": 14_200,
                "date_engagement": dt.date(YEAR, 9, 2),
            },
        ],
    ),
    "logements_sociaux": (
        "housing",
        [
            {
                "id_operation": "LLS-2025-01",
                "code_insee": C2,
                "bailleur": "Maisons & Cités",
                "type_operation": "NEUF",
                "nb_plai": 6,
                "nb_plus": 12,
                "nb_pls": 0,
                "credits_etat_eur": 78_000,
                "aide_agglo_eur": 36_000,
                "date_programmation": dt.date(YEAR, 6, 30),
            },
            {
                "id_operation": "LLS-2025-02",
                "code_insee": C1,
                "bailleur": "Pas-de-Calais Habitat",
                "type_operation": "ACQUIS_AMELIORE",
                "nb_plai": 2,
                "nb_plus": 3,
                "nb_pls": 1,
                "credits_etat_eur": 26_000,
                "aide_agglo_eur": 12_000,
                "date_programmation": dt.date(YEAR, 11, 15),
            },
        ],
    ),
    "permis_de_louer": (
        "housing",
        [
            {
                "code_insee": C2,
                "date_adhesion": dt.date(2019, 1, 1),
                "logements_concernes": 1_800,
                "demandes": 240,
                "autorisations": 226,
            },
            {
                "code_insee": C3,
                "date_adhesion": dt.date(2022, 7, 1),
                "logements_concernes": 600,
                "demandes": 75,
                "autorisations": 75,
            },
        ],
    ),
    "rh_arretes": (
        "hr",
        [
            {"mois": f"{YEAR}-01", "type_arrete": "avancement", "nombre": 14},
            {"mois": f"{YEAR}-01", "type_arrete": "temps_partiel", "nombre": 3},
        ],
    ),
    "rh_effectifs": (
        "hr",
        [
            {
                "matricule": "A00123",
                "date_observation": dt.date(YEAR, 10, 1),
                "date_naissance": dt.date(1978, 4, 12),
                "sexe": "F",
                "statut": "TITULAIRE",
                "categorie": "B",
                "direction": "Direction des Finances",
                "quotite": 1,
                "date_entree": dt.date(2005, 9, 1),
            },
            {
                "matricule": "A00456",
                "date_observation": dt.date(YEAR, 10, 1),
                "date_naissance": dt.date(2006, 2, 20),
                "sexe": "M",
                "statut": "APPRENTI",
                "direction": "Direction des Sports",
                "quotite": "0,8",
                "date_entree": dt.date(YEAR, 9, 1),
            },
        ],
    ),
    "rh_formation": (
        "hr",
        [
            {
                "matricule": "A00123",
                "date_debut": dt.date(YEAR, 2, 10),
                "nb_jours": 1.5,
                "intitule": "Excel perfectionnement",
                "organisme": "CNFPT",
            },
            {
                "matricule": "A00456",
                "date_debut": dt.date(YEAR, 3, 3),
                "nb_jours": 2,
                "intitule": "Habilitation électrique",
            },
        ],
    ),
    "indicateurs_declares": (DECLARING_DEPARTMENT, []),  # pre-filled rows completed below
}


def _headers(ws) -> dict[str, int]:
    return {str(cell.value): cell.column for cell in ws[1] if cell.value is not None}


def _fill(path: Path, source_id: str, rows: list[dict[str, object]], target: Path) -> int:
    """Fill the template like a department does; returns the number of data rows."""
    contract = default_contracts()[source_id]
    wb = openpyxl.load_workbook(path)
    ws = wb[DATA_SHEET]
    headers = _headers(ws)
    commune = next((c.name for c in contract.columns if c.type == "commune"), None)
    if source_id == "eau_udi":
        codes = [row[0].value for row in wb[LISTS_SHEET].iter_rows(min_row=2, max_col=1)]
        rows = [
            {"udi": "UDI-BETHUNOIS" if i % 2 else UDI, "nom_udi": "Béthunois", commune: code}
            for i, code in enumerate(codes)
        ]
    if source_id == "indicateurs_declares":
        n = 0
        for row in range(2, ws.max_row + 1):
            if ws.cell(row, headers["indicator_id"]).value is None:
                continue
            ws.cell(row, headers["valeur"], 10 + row)
            ws.cell(row, headers["date_valeur"], dt.date(YEAR, 12, 31))
            n += 1
        # one more line: a figure given for one commune
        first_id = ws.cell(2, headers["indicator_id"]).value
        last = ws.max_row + 1
        for name, value in {
            "indicator_id": first_id,
            "code_insee": C1,
            "valeur": "1 234,5",
            "date_valeur": f"05/09/{YEAR}",
            "commentaire": "valeur pour Béthune",
            "source": "Direction de la Culture",
        }.items():
            ws.cell(last, headers[name], value)
        wb.save(target)
        return n + 1
    for offset, record in enumerate(rows):
        for name, value in record.items():
            header = "code_insee" if name == commune else name
            ws.cell(2 + offset, headers[header], value)
    wb.save(target)
    return len(rows)


def test_examples_cover_every_contract():
    assert set(EXAMPLES) == set(default_contracts())


@pytest.mark.parametrize("source_id", sorted(EXAMPLES))
def test_filled_template_is_accepted(out_dir, tmp_path, make_context, source_id):
    department, rows = EXAMPLES[source_id]
    contract = default_contracts()[source_id]
    filled = tmp_path / f"{source_id}_{YEAR}.xlsx"
    n = _fill(template(out_dir, department, source_id), source_id, rows, filled)
    ctx = make_context(
        year=YEAR,
        department=department,
        references={("eau_udi", "udi"): {UDI, "UDI-BETHUNOIS"}},
        pseudonymise=pseudonymiser(b"k" * 32),
    )
    result = validate_delivery(contract, filled, ctx)
    assert result.accepted, [(p.row, p.column, p.value, p.reason) for p in result.problems]
    assert result.sheet == DATA_SHEET and result.header_row == 1
    assert result.warnings == []
    assert len(result.records) == n > 0


def test_blank_template_is_rejected_not_silently_accepted(out_dir, make_context):
    contract = default_contracts()["dechets_collecte"]
    blank = validate_delivery(
        contract, template(out_dir, "waste", "dechets_collecte"), make_context(year=YEAR)
    )
    assert not blank.accepted and blank.sheet == DATA_SHEET
    assert "aucune ligne de données" in blank.problems[0].reason
    # a declared template sent back without its values is refused, line by line
    declared = validate_delivery(
        default_contracts()["indicateurs_declares"],
        template(out_dir, DECLARING_DEPARTMENT, "indicateurs_declares"),
        make_context(year=YEAR, department=DECLARING_DEPARTMENT),
    )
    assert not declared.accepted
    assert {p.column for p in declared.problems} == {"valeur", "date_valeur"}


# --- which files ---------------------------------------------------------------------------


def test_every_department_gets_its_templates(out_dir):
    contracts = default_contracts()
    declared = _catalogue_declared()
    expected = {(c.department, s) for s, c in contracts.items() if c.department != "any"} | {
        (d, "indicateurs_declares") for d in declared
    }
    found = {(p.parent.name, p.name) for p in out_dir.glob("*/*.xlsx")}
    assert found == {(d, f"{s}_{YEAR}.xlsx") for d, s in expected}
    for department in ("water", "waste", "housing", "hr"):
        assert (department, "indicateurs_declares") in expected


def test_departments_filter_and_unknown_department(tmp_path):
    paths = write_templates(YEAR, tmp_path, departments=["hr"])
    assert [p.name for p in paths] == [
        f"{s}_{YEAR}.xlsx"
        for s in ("indicateurs_declares", "rh_arretes", "rh_effectifs", "rh_formation")
    ]
    with pytest.raises(ValueError, match="inconnue|sans modèle"):
        write_templates(YEAR, tmp_path, departments=["nowhere"])


def test_output_is_deterministic(tmp_path):
    first = write_templates(YEAR, tmp_path / "a", departments=["water", "sport"])
    second = write_templates(YEAR, tmp_path / "b", departments=["water", "sport"])
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


# --- Notice ----------------------------------------------------------------------------------


def _notice_text(source: Path | openpyxl.Workbook) -> str:
    wb = source if isinstance(source, openpyxl.Workbook) else openpyxl.load_workbook(source)
    ws = wb[NOTICE_SHEET]
    return "\n".join(
        " | ".join(str(v) for v in row if v is not None) for row in ws.iter_rows(values_only=True)
    )


def test_notice_is_first_and_gives_deadline_and_contact(out_dir):
    wb = openpyxl.load_workbook(template(out_dir, "water", "eau_volumes"))
    assert wb.sheetnames[0] == NOTICE_SHEET and wb.active.title == NOTICE_SHEET
    assert wb.sheetnames[1] == DATA_SHEET
    assert wb[LISTS_SHEET].sheet_state == "hidden"
    text = _notice_text(template(out_dir, "water", "eau_volumes"))
    assert "13/03/2026" in text and DEADLINE[1] in text
    assert f"Campagne {YEAR}" in text and "Direction du Petit Cycle de l'Eau" in text
    assert "« eau_udi »" in text  # the reference rule, in plain French
    # without a deadline for that (department, source): the campaign letter
    other = _notice_text(template(out_dir, "water", "eau_udi"))
    assert "Date limite : voir le courrier de campagne" in other


@pytest.mark.parametrize(
    "department,source_id",
    [("water", "eau_reseau"), ("hr", "rh_effectifs"), ("sport", "indicateurs_declares")],
)
def test_notice_states_the_kit_rules_and_every_column(out_dir, department, source_id):
    contract = default_contracts()[source_id]
    text = _notice_text(template(out_dir, department, source_id))
    for phrase in (
        "remplace entièrement le précédent",
        "accepté ou refusé en entier",
        "ligne 1 de la feuille « Données »",
        "4 548,5",
        "« Total »",
        "#DIV/0!",
    ):
        assert phrase in text, phrase
    for column in contract.columns:
        header = "code_insee" if column.type == "commune" else column.name
        assert re.search(rf"^{header} \| ", text, re.M), header
        assert " ".join(column.description_fr.split())[:40] in " ".join(text.split())
    if any(c.type == "commune" for c in contract.columns):
        assert "renommez l'en-tête code_insee en « commune »" in text
    if contract.sensitivity == "personal":
        assert "données personnelles" in text


# --- Données ----------------------------------------------------------------------------------


def _validations(ws) -> dict[str, object]:
    """First column letter of each validation range -> the validation."""
    out = {}
    for dv in ws.data_validations.dataValidation:
        ranges = str(dv.sqref).split()
        assert len(ranges) == 1
        start, end = ranges[0].split(":")
        assert start[1:] == "2" and end[1:] == "5000" and start[0] == end[0]
        out[start[0]] = dv
    return out


def _list_values(wb, formula: str) -> list[str]:
    m = re.fullmatch(r"'?Listes'?!\$([A-Z]+)\$(\d+):\$([A-Z]+)\$(\d+)", formula)
    assert m, formula
    ws = wb[LISTS_SHEET]
    cells = ws[f"{m[1]}{m[2]}:{m[3]}{m[4]}"]
    return [row[0].value for row in cells]


@pytest.mark.parametrize("source_id", sorted(s for s in EXAMPLES if s != "indicateurs_declares"))
def test_data_sheet_header_and_validations(out_dir, source_id):
    contract = default_contracts()[source_id]
    wb = openpyxl.load_workbook(template(out_dir, contract.department, source_id))
    ws = wb[DATA_SHEET]
    headers = [c.value for c in ws[1]]
    assert headers == ["code_insee" if c.type == "commune" else c.name for c in contract.columns]
    assert ws.freeze_panes == "A2" and all(c.font.b for c in ws[1])
    assert ws.max_row == 1  # blank below the header
    validations = _validations(ws)
    for index, column in enumerate(contract.columns):
        letter = openpyxl.utils.get_column_letter(index + 1)
        dv = validations[letter]
        assert dv.prompt and len(dv.prompt) <= 255 and len(dv.promptTitle) <= 32
        assert dv.error is None or len(dv.error) <= 225
        assert ws.column_dimensions[letter].width >= len(headers[index])
        if column.type == "commune":
            assert dv.type == "list"
            assert _list_values(wb, dv.formula1) == _commune_codes()
        elif column.allowed is not None:
            assert dv.type == "list"
            assert _list_values(wb, dv.formula1) == list(column.allowed)
        elif column.type == "integer":
            assert dv.type == "whole"
            assert float(dv.formula1) == column.lower_bound
        elif column.type == "number" and not (column.step or column.min_exclusive is not None):
            assert dv.type == "decimal" and float(dv.formula1) == column.lower_bound
        elif column.type == "number":
            assert dv.type == "custom" and f"{letter}2" in dv.formula1
        elif column.type in ("date", "month"):
            assert dv.type == "date"
            if column.effective_date_range == "campaign_year":
                assert (dv.operator, dv.formula1, dv.formula2) == (
                    "between",
                    f"DATE({YEAR},1,1)",
                    f"DATE({YEAR},12,31)",
                )


def test_commune_names_sit_beside_the_codes(out_dir):
    wb = openpyxl.load_workbook(template(out_dir, "water", "eau_udi"))
    rows = list(wb[LISTS_SHEET].iter_rows(min_row=2, max_col=2, values_only=True))
    assert len(rows) == 100
    assert ("62119", "Béthune") in rows


def test_bounds_of_special_columns(out_dir):
    wb = openpyxl.load_workbook(template(out_dir, "hr", "rh_formation"))
    nb_jours = _validations(wb[DATA_SHEET])["C"]
    assert nb_jours.type == "custom" and "MOD(ROUND(C2/0.5,6),1)=0" in nb_jours.formula1
    wb = openpyxl.load_workbook(template(out_dir, "hr", "rh_effectifs"))
    quotite = _validations(wb[DATA_SHEET])["H"]
    assert quotite.formula1 == "AND(ISNUMBER(H2),H2>0,H2<=1)"
    wb = openpyxl.load_workbook(template(out_dir, "housing", "amelioration_habitat"))
    engagement = _validations(wb[DATA_SHEET])["H"]
    assert (engagement.operator, engagement.formula1, engagement.formula2) == (
        "between",
        "DATE(2015,1,1)",
        "TODAY()",
    )


# --- declared figures -----------------------------------------------------------------------


def test_declared_templates_hold_only_the_department_ids(out_dir):
    declared = _catalogue_declared()
    contracts = default_contracts()
    for department, ids in declared.items():
        wb = openpyxl.load_workbook(template(out_dir, department, "indicateurs_declares"))
        ws = wb[DATA_SHEET]
        headers = _headers(ws)
        rows = list(ws.iter_rows(min_row=2, values_only=True))
        assert [r[headers["indicator_id"] - 1] for r in rows] == ids, department
        direction = direction_of(department, contracts)
        assert {r[headers["source"] - 1] for r in rows} == {direction}
        for name in ("valeur", "date_valeur", "code_insee", "commentaire"):
            assert {r[headers[name] - 1] for r in rows} == {None}
        comments = [ws.cell(i, headers["indicator_id"]).comment for i in range(2, len(rows) + 2)]
        assert all(c is not None and c.text for c in comments)
        listed = [
            r[0] for r in wb[INDICATORS_SHEET].iter_rows(min_row=2, max_col=1, values_only=True)
        ]
        assert listed == ids, department
        assert direction in _notice_text(wb)


def test_declared_comment_gives_label_and_unit(out_dir):
    ws = openpyxl.load_workbook(template(out_dir, "governance", "indicateurs_declares"))[DATA_SHEET]
    cells = {ws.cell(r, 1).value: ws.cell(r, 1).comment.text for r in range(2, ws.max_row + 1)}
    assert cells["council_members_total"].startswith("Élus communautaires\nUnité : nombre")
