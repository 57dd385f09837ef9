"""The bad-input corpus: deliveries the ingestion must reject, and where and why.

This script *is* the corpus: nothing binary is committed. Each case starts from a valid
delivery of its source (``VALID``, also written as the accepted baseline) and breaks one rule
of the collection kit (``../shared/spec/sources.md``) or reproduces one trap of real files.

    python tests/bad_inputs/generate.py OUT_DIR           # every case, baseline, cases.yml
    python tests/bad_inputs/generate.py --manifest FILE   # only the manifest (cases.yml)

Layout written under OUT_DIR:

    _baseline/sources/2025/<department>/<source_id>_2025.xlsx   valid deliveries
    <case>/sources/2025/<department>/<source_id>_2025.<ext>      one bad delivery per case
    cases.yml                                                   what each must be rejected for

``heavy`` cases (huge sheets, zip bombs) are cheap to write (a few MB, written without
materialising their content) but are made to exhaust a reader that trusts them. Generation
is deterministic: the same bytes every run.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import functools
import io
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import xlsxwriter
import yaml
from xlsxwriter.utility import xl_cell_to_rowcol

YEAR = 2025
FIXED_CREATED = dt.datetime(2025, 1, 1)
ZIP_TIME = (1980, 1, 1, 0, 0, 0)

# ------------------------------------------------------------------------------------------
# workbook model


@dataclass(frozen=True)
class Formula:
    """A formula cell; ``cached`` is the value Excel saved with it (None: never computed)."""

    text: str
    cached: object = None


@dataclass
class SheetSpec:
    name: str
    rows: list[list[object]]
    merges: list[tuple[str, object]] = field(default_factory=list)  # (A1:B2, value)
    hidden_rows: list[int] = field(default_factory=list)  # 1-based
    state: str = "visible"  # or "hidden", "very_hidden" (Excel's « Afficher » does not list it)
    hidden_columns: list[int] = field(default_factory=list)  # 0-based
    autofilter: str | None = None  # range of an automatic filter (rows hidden: hidden_rows)
    number_formats: dict[str, str] = field(default_factory=dict)  # cell (D6) -> number format


@dataclass
class Book:
    sheets: list[SheetSpec]

    def sheet(self, name: str | None = None) -> SheetSpec:
        return self.sheets[0] if name is None else next(s for s in self.sheets if s.name == name)


def _write_value(ws, row: int, col: int, value: object, date_fmt) -> None:
    if value is None:
        return
    if isinstance(value, Formula):
        if value.cached is None:
            ws.write_formula(row, col, value.text, None, "")  # saved without a result
        else:
            ws.write_formula(row, col, value.text, None, value.cached)
    elif isinstance(value, bool):
        ws.write_boolean(row, col, value)
    elif isinstance(value, int | float):
        ws.write_number(row, col, value)
    elif isinstance(value, dt.datetime | dt.date):
        if not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        ws.write_datetime(row, col, value, date_fmt)
    else:
        ws.write_string(row, col, str(value))


def write_book(book: Book, path: Path) -> Path:
    """An .xlsx written with xlsxwriter, byte-identical from one run to the next."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path))
    wb.set_properties({"created": FIXED_CREATED, "author": "Corpus de tests"})
    date_fmt = wb.add_format({"num_format": "dd/mm/yyyy"})
    for spec in book.sheets:
        ws = wb.add_worksheet(spec.name)
        for r, row in enumerate(spec.rows):
            for c, value in enumerate(row):
                _write_value(ws, r, c, value, date_fmt)
        for ref, value in spec.merges:
            ws.merge_range(ref, "" if value is None else value)
        for row_number in spec.hidden_rows:
            ws.set_row(row_number - 1, None, None, {"hidden": True})
        for column in spec.hidden_columns:
            ws.set_column(column, column, None, None, {"hidden": True})
        for ref, code in spec.number_formats.items():
            row, col = xl_cell_to_rowcol(ref)
            ws.write_number(row, col, spec.rows[row][col], wb.add_format({"num_format": code}))
        if spec.autofilter:
            ws.autofilter(spec.autofilter)
            ws.filter_column(0, "x == 62119")  # the rows of other communes: hidden_rows
        if spec.state == "hidden":
            ws.hide()
        elif spec.state == "very_hidden":
            ws.very_hidden()
        elif not any(s.state == "visible" for s in book.sheets[: book.sheets.index(spec)]):
            ws.activate()  # the first visible sheet is the active one (Excel hides no other)
    wb.close()
    return path


def patch_part(path: Path, part: str, change: Callable[[bytes], bytes]) -> Path:
    """Rewrite one part of a workbook (what no library writes: a row of height 0, a NaN
    value...), the zip written again part by part, deterministically."""
    with zipfile.ZipFile(path) as archive:
        parts = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts:
            archive.writestr(
                zipfile.ZipInfo(name, ZIP_TIME),
                change(data) if name == part else data,
                compress_type=zipfile.ZIP_DEFLATED,
            )
    return path


# ------------------------------------------------------------------------------------------
# raw zip writing (for parts that no library writes: forged sizes, precompressed bombs)


@dataclass
class RawPart:
    name: str
    payload: bytes  # as stored in the zip (deflated when method is ZIP_DEFLATED)
    method: int
    crc: int
    size: int  # uncompressed size declared in the headers


def raw_part(name: str, data: bytes) -> RawPart:
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = deflater.compress(data) + deflater.flush()
    return RawPart(name, payload, zipfile.ZIP_DEFLATED, zlib.crc32(data), len(data))


def write_raw_zip(path: Path, parts: list[RawPart]) -> Path:
    """A zip container written field by field (no zip64: every size below 4 GiB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dos_time = (ZIP_TIME[3] << 11) | (ZIP_TIME[4] << 5) | (ZIP_TIME[5] // 2)
    dos_date = ((ZIP_TIME[0] - 1980) << 9) | (ZIP_TIME[1] << 5) | ZIP_TIME[2]
    central = b""
    with path.open("wb") as out:
        for part in parts:
            name = part.name.encode()
            offset = out.tell()
            out.write(
                struct.pack(
                    "<4s5H3L2H",
                    b"PK\x03\x04",
                    20,
                    0,
                    part.method,
                    dos_time,
                    dos_date,
                    part.crc,
                    len(part.payload),
                    part.size,
                    len(name),
                    0,
                )
            )
            out.write(name)
            out.write(part.payload)
            central += struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                0,
                part.method,
                dos_time,
                dos_date,
                part.crc,
                len(part.payload),
                part.size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            central += name
        start = out.tell()
        out.write(central)
        out.write(
            struct.pack(
                "<4s4H2LH", b"PK\x05\x06", 0, 0, len(parts), len(parts), len(central), start, 0
            )
        )
    return path


_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
    b'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
    b'worksheet+xml"/></Types>'
)
_ROOT_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://'
    b'schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="'
    b"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
    b'" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://'
    b'schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="'
    b'http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="'
    b'worksheets/sheet1.xml"/></Relationships>'
)
SHEET_OPEN = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://'
    b'schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.'
    b'openxmlformats.org/officeDocument/2006/relationships">'
)


def _workbook_xml(sheet_name: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://'
        'schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.'
        'openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="'
        f'{sheet_name}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ).encode()


def skeleton_parts(sheet_name: str) -> list[RawPart]:
    """Every part of a one-sheet workbook but the sheet itself."""
    return [
        raw_part("[Content_Types].xml", _CONTENT_TYPES),
        raw_part("_rels/.rels", _ROOT_RELS),
        raw_part("xl/workbook.xml", _workbook_xml(sheet_name)),
        raw_part("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS),
    ]


def _inline(ref: str, value: object) -> bytes:
    if isinstance(value, str):
        return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'.encode()
    return f'<c r="{ref}"><v>{value}</v></c>'.encode()


def _letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def sheet_rows_xml(rows) -> bytes:
    out = []
    for r, row in enumerate(rows, start=1):
        cells = b"".join(_inline(f"{_letters(c)}{r}", v) for c, v in enumerate(row))
        out.append(b'<row r="%d">%s</row>' % (r, cells))
    return b"".join(out)


# ------------------------------------------------------------------------------------------
# valid deliveries (the accepted baseline every case breaks)

COMMUNES_CSV = Path(__file__).resolve().parents[2] / "dbt" / "seeds" / "communes.csv"


def _codes() -> list[str]:
    with COMMUNES_CSV.open(encoding="utf-8") as handle:
        return sorted(row["code_insee"] for row in csv.DictReader(handle))


CODES = _codes()  # the 100 member communes

VOLUMES_HEADER = [
    "udi",
    "mois",
    "volume_produit_m3",
    "volume_importe_m3",
    "volume_exporte_m3",
    "volume_consomme_autorise_m3",
]
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
EFFECTIFS_HEADER = [
    "matricule",
    "date_observation",
    "date_naissance",
    "sexe",
    "statut",
    "categorie",
    "direction",
    "quotite",
    "date_entree",
]


def d(day: str) -> dt.date:
    return dt.date.fromisoformat(day)


OBS = d("2025-10-01")


def _valid() -> dict[str, tuple[str, Book]]:
    """source_id -> (department, valid workbook)."""
    udi = [["udi", "nom_udi", "code_insee"]] + [
        ["UDI-BETHUNOIS", "Béthunois", c] if i < 60 else ["UDI-LYS", "Lys", c]
        for i, c in enumerate(CODES)
    ]
    volumes = [VOLUMES_HEADER] + [
        [u, f"2025-0{m}", 1000.0 * m + k, 0, 0, 800.0 * m + k]
        for k, u in enumerate(["UDI-BETHUNOIS", "UDI-LYS"])
        for m in (1, 2, 3)
    ]
    reseau = [RESEAU_HEADER] + [
        ["62119", "eau_potable", "regie", 120.5, None, 1.25, 12000, 850000],
        ["62119", "assainissement", "delegation", 98, 12.5, 0.5, 11800, 420000],
        ["62178", "eau_potable", "regie", 140, None, 2, 10500, 610000],
        ["62178", "assainissement", "delegation", 110.25, 20, 0, 10200, 300000],
    ]
    qualite = [
        [
            "id_prelevement",
            "date_prelevement",
            "udi",
            "type_analyse",
            "parametre",
            "resultat",
            "unite",
            "limite_qualite",
            "conforme",
        ],
        ["P-001", d("2025-03-15"), "UDI-BETHUNOIS", "microbiologique", "E. coli", 0, "n/100mL", 1, "oui"],
        ["P-001", d("2025-03-15"), "UDI-BETHUNOIS", "physico-chimique", "Nitrates", 32.5, "mg/L", 50, "oui"],
        ["P-002", "04/06/2025", "UDI-LYS", "physico-chimique", "Nitrates", 41, "mg/L", 50, None],
        ["P-003", "2025-09-22", "UDI-LYS", "microbiologique", "E. coli", 0, "n/100mL", 1, "non"],
    ]  # fmt: skip
    activite = [
        ["commune", "mois", "controles_spanc_vente", "branchements_eu_crees", "demandes_eaux_pluviales"],
        ["Béthune", "janvier 2025", 4, 2, 1],
        ["Bruay-la-Buissière", "janvier 2025", 3, 1, 0],
        ["Nœux-les-Mines", "février 2025", 2, 0, 1],
        ["Saint-Venant", "mars 2025", 1, 1, 0],
    ]  # fmt: skip
    collecte = [["code_insee", "mois", "flux", "tonnage_t"]] + [
        [c, f"2025-0{m}", f, t]
        for c in ("62119", "62178")
        for m in (1, 2)
        for f, t in (("OMR", 812.4), ("EMB_PAP", 143.25), ("VERRE", 96))
    ]
    apports = [
        ["decheterie", "mois", "fraction", "filiere", "tonnage_t"],
        ["Béthune", "2025-01", "BOIS", "VALORISATION_MATIERE", 85.2],
        ["Béthune", "2025-01", "DECHETS_VERTS", "VALORISATION_ORGANIQUE", 120],
        ["Isbergues", "2025-01", "TOUT_VENANT", "ENFOUISSEMENT", 64.75],
        ["Isbergues", "2025-02", "MOBILIER", "REEMPLOI", 12],
    ]
    prevention = [
        ["id_action", "date", "commune", "type_action", "quantite", "foyers_sensibilises"],
        ["A-001", "14/02/2025", "Béthune", "CONTROLE_BACS", 240, 18],
        ["A-002", d("2025-03-08"), None, "COMPOSTEUR", 35, None],
        ["A-003", "2025-05-20", "Lillers", "ATELIER", 22, 0],
        ["A-004", "10/10/2025", "Auchel", "ANIMATION_SCOLAIRE", 56, None],
    ]
    logements = [
        [
            "id_operation",
            "code_insee",
            "bailleur",
            "type_operation",
            "nb_plai",
            "nb_plus",
            "nb_pls",
            "credits_etat_eur",
            "aide_agglo_eur",
            "date_programmation",
        ],
        ["OP-2025-01", "62119", "Pas-de-Calais Habitat", "NEUF", 6, 12, 2, 78000, 40000, d("2025-04-10")],
        ["OP-2025-02", "62178", "Maisons & Cités", "ACQUIS_AMELIORE", 3, 5, 0, 39000, 16000, "12/06/2025"],
        ["OP-2025-03", "62617", "SIA Habitat", "NEUF", 4, 8, 0, 52000, 24000, "2025-09-30"],
    ]  # fmt: skip
    amelioration = [
        [
            "id_dossier",
            "code_insee",
            "dispositif",
            "nb_logements",
            "aide_agglo_eur",
            "aide_anah_eur",
            "montant_travaux_eur",
            "date_engagement",
        ],
        ["D-001", "62119", "OPAH_RU", 1, 5000, 12000, 38000, "15/06/2022"],
        ["D-002", "62178", "MA_PRIME_ADAPT", 1, 1500, 4500, 9000, d("2025-02-03")],
        ["D-003", "62770", "AUTRE", 2, 3000, 0, 15000, "2025-07-01"],
    ]  # fmt: skip
    permis = [
        ["commune", "date_adhesion", "logements_concernes", "demandes", "autorisations"],
        ["Béthune", d("2019-03-01"), 4200, 310, 296],
        ["Bruay-la-Buissière", "01/09/2021", 3100, 205, 190],
        ["Auchel", "2023-01-15", 900, 64, 64],
    ]
    effectifs = [EFFECTIFS_HEADER] + [
        ["M0001", OBS, d("1975-04-12"), "F", "TITULAIRE", "A", "Direction Générale", 1, d("2001-09-01")],
        ["M0002", OBS, d("1988-11-30"), "M", "TITULAIRE", "C", "Eau", 1, d("2012-03-15")],
        ["M0003", OBS, d("1996-07-02"), "F", "CONTRACTUEL_PERMANENT", "B", "Habitat", 0.8, d("2020-01-06")],
        ["M0004", OBS, d("2006-05-20"), "M", "APPRENTI", None, "Déchets", 1, d("2024-09-02")],
        ["M0005", OBS, d("1969-01-08"), "F", "NON_PERMANENT", "C", "Culture", 0.5, d("2025-06-01")],
    ]  # fmt: skip
    formation = [
        ["matricule", "date_debut", "nb_jours", "intitule", "organisme"],
        ["M0001", "10/03/2025", 2, "Management d'équipe", "CNFPT"],
        ["M0002", d("2025-05-12"), 0.5, "Habilitation électrique", None],
        ["M0003", "2025-11-04", 1.5, "Marchés publics", "CNFPT"],
    ]
    arretes = [
        ["mois", "type_arrete", "nombre"],
        ["janvier 2025", "avancement", 12],
        ["janvier 2025", "temps_partiel", 3],
        ["février 2025", "nomination", 5],
    ]
    declares = [
        ["indicator_id", "code_insee", "valeur", "date_valeur", "commentaire", "source"],
        ["wwtp_count", None, 12, "31/12/2025", None, "Direction du Petit Cycle de l'Eau"],
        ["reservoirs_count", None, 28, "31/12/2025", "dont 3 en travaux", "Direction du Petit Cycle de l'Eau"],
    ]  # fmt: skip
    return {
        "eau_udi": ("water", Book([SheetSpec("UDI", udi)])),
        "eau_volumes": ("water", Book([SheetSpec("Volumes", volumes)])),
        "eau_reseau": ("water", Book([SheetSpec("Réseaux", reseau)])),
        "eau_qualite": ("water", Book([SheetSpec("Analyses", qualite)])),
        "assainissement_activite": ("water", Book([SheetSpec("Activité", activite)])),
        "indicateurs_declares": ("water", Book([SheetSpec("Indicateurs", declares)])),
        "dechets_collecte": ("waste", Book([SheetSpec("Collecte", collecte)])),
        "dechetteries_apports": ("waste", Book([SheetSpec("Apports", apports)])),
        "dechets_prevention": ("waste", Book([SheetSpec("Actions", prevention)])),
        "logements_sociaux": ("housing", Book([SheetSpec("Opérations", logements)])),
        "amelioration_habitat": ("housing", Book([SheetSpec("Dossiers", amelioration)])),
        "permis_de_louer": ("housing", Book([SheetSpec("Permis", permis)])),
        "rh_effectifs": ("hr", Book([SheetSpec("Effectifs", effectifs)])),
        "rh_formation": ("hr", Book([SheetSpec("Formations", formation)])),
        "rh_arretes": ("hr", Book([SheetSpec("Arrêtés", arretes)])),
    }


VALID = _valid()
BASELINE_ORDER = ["eau_udi"] + [s for s in VALID if s != "eau_udi"]  # references first


def valid_book(source: str) -> Book:
    return copy.deepcopy(VALID[source][1])


def department_of(source: str) -> str:
    return VALID[source][0]


# ------------------------------------------------------------------------------------------
# cases


@dataclass
class Expect:
    """One problem of the rejection: every string of ``reason`` is in the French reason."""

    reason: list[str]
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    value: str | None = None


@dataclass
class Case:
    name: str
    title_fr: str
    source: str
    expect: list[Expect]
    write: Callable[[Path], object]
    extension: str = "xlsx"
    heavy: bool = False

    @property
    def department(self) -> str:
        return department_of(self.source)

    @property
    def relative_path(self) -> str:
        return f"{self.name}/sources/{YEAR}/{self.department}/{self.source}_{YEAR}.{self.extension}"


CASES: list[Case] = []


def expect(reason, sheet=None, row=None, column=None, value=None) -> Expect:
    return Expect([reason] if isinstance(reason, str) else list(reason), sheet, row, column, value)


def case(name: str, title_fr: str, source: str, *expected: Expect, extension="xlsx", heavy=False):
    """Register a case whose file is written by the decorated function (path -> None)."""

    def register(write):
        CASES.append(Case(name, title_fr, source, list(expected), write, extension, heavy))
        return write

    return register


def book_case(name: str, title_fr: str, source: str, *expected: Expect):
    """A case that edits the valid workbook of its source (function: Book -> Book | None)."""

    def register(edit):
        def write(path: Path) -> None:
            book = valid_book(source)
            write_book(edit(book) or book, path)

        CASES.append(Case(name, title_fr, source, list(expected), write))
        return edit

    return register


def cell(book: Book, row: int, column: str, value: object, sheet: str | None = None) -> None:
    """Set the cell of an Excel row number (1-based) under a header of the valid book."""
    spec = book.sheet(sheet)
    index = spec.rows[0].index(column)
    spec.rows[row - 1][index] = value


# --- header search and header matching -----------------------------------------------------


@book_case(
    "header_below_ten_title_rows",
    "En-tête précédé de 11 lignes de titre (10 au plus)",
    "eau_volumes",
    expect("ligne d'en-tête trouvée trop bas, ligne 12", "Volumes", 12),
)
def _(book):
    book.sheet().rows[:0] = [["Volumes mensuels 2025"]] + [[] for _ in range(9)] + [["Source"]]


@book_case(
    "header_column_renamed",
    "En-tête « Volume produit (m3) » au lieu de volume_produit_m3",
    "eau_volumes",
    expect(
        ["colonnes obligatoires absentes de l'en-tête : volume_produit_m3", "« Volume produit (m3) »"],
        "Volumes",
        1,
        "volume_produit_m3",
    ),
)  # fmt: skip
def _(book):
    book.sheet().rows[0][2] = "Volume produit (m3)"


@book_case(
    "header_column_twice",
    "Colonne mois présente deux fois dans l'en-tête",
    "assainissement_activite",
    expect("colonne « mois » présente deux fois dans l'en-tête", "Activité", 1, "Mois"),
)
def _(book):
    for row in book.sheet().rows:
        row.append(row[1] if row is not book.sheet().rows[0] else "Mois")


@book_case(
    "wrong_sheet",
    "Données collées dans une autre feuille que celle qui porte l'en-tête",
    "eau_volumes",
    expect(
        ["aucune ligne de données sous l'en-tête", "la feuille « Feuil2 » contient 6 lignes"],
        "Volumes",
        2,
    ),
)
def _(book):
    rows = book.sheet().rows
    book.sheets = [SheetSpec("Volumes", rows[:1]), SheetSpec("Feuil2", rows[1:])]


@book_case(
    "header_merged_on_two_rows",
    "En-tête sur deux lignes avec cellules fusionnées (udi et mois fusionnées verticalement)",
    "eau_volumes",
    expect(
        ["colonnes obligatoires absentes de l'en-tête : udi, mois", "fusionnées (A1:A2, B1:B2"],
        "Volumes",
        2,
        "udi, mois",
    ),
)
def _(book):
    spec = book.sheet()
    header = spec.rows[0]
    spec.rows[0:1] = [[None] * 6, [None, None, *header[2:]]]
    spec.merges = [("A1:A2", "udi"), ("B1:B2", "mois"), ("C1:F1", "Volumes (m3)")]


@book_case(
    "header_merged_over_two_columns",
    "En-tête tonnage_t fusionné sur deux colonnes, la seconde remplie",
    "dechets_collecte",
    expect(
        ["en-tête « tonnage_t » fusionné sur plusieurs colonnes (D1:E1)", "la colonne E"],
        "Collecte",
        1,
        "tonnage_t",
    ),
)
def _(book):
    spec = book.sheet()
    spec.rows[0][3] = None
    spec.merges = [("D1:E1", "tonnage_t")]
    for row in spec.rows[1:]:
        row.append("t")


@book_case(
    "merged_data_cells",
    "Code UDI fusionné sur trois lignes (valeur lue sur la première seulement)",
    "eau_volumes",
    expect("cellule fusionnée avec A2 (plage A2:A4)", "Volumes", 3, "udi"),
    expect("cellule fusionnée avec A2 (plage A2:A4)", "Volumes", 4, "udi"),
)
def _(book):
    spec = book.sheet()
    for r in (1, 2, 3):
        spec.rows[r][0] = None
    spec.merges = [("A2:A4", "UDI-BETHUNOIS")]


@book_case(
    "hidden_row_with_data",
    "Ligne masquée contenant des données",
    "dechets_collecte",
    expect("ligne masquée contenant des données", "Collecte", 4),
)
def _(book):
    book.sheet().hidden_rows = [4]


@book_case(
    "required_cell_empty",
    "Bailleur vide sur une opération",
    "logements_sociaux",
    expect("cellule vide : valeur obligatoire", "Opérations", 3, "bailleur"),
)
def _(book):
    cell(book, 3, "bailleur", None)


# --- numbers ---------------------------------------------------------------------------------


@book_case(
    "number_thousands_misplaced",
    "Nombre en notation française avec séparateur de milliers mal placé (45 48,5)",
    "eau_volumes",
    expect("séparateurs de milliers mal placés", "Volumes", 3, "volume_produit_m3", "45 48,5"),
)
def _(book):
    cell(book, 3, "volume_produit_m3", "45 48,5")


@book_case(
    "number_as_words",
    "Texte au lieu d'un nombre (environ 120)",
    "eau_reseau",
    expect("n'est pas un nombre", "Réseaux", 2, "lineaire_km", "environ 120"),
)
def _(book):
    cell(book, 2, "lineaire_km", "environ 120")


@book_case(
    "number_negative",
    "Tonnage négatif",
    "dechets_collecte",
    expect("valeur négative non autorisée", "Collecte", 5, "tonnage_t", "-3.5"),
)
def _(book):
    cell(book, 5, "tonnage_t", -3.5)


@book_case(
    "number_negative_french_text",
    "Volume négatif écrit en texte français (-1 250,5 m3)",
    "eau_volumes",
    expect("valeur négative non autorisée", "Volumes", 2, "volume_importe_m3", "-1 250,5 m3"),
)
def _(book):
    cell(book, 2, "volume_importe_m3", "-1 250,5 m3")


@book_case(
    "integer_expected",
    "Nombre d'abonnés décimal",
    "eau_reseau",
    expect("nombre entier attendu", "Réseaux", 4, "nb_abonnes", "10500.5"),
)
def _(book):
    cell(book, 4, "nb_abonnes", 10500.5)


@book_case(
    "integer_too_large",
    "Nombre d'abonnés de 1e300 (au-delà de ce qu'un entier peut tenir : faisait planter l'ingestion)",
    "eau_reseau",
    expect("nombre trop grand", "Réseaux", 4, "nb_abonnes", "1e+300"),
)
def _(book):
    cell(book, 4, "nb_abonnes", 1e300)


@book_case(
    "formula_text_in_number_column",
    "Texte « =SOMME(C2:C3) » dans une colonne de nombres (le rapport ne doit pas en faire une formule)",
    "eau_volumes",
    expect("n'est pas un nombre", "Volumes", 3, "volume_produit_m3", "=SOMME(C2:C3)"),
)
def _(book):
    cell(book, 3, "volume_produit_m3", "=SOMME(C2:C3)")


@book_case(
    "step_half_day",
    "Durée de formation qui n'est pas un multiple de 0,5 jour",
    "rh_formation",
    expect("doit être un multiple de 0,5", "Formations", 3, "nb_jours", "1.25"),
)
def _(book):
    cell(book, 3, "nb_jours", 1.25)


@book_case(
    "bounds_quotite",
    "Quotité nulle et quotité supérieure à 1",
    "rh_effectifs",
    expect("doit être strictement supérieur à 0", "Effectifs", 3, "quotite"),
    expect("valeur supérieure au maximum autorisé (1)", "Effectifs", 4, "quotite"),
)
def _(book):
    cell(book, 3, "quotite", 0)
    cell(book, 4, "quotite", 1.2)


@book_case(
    "bounds_minimum_one",
    "Dossier d'amélioration de l'habitat sans logement (minimum 1)",
    "amelioration_habitat",
    expect("valeur inférieure au minimum autorisé (1)", "Dossiers", 3, "nb_logements", "0"),
)
def _(book):
    cell(book, 3, "nb_logements", 0)


# --- months and dates --------------------------------------------------------------------------


@book_case(
    "month_unknown_name",
    "Nom de mois inconnu (brumaire 2025)",
    "dechets_collecte",
    expect("nom de mois inconnu « brumaire »", "Collecte", 6, "mois", "brumaire 2025"),
)
def _(book):
    cell(book, 6, "mois", "brumaire 2025")


@book_case(
    "month_outside_campaign_year",
    "Mois de l'année précédente (décembre 2024)",
    "rh_arretes",
    expect("date hors de l'année de la campagne 2025", "Arrêtés", 4, "mois", "décembre 2024"),
)
def _(book):
    cell(book, 4, "mois", "décembre 2024")


@book_case(
    "month_impossible",
    "Mois 13",
    "eau_volumes",
    expect("date impossible", "Volumes", 4, "mois", "2025-13"),
)
def _(book):
    cell(book, 4, "mois", "2025-13")


@book_case(
    "date_year_first_slashes",
    "Date tapée en texte au format AAAA/MM/JJ (2025/03/15)",
    "eau_qualite",
    expect(
        ["au format AAAA/MM/JJ, non accepté : écrivez 15/03/2025", "JJ/MM/AAAA", "AAAA-MM-JJ"],
        "Analyses",
        2,
        "date_prelevement",
        "2025/03/15",
    ),
)
def _(book):
    cell(book, 2, "date_prelevement", "2025/03/15")
    cell(book, 3, "date_prelevement", "15/03/2025")


@book_case(
    "date_dotted",
    "Date tapée en texte au format JJ.MM.AAAA (15.03.2025)",
    "dechets_prevention",
    expect("au format JJ.MM.AAAA, non accepté : écrivez 15/03/2025", "Actions", 4, "date"),
)
def _(book):
    cell(book, 4, "date", "15.03.2025")


@book_case(
    "date_in_words",
    "Date écrite en toutes lettres (15 mars 2025)",
    "logements_sociaux",
    expect(
        "date en toutes lettres, non accepté : écrivez 15/03/2025",
        "Opérations",
        2,
        "date_programmation",
        "15 mars 2025",
    ),
)
def _(book):
    cell(book, 2, "date_programmation", "15 mars 2025")


@book_case(
    "date_two_digit_year",
    "Date avec l'année sur deux chiffres (15/03/25)",
    "rh_formation",
    expect("année sur deux chiffres", "Formations", 2, "date_debut", "15/03/25"),
)
def _(book):
    cell(book, 2, "date_debut", "15/03/25")


@book_case(
    "date_impossible",
    "Date impossible (31/02/2025)",
    "dechets_prevention",
    expect("date impossible", "Actions", 2, "date", "31/02/2025"),
)
def _(book):
    cell(book, 2, "date", "31/02/2025")


@book_case(
    "date_as_number",
    "Date saisie dans une cellule au format Nombre (45731)",
    "permis_de_louer",
    expect(
        ["nombre au lieu d'une date", "45731 correspond au 15/03/2025"],
        "Permis",
        3,
        "date_adhesion",
        "45731",
    ),
)
def _(book):
    cell(book, 3, "date_adhesion", 45731)


@book_case(
    "date_outside_campaign_year",
    "Opération programmée l'année précédente",
    "logements_sociaux",
    expect("date hors de l'année de la campagne 2025", "Opérations", 4, "date_programmation"),
)
def _(book):
    cell(book, 4, "date_programmation", d("2024-12-31"))


@book_case(
    "date_before_min_year",
    "Dossier engagé avant 2015",
    "amelioration_habitat",
    expect("date antérieure à 2015", "Dossiers", 2, "date_engagement", "15/06/2014"),
)
def _(book):
    cell(book, 2, "date_engagement", "15/06/2014")


@book_case(
    "date_in_future",
    "Adhésion au permis de louer dans le futur",
    "permis_de_louer",
    expect("date dans le futur", "Permis", 4, "date_adhesion", "01/06/2026"),
)
def _(book):
    cell(book, 4, "date_adhesion", d("2026-06-01"))


@book_case(
    "date_not_after",
    "Date d'entrée postérieure à la date d'observation",
    "rh_effectifs",
    expect("date postérieure à « date_observation » (01/10/2025)", "Effectifs", 6, "date_entree"),
)
def _(book):
    cell(book, 6, "date_entree", d("2025-10-02"))


@book_case(
    "age_out_of_bounds",
    "Agent de 13 ans à la date d'observation (date de naissance masquée dans le rapport)",
    "rh_effectifs",
    expect(
        "âge de 13 ans à la date d'observation, hors des bornes 15–75 ans",
        "Effectifs",
        5,
        "date_naissance",
        "(masqué)",
    ),
)
def _(book):
    cell(book, 5, "date_naissance", d("2012-05-20"))


@book_case(
    "constant_differs",
    "Date d'observation différente sur une ligne",
    "rh_effectifs",
    expect(
        "doit être identique sur toutes les lignes (valeur majoritaire : 01/10/2025)",
        "Effectifs",
        4,
        "date_observation",
        "02/10/2025",
    ),
)
def _(book):
    cell(book, 4, "date_observation", d("2025-10-02"))


@book_case(
    "required_unless",
    "Catégorie vide pour un titulaire",
    "rh_effectifs",
    expect("obligatoire sauf si « statut » vaut APPRENTI ou DROIT_PRIVE", "Effectifs", 3, "categorie"),
)  # fmt: skip
def _(book):
    cell(book, 3, "categorie", None)


# --- enumerations, yes/no, references, cross-row rules ---------------------------------------


@book_case(
    "enumeration_unknown",
    "Flux inconnu (VERRES au lieu de VERRE)",
    "dechets_collecte",
    expect("valeur non autorisée (attendu : OMR, EMB_PAP, VERRE", "Collecte", 4, "flux", "VERRES"),
)
def _(book):
    cell(book, 4, "flux", "VERRES")


@book_case(
    "yes_no_invalid",
    "Conformité « peut-être »",
    "eau_qualite",
    expect("attendu « oui » ou « non »", "Analyses", 5, "conforme", "peut-être"),
)
def _(book):
    cell(book, 5, "conforme", "peut-être")


@book_case(
    "reference_udi_unknown",
    "UDI absente du référentiel eau_udi",
    "eau_volumes",
    expect(
        "valeur inconnue de la source de référence « eau_udi »",
        "Volumes",
        5,
        "udi",
        "UDI-INCONNUE",
    ),
)
def _(book):
    cell(book, 5, "udi", "UDI-INCONNUE")


@book_case(
    "covers_all_communes",
    "Référentiel eau_udi sans deux communes membres",
    "eau_udi",
    expect(
        ["2 commune(s) membre(s) absente(s)", "Allouagne (62023)", "Saint-Venant (62770)"],
        "UDI",
        None,
        "code_insee",
    ),
)
def _(book):
    rows = book.sheet().rows
    book.sheet().rows = [r for r in rows if r[2] not in ("62023", "62770")]


@book_case(
    "column_le",
    "Plus d'autorisations que de demandes",
    "permis_de_louer",
    expect("« autorisations » (70) supérieur à « demandes » (64)", "Permis", 4, "autorisations"),
)
def _(book):
    cell(book, 4, "autorisations", 70)


@book_case(
    "declared_unknown_indicator",
    "Indicateur déclaré absent du catalogue",
    "indicateurs_declares",
    expect("identifiant d'indicateur inconnu du catalogue", "Indicateurs", 3, "indicator_id"),
)
def _(book):
    cell(book, 3, "indicator_id", "nombre_de_chateaux_d_eau")


@book_case(
    "declared_derived_indicator",
    "Indicateur calculé (derived) déclaré à la main",
    "indicateurs_declares",
    expect(
        "indicateur calculé à partir d'une source détaillée",
        "Indicateurs",
        2,
        "indicator_id",
        "water_network_length",
    ),
)
def _(book):
    cell(book, 2, "indicator_id", "water_network_length")


@book_case(
    "declared_other_department",
    "Indicateur de la direction de l'habitat déclaré dans le dossier de l'eau",
    "indicateurs_declares",
    expect("indicateur de la direction « housing »", "Indicateurs", 3, "indicator_id"),
)
def _(book):
    cell(book, 3, "indicator_id", "housing_fair_edition")


@book_case(
    "declared_negative_value",
    "Valeur négative pour un indicateur qui ne l'admet pas",
    "indicateurs_declares",
    expect("valeur négative non autorisée pour cet indicateur", "Indicateurs", 2, "valeur", "-12"),
)
def _(book):
    cell(book, 2, "valeur", -12)


# --- communes -----------------------------------------------------------------------------------


@book_case(
    "commune_outside_by_code",
    "Code INSEE de Lens (62498), hors de l'agglomération",
    "dechets_collecte",
    expect("commune hors de l'agglomération", "Collecte", 3, "code_insee", "62498"),
)
def _(book):
    cell(book, 3, "code_insee", "62498")


@book_case(
    "commune_outside_by_name",
    "Commune Lens, hors de l'agglomération",
    "assainissement_activite",
    expect("commune inconnue ou hors de l'agglomération", "Activité", 3, "commune", "Lens"),
)
def _(book):
    cell(book, 3, "commune", "Lens")


@book_case(
    "commune_ambiguous",
    "Nom de commune incomplet qui désigne deux communes (Estrée)",
    "assainissement_activite",
    expect(
        ["nom de commune ambigu", "Estrée-Blanche (62313)", "Estrée-Cauchy (62314)"],
        "Activité",
        4,
        "commune",
        "Estrée",
    ),
)
def _(book):
    cell(book, 4, "commune", "Estrée")


@book_case(
    "commune_shortened",
    "Nom de commune abrégé (Bruay)",
    "permis_de_louer",
    expect("vouliez-vous dire Bruay-la-Buissière (62178)", "Permis", 3, "commune", "Bruay"),
)
def _(book):
    cell(book, 3, "commune", "Bruay")


@book_case(
    "commune_code_malformed",
    "Code INSEE à 4 chiffres",
    "dechets_collecte",
    expect("code INSEE invalide", "Collecte", 2, "code_insee", "6211"),
)
def _(book):
    cell(book, 2, "code_insee", "6211")


@book_case(
    "commune_code_and_name_disagree",
    "Colonnes code_insee et commune toutes deux présentes et contradictoires",
    "logements_sociaux",
    expect("ne désignent pas la même commune", "Opérations", 3, "commune", "Lillers"),
)
def _(book):
    rows = book.sheet().rows
    rows[0].append("commune")
    for row, name in zip(rows[1:], ["Béthune", "Lillers", "Nœux-les-Mines"], strict=True):
        row.append(name)


# --- control totals and duplicates ---------------------------------------------------------


@book_case(
    "control_total_wrong",
    "Ligne de total différente de la somme des lignes",
    "eau_reseau",
    expect(
        "ligne de total différente de la somme des lignes au-dessus (somme calculée : 468.75)",
        "Réseaux",
        6,
        "lineaire_km",
        "470",
    ),
)
def _(book):
    book.sheet().rows.append(["Total", None, None, 470, 32.5, 3.75, 44500, 2180000])


@book_case(
    "control_total_not_a_number",
    "Ligne de total avec un texte au lieu d'un nombre",
    "dechets_collecte",
    expect("ligne de total : n'est pas un nombre", "Collecte", 14, "tonnage_t", "beaucoup"),
)
def _(book):
    book.sheet().rows.append(["TOTAL GÉNÉRAL", None, None, "beaucoup"])


@book_case(
    "duplicate_grain",
    "Même commune, mois et flux sur deux lignes (2025-01 et janvier 2025)",
    "dechets_collecte",
    expect(
        "doublon : même clé (code_insee, mois, flux) que la ligne 2",
        "Collecte",
        14,
        "code_insee",
        "62119 / 01/01/2025 / OMR",
    ),
)
def _(book):
    book.sheet().rows.append(["62119", "janvier 2025", "OMR", 10])


@book_case(
    "duplicate_identifier",
    "Identifiant d'action en double",
    "dechets_prevention",
    expect("doublon : même clé (id_action) que la ligne 2", "Actions", 5, "id_action", "A-001"),
)
def _(book):
    cell(book, 5, "id_action", "A-001")


@book_case(
    "enumeration_filiere_unknown",
    "Filière de traitement hors liste (RECYCLAGE)",
    "dechetteries_apports",
    expect("valeur non autorisée (attendu : REEMPLOI", "Apports", 3, "filiere", "RECYCLAGE"),
)
def _(book):
    cell(book, 3, "filiere", "RECYCLAGE")


@book_case(
    "month_as_number",
    "Mois saisi comme un nombre (202501)",
    "dechetteries_apports",
    expect("nombre au lieu d'un mois", "Apports", 5, "mois", "202502"),
)
def _(book):
    cell(book, 5, "mois", 202502)


# --- Excel error values and formulas ---------------------------------------------------------


@book_case(
    "excel_error_typed",
    "Valeur d'erreur #N/A tapée ou collée en valeur",
    "eau_volumes",
    expect("valeur d'erreur Excel #N/A", "Volumes", 6, "volume_consomme_autorise_m3", "#N/A"),
)
def _(book):
    cell(book, 6, "volume_consomme_autorise_m3", "#N/A")


@book_case(
    "formula_cached_error",
    "Formule dont la valeur enregistrée est #DIV/0!",
    "eau_reseau",
    expect("valeur d'erreur Excel #DIV/0!", "Réseaux", 3, "investissement_eur", "#DIV/0!"),
)
def _(book):
    cell(book, 3, "investissement_eur", Formula("=420000/0", "#DIV/0!"))
    cell(book, 4, "investissement_eur", Formula("=600000+10000", 610000))


@book_case(
    "formula_without_value",
    "Formule jamais calculée (classeur produit par un programme)",
    "dechets_collecte",
    expect("formule sans valeur calculée", "Collecte", 7, "tonnage_t"),
)
def _(book):
    cell(book, 7, "tonnage_t", Formula("=D6*1.1"))


@book_case(
    "too_many_cells",
    "Valeur égarée dans la dernière colonne (XFD) : zone utilisée de 16 384 colonnes",
    "assainissement_activite",
    expect(["feuille « Activité » trop grande", "cellules"], "Activité"),
)
def _(book):
    spec = book.sheet()
    spec.rows.extend([[] for _ in range(400)])
    spec.rows[-1] = [None] * 16383 + ["x"]


# --- files that are not (whole) workbooks -------------------------------------------------------


@case(
    "truncated_xlsx",
    "Classeur tronqué (copie interrompue)",
    "eau_volumes",
    expect("classeur .xlsx endommagé ou incomplet"),
)
def _(path: Path) -> None:
    full = write_book(valid_book("eau_volumes"), path).read_bytes()
    path.write_bytes(full[: len(full) * 6 // 10])


@case(
    "corrupted_part",
    "Classeur dont la feuille est altérée (octets modifiés, sommaire intact)",
    "eau_reseau",
    expect(["classeur .xlsx endommagé", "xl/worksheets/sheet1.xml"]),
)
def _(path: Path) -> None:
    data = bytearray(write_book(valid_book("eau_reseau"), path).read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("xl/worksheets/sheet1.xml")
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 :][:4])
    start = info.header_offset + 30 + name_length + extra_length
    for offset in range(start + 20, start + info.compress_size - 20, 7):
        data[offset] ^= 0x55
    path.write_bytes(bytes(data))


@case(
    "pdf_renamed",
    "Document PDF renommé en .xlsx",
    "eau_udi",
    expect("c'est un document PDF renommé en .xlsx"),
)
def _(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n"
        b"%%EOF\n"
    )


@case(
    "xls_renamed",
    "Ancien classeur Excel 97-2003 (.xls) renommé en .xlsx",
    "dechets_collecte",
    expect("classeur Excel 97-2003 (.xls) renommé en .xlsx"),
)
def _(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16) + b"\x3e\x00\x03\x00\xfe\xff\x09\x00"
    path.write_bytes(header + bytes(512 - len(header)) + bytes(range(256)) * 6)


@case(
    "ods_renamed",
    "Classeur LibreOffice (.ods) renommé en .xlsx",
    "rh_arretes",
    expect("classeur OpenDocument (.ods) renommé"),
)
def _(path: Path) -> None:
    write_raw_zip(
        path,
        [
            RawPart(
                "mimetype",
                b"application/vnd.oasis.opendocument.spreadsheet",
                zipfile.ZIP_STORED,
                zlib.crc32(b"application/vnd.oasis.opendocument.spreadsheet"),
                46,
            ),
            raw_part("content.xml", b"<office:document-content/>"),
        ],
    )


@case(
    "csv_renamed_xlsx",
    "Fichier CSV renommé en .xlsx",
    "assainissement_activite",
    expect("c'est un fichier texte (CSV ?) renommé en .xlsx"),
)
def _(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("commune;mois\nBéthune;janvier 2025\n".encode("cp1252"))


@case("empty_file", "Fichier vide (0 octet)", "rh_arretes", expect("le fichier est vide"))
def _(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _outside(path: Path) -> Path:
    """A valid workbook of the case's source (other figures) outside its sources/ folder:
    read, it would be accepted."""
    case_dir = path.parents[3]
    book = valid_book("eau_volumes")
    cell(book, 2, "volume_produit_m3", 4321)
    return write_book(book, case_dir / "ailleurs" / path.name)


@case(
    "delivery_symlink_outside",
    "Lien symbolique vers un classeur hors du dossier des livraisons",
    "eau_volumes",
    expect("ce fichier est un lien (raccourci) vers un autre fichier"),
)
def _(path: Path) -> None:
    target = _outside(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(Path("..", "..", "..", "ailleurs", target.name))


@case(
    "delivery_hard_link",
    "Lien physique (le même fichier sous deux noms, l'un hors du dossier des livraisons)",
    "eau_volumes",
    expect("ce fichier est un lien physique"),
)
def _(path: Path) -> None:
    target = _outside(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.hardlink_to(target)


# --- CSV encodings and separators -------------------------------------------------------------


CSV_SHEET = "assainissement_activite_2025.csv"  # a CSV file is one sheet, named after it


def _csv_rows(source: str) -> list[list[str]]:
    from_book = valid_book(source).sheet().rows
    return [["" if v is None else str(v) for v in row] for row in from_book]


def _csv_text(rows: list[list[str]], sep: str = ";") -> str:
    return "\r\n".join(sep.join(row) for row in rows) + "\r\n"


def csv_case(name: str, title_fr: str, source: str, *expected: Expect):
    def register(make_bytes):
        def write(path: Path) -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(make_bytes(_csv_rows(source)))

        CASES.append(Case(name, title_fr, source, list(expected), write, extension="csv"))
        return make_bytes

    return register


@csv_case(
    "csv_utf16",
    "CSV enregistré en « Texte Unicode » (UTF-16)",
    "assainissement_activite",
    expect("encodage UTF-16 (« Texte Unicode ») non accepté"),
)
def _(rows):
    return _csv_text(rows).encode("utf-16")


@csv_case(
    "csv_undecodable",
    "CSV ni en UTF-8 ni en Windows-1252 (octets indéfinis)",
    "assainissement_activite",
    expect(["encodage non reconnu (octet 0x81 ligne 3)", "UTF-8 ou Windows-1252"]),
)
def _(rows):
    rows[2][0] = "Bruay-la-Buissi\x81re"
    return _csv_text(rows).encode("latin-1", errors="replace")


@csv_case(
    "csv_double_encoded",
    "CSV converti deux fois en UTF-8 (« BÃ©thune »)",
    "assainissement_activite",
    expect("« BÃ©thune » au lieu de « Béthune »", CSV_SHEET, 2, "commune", "BÃ©thune"),
    expect("au lieu de « Bruay-la-Buissière »", CSV_SHEET, 3, "commune"),
    expect("« NÅ“ux-les-Mines » au lieu de « Nœux-les-Mines »", CSV_SHEET, 4, "commune"),
    expect(["mois illisible", "au lieu de « février 2025 »"], CSV_SHEET, 4, "mois"),
)
def _(rows):
    return _csv_text(rows).encode("utf-8").decode("cp1252").encode("utf-8")


@csv_case(
    "csv_tab_separated",
    "CSV séparé par des tabulations",
    "assainissement_activite",
    expect("séparateur tabulation non accepté"),
)
def _(rows):
    return _csv_text(rows, "\t").encode("utf-8")


@csv_case(
    "csv_cp1252_negative",
    "CSV Windows-1252 à point-virgule avec un nombre négatif",
    "assainissement_activite",
    expect(
        "valeur négative non autorisée",
        "assainissement_activite_2025.csv",
        3,
        "controles_spanc_vente",
        "-1",
    ),
)
def _(rows):
    rows[2][2] = "-1"
    return _csv_text(rows).encode("cp1252")


@csv_case(
    "csv_integer_too_large",
    "CSV avec 99999999999999999999 dans une colonne d'entiers (faisait planter l'ingestion)",
    "assainissement_activite",
    expect(
        "nombre trop grand",
        "assainissement_activite_2025.csv",
        3,
        "controles_spanc_vente",
        "99999999999999999999",
    ),
)
def _(rows):
    rows[2][2] = "99999999999999999999"
    return _csv_text(rows).encode("utf-8")


# --- figures that were read wrong (issue 15): refused, never guessed --------------------------
# A .csv line with another number of fields than its header, a hidden data sheet or hidden
# data rows, a unit that is not the column's, a register over two sheets, NaN, invisible
# characters in keys, a workbook holding a part twice, formats other than .xlsx and .csv.


@csv_case(
    "csv_decimal_comma_shifts_columns",
    "CSV séparé par des virgules avec une virgule décimale non protégée (colonnes décalées)",
    "assainissement_activite",
    expect(
        "ligne de 6 champs alors que l'en-tête en a 5",
        CSV_SHEET,
        6,
        None,
        "Allouagne,octobre 2025,0,0,1,0",
    ),
)
def _(rows):
    rows.append(["Allouagne", "octobre 2025", "0", "0", "1", "0"])
    return _csv_text(rows, ",").encode("utf-8")


@csv_case(
    "csv_line_missing_a_field",
    "CSV dont une ligne a un champ de moins (la dernière colonne, facultative, serait lue 0)",
    "dechets_prevention",
    expect("ligne de 5 champs alors que l'en-tête en a 6", "dechets_prevention_2025.csv", 4),
)
def _(rows):
    rows[3] = rows[3][:5]
    return _csv_text(rows).encode("utf-8")


@csv_case(
    "csv_mixed_encodings",
    "CSV dont une ligne est en UTF-8 et les autres en Windows-1252 (fichiers assemblés)",
    "assainissement_activite",
    expect("encodage mélangé : la ligne 3 est écrite en UTF-8 et la ligne 2 en Windows-1252"),
)
def _(rows):
    lines = _csv_text(rows).split("\r\n")
    return "\r\n".join(lines[:2]).encode("cp1252") + ("\r\n" + "\r\n".join(lines[2:])).encode()


@csv_case(
    "csv_invisible_character_in_key",
    "CSV : même déchèterie, mois et fraction deux fois, l'une suivie d'un gluon (U+2060)",
    "dechetteries_apports",
    expect(
        "doublon : même clé (decheterie, mois, fraction) que la ligne 4",
        "dechetteries_apports_2025.csv",
        6,
        "decheterie",
        "Isbergues / 01/01/2025 / TOUT_VENANT",
    ),
)
def _(rows):
    rows.append(["Isbergues\u2060", "2025-01", "TOUT_VENANT", "ENFOUISSEMENT", "3"])
    return _csv_text(rows).encode("utf-8")


@csv_case(
    "csv_unit_not_the_columns",
    "CSV : tonnage en kilogrammes (64 750 kg) dans une colonne en tonnes",
    "dechetteries_apports",
    expect(
        "unité « kg » différente de celle de la colonne (t)",
        "dechetteries_apports_2025.csv",
        4,
        "tonnage_t",
        "64 750 kg",
    ),
)
def _(rows):
    rows[3][4] = "64 750 kg"
    return _csv_text(rows).encode("utf-8")


@book_case(
    "unit_kg_in_tonnes",
    "Tonnage saisi en kilogrammes (12 500 kg) dans une colonne en tonnes",
    "dechets_collecte",
    expect("unité « kg » différente de celle de la colonne (t)", "Collecte", 6, "tonnage_t", "12 500 kg"),
)  # fmt: skip
def _(book):
    cell(book, 6, "tonnage_t", "12 500 kg")


@book_case(
    "unit_percent_in_euros",
    "Pourcentage (35 %) dans une colonne en euros",
    "logements_sociaux",
    expect("unité « % » différente de celle de la colonne (€)", "Opérations", 3, "aide_agglo_eur", "35 %"),
)  # fmt: skip
def _(book):
    cell(book, 3, "aide_agglo_eur", "35 %")


@book_case(
    "unit_euros_in_cubic_metres",
    "Montant en euros (125 000 €) dans une colonne en m3",
    "eau_volumes",
    expect("unité « € » différente de celle de la colonne (m3)", "Volumes", 4, "volume_produit_m3", "125 000 €"),
)  # fmt: skip
def _(book):
    cell(book, 4, "volume_produit_m3", "125 000 €")


@book_case(
    "unit_in_a_column_without_unit",
    "Quotité écrite « 80 % » (la colonne n'a pas d'unité : 0,8)",
    "rh_effectifs",
    expect("unité « % » dans la cellule : cette colonne n'a pas d'unité", "Effectifs", 4, "quotite", "80 %"),
)  # fmt: skip
def _(book):
    cell(book, 4, "quotite", "80 %")


@book_case(
    "number_english_format",
    "Tonnage au format anglais (1,234.5)",
    "dechets_collecte",
    expect("séparateur de milliers « , » non accepté", "Collecte", 3, "tonnage_t", "1,234.5"),
)
def _(book):
    cell(book, 3, "tonnage_t", "1,234.5")


def _old_collecte() -> SheetSpec:
    rows = [list(row) for row in valid_book("dechets_collecte").sheet().rows]
    for row in rows[1:]:
        row[3] = row[3] * 2
    return SheetSpec("Ancienne version", rows)


@book_case(
    "hidden_sheet_first",
    "Feuille masquée placée en premier, avec l'en-tête et d'autres chiffres",
    "dechets_collecte",
    expect(
        "la feuille « Ancienne version » (masquée) porte elle aussi l'en-tête et 12 ligne(s)",
        "Ancienne version",
        1,
    ),
)
def _(book):
    hidden = _old_collecte()
    hidden.state = "hidden"
    book.sheets.insert(0, hidden)


@book_case(
    "very_hidden_sheet_first",
    "Feuille « très masquée » (invisible même avec Afficher) placée en premier",
    "dechets_collecte",
    expect(
        "la feuille « Ancienne version » (masquée) porte elle aussi l'en-tête et 12 ligne(s)",
        "Ancienne version",
        1,
    ),
)
def _(book):
    hidden = _old_collecte()
    hidden.state = "very_hidden"
    book.sheets.insert(0, hidden)


@book_case(
    "hidden_data_sheet_only",
    "La seule feuille qui porte l'en-tête et les données est masquée",
    "dechets_collecte",
    expect("la feuille « Collecte », qui porte l'en-tête et les données, est masquée", "Collecte", 1),
)  # fmt: skip
def _(book):
    book.sheet().state = "hidden"
    book.sheets.insert(0, SheetSpec("Notice", [["Tonnages collectés 2025"]]))


@book_case(
    "very_hidden_data_sheet_only",
    "La seule feuille de données est « très masquée »",
    "dechets_collecte",
    expect("qui porte l'en-tête et les données, est « très masquée »", "Collecte", 1),
)
def _(book):
    book.sheet().state = "very_hidden"
    book.sheets.append(SheetSpec("Notice", [["Tonnages collectés 2025"]]))


@book_case(
    "register_split_over_two_sheets",
    "Registre réparti sur deux feuilles portant chacune l'en-tête (la seconde était ignorée)",
    "eau_volumes",
    expect("la feuille « Volumes (2) » porte elle aussi l'en-tête et 3 ligne(s)", "Volumes (2)", 1),
)
def _(book):
    rows = book.sheet().rows
    book.sheets = [SheetSpec("Volumes", rows[:4]), SheetSpec("Volumes (2)", rows[:1] + rows[4:])]


@book_case(
    "register_continued_without_header",
    "Registre continué sur une deuxième feuille, sans ligne d'en-tête",
    "eau_volumes",
    expect("la feuille « Feuil2 » contient 3 ligne(s) qui ont la forme des lignes de données", "Feuil2", 1),
)  # fmt: skip
def _(book):
    rows = book.sheet().rows
    book.sheets = [SheetSpec("Volumes", rows[:4]), SheetSpec("Feuil2", rows[4:])]


@case(
    "row_of_zero_height",
    "Ligne de données masquée par une hauteur nulle (et non par « Masquer »)",
    "dechets_collecte",
    expect("ligne masquée contenant des données (hauteur de ligne nulle)", "Collecte", 5),
)
def _(path: Path) -> None:
    write_book(valid_book("dechets_collecte"), path)
    patch_part(
        path,
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b'<row r="5" ', b'<row r="5" ht="0" customHeight="1" '),
    )


@book_case(
    "rows_hidden_by_a_filter",
    "Filtre automatique actif : les lignes d'une commune sont cachées",
    "dechets_collecte",
    *(
        expect("ligne masquée contenant des données (cachée par le filtre automatique A1:D13)", "Collecte", row)
        for row in range(8, 14)
    ),
)  # fmt: skip
def _(book):
    book.sheet().autofilter = "A1:D13"
    book.sheet().hidden_rows = list(range(8, 14))


@book_case(
    "header_row_hidden",
    "Ligne d'en-tête masquée",
    "dechets_collecte",
    expect("ligne d'en-tête masquée", "Collecte", 1),
)
def _(book):
    book.sheet().hidden_rows = [1]


@book_case(
    "hidden_column_with_data",
    "Colonne investissement_eur masquée (ses valeurs ne se voient pas)",
    "eau_reseau",
    expect("colonne masquée (ou de largeur nulle) contenant des données", "Réseaux", 1, "investissement_eur"),
)  # fmt: skip
def _(book):
    book.sheet().hidden_columns = [7]


@case(
    "column_of_zero_width",
    "Colonne volume_produit_m3 de largeur nulle",
    "eau_volumes",
    expect("colonne masquée (ou de largeur nulle) contenant des données", "Volumes", 1, "volume_produit_m3"),
)  # fmt: skip
def _(path: Path) -> None:
    write_book(valid_book("eau_volumes"), path)
    patch_part(
        path,
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(
            b"<sheetData>",
            b'<cols><col min="3" max="3" width="0" customWidth="1"/></cols><sheetData>',
        ),
    )


_NAN_MARK = 987654.25  # written, then replaced by NaN in the XML (no library writes NaN)


@case(
    "numeric_nan_cell",
    "Cellule numérique NaN dans une colonne « vide = 0 » (était lue vide, donc 0)",
    "eau_volumes",
    expect("valeur NaN", "Volumes", 3, "volume_importe_m3", "NaN"),
)
def _(path: Path) -> None:
    book = valid_book("eau_volumes")
    cell(book, 3, "volume_importe_m3", _NAN_MARK)
    write_book(book, path)
    patch_part(
        path,
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b"<v>987654.25</v>", b"<v>NaN</v>"),
    )


@book_case(
    "invisible_character_in_key",
    "Même prélèvement et même paramètre deux fois, l'un suivi d'un espace sans largeur (U+200B)",
    "eau_qualite",
    expect("doublon : même clé (id_prelevement, parametre) que la ligne 3", "Analyses", 6, "id_prelevement", "P-001 / Nitrates"),
)  # fmt: skip
def _(book):
    book.sheet().rows.append(
        ["P-001\u200b", d("2025-03-15"), "UDI-BETHUNOIS", "physico-chimique", "Nitrates", 30, "mg/L", 50, "oui"]
    )  # fmt: skip


@book_case(
    "invisible_characters_in_enumeration",
    "Fraction « BOIS » précédée d'une marque d'ordre (BOM) et suivie d'un ZWJ : doublon",
    "dechetteries_apports",
    expect(
        "doublon : même clé (decheterie, mois, fraction) que la ligne 2",
        "Apports",
        6,
        "decheterie",
        "Béthune / 01/01/2025 / BOIS",
    ),
)
def _(book):
    book.sheet().rows.append(["Béthune", "2025-01", "\ufeffBOIS\u200d", "VALORISATION_MATIERE", 3])


@book_case(
    "percent_format_in_euros",
    "Cellule au format Pourcentage (affiche 35 %, contient 0,35) dans une colonne en euros",
    "logements_sociaux",
    expect("cellule au format Pourcentage : elle affiche 35 % mais contient 0,35", "Opérations", 3, "credits_etat_eur", "0.35"),
)  # fmt: skip
def _(book):
    cell(book, 3, "credits_etat_eur", 0.35)
    book.sheet().number_formats = {"H3": "0%"}


@book_case(
    "unit_shown_by_the_number_format",
    "Tonnage affiché « 12 500 kg » par le format de la cellule, dans une colonne en tonnes",
    "dechets_collecte",
    expect("qui affiche l'unité « kg » : celle de la colonne est t", "Collecte", 4, "tonnage_t", "12500"),
)  # fmt: skip
def _(book):
    cell(book, 4, "tonnage_t", 12500)
    book.sheet().number_formats = {"D4": '#,##0 "kg"'}


@book_case(
    "value_divided_by_the_number_format",
    "Volume affiché divisé par 1 000 par le format de la cellule (#,##0,)",
    "eau_volumes",
    expect("qui affiche le nombre divisé par 1 000", "Volumes", 2, "volume_produit_m3", "1000"),
)
def _(book):
    book.sheet().number_formats = {"C2": "#,##0,"}


@book_case(
    "value_hidden_by_the_number_format",
    "Tonnage masqué par le format de la cellule (;;; : la cellule paraît vide)",
    "dechets_collecte",
    expect("qui n'affiche pas le nombre qu'elle contient (96)", "Collecte", 7, "tonnage_t", "96"),
)
def _(book):
    book.sheet().number_formats = {"D7": ";;;"}


@book_case(
    "data_row_above_the_header",
    "Ligne de données placée au-dessus de l'en-tête (elle était ignorée comme un titre)",
    "eau_volumes",
    expect("ligne au-dessus de l'en-tête qui a la forme d'une ligne de données", "Volumes", 1),
)
def _(book):
    book.sheet().rows.insert(0, ["UDI-LYS", "2025-04", 4001, 0, 0, 3201])


@case(
    "numeric_infinite_cell",
    "Cellule numérique infinie (INF) dans une colonne de texte (était lue « inf »)",
    "eau_qualite",
    expect("nombre infini", "Analyses", 3, "unite", "inf"),
)
def _(path: Path) -> None:
    book = valid_book("eau_qualite")
    cell(book, 3, "unite", _NAN_MARK)
    write_book(book, path)
    patch_part(
        path,
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b"<v>987654.25</v>", b"<v>INF</v>"),
    )


def _book_parts(source: str, path: Path) -> list[tuple[str, bytes]]:
    write_book(valid_book(source), path)
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


@case(
    "archive_part_twice",
    "Classeur contenant deux fois la feuille xl/worksheets/sheet1.xml (l'une modifiée)",
    "dechets_collecte",
    expect("l'élément « xl/worksheets/sheet1.xml » figure deux fois dans le classeur"),
)
def _(path: Path) -> None:
    parts = _book_parts("dechets_collecte", path)
    sheet = dict(parts)["xl/worksheets/sheet1.xml"]
    forged = sheet.replace(b"<v>812.4</v>", b"<v>8124</v>")
    write_raw_zip(
        path, [raw_part(name, data) for name, data in parts] + [raw_part("xl/worksheets/sheet1.xml", forged)]
    )  # fmt: skip


@case(
    "archive_part_twice_other_case",
    "Classeur contenant la feuille sous deux noms qui ne diffèrent que par la casse",
    "dechets_collecte",
    expect("l'élément « xl/worksheets/Sheet1.xml » figure deux fois dans le classeur"),
)
def _(path: Path) -> None:
    parts = _book_parts("dechets_collecte", path)
    sheet = dict(parts)["xl/worksheets/sheet1.xml"]
    write_raw_zip(
        path, [raw_part(name, data) for name, data in parts] + [raw_part("xl/worksheets/Sheet1.xml", sheet)]
    )  # fmt: skip


@case(
    "two_sheets_of_one_name",
    "Deux feuilles du même nom (Collecte, COLLECTE) dans le classeur",
    "dechets_collecte",
    expect("deux feuilles portent le nom « Collecte »"),
)
def _(path: Path) -> None:
    book = valid_book("dechets_collecte")
    book.sheets.append(SheetSpec("Autre", [["code_insee"], ["62119"]]))
    write_book(book, path)
    patch_part(
        path, "xl/workbook.xml", lambda xml: xml.replace(b'name="Autre"', b'name="COLLECTE"')
    )


@case(
    "xlsm_renamed_xlsx",
    "Classeur avec macros (.xlsm) renommé en .xlsx",
    "dechets_collecte",
    expect("classeur avec macros (.xlsm) renommé en .xlsx"),
)
def _(path: Path) -> None:
    parts = _book_parts("dechets_collecte", path)
    write_raw_zip(
        path,
        [raw_part(name, data) for name, data in parts]
        + [raw_part("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0" + bytes(60))],
    )


@case(
    "xlsm_delivery",
    "Classeur livré au format .xlsm (était ignoré, sans rapport)",
    "dechets_collecte",
    expect(["format .xlsm non accepté", "classeur Excel avec macros", "Classeur Excel (.xlsx)"]),
    extension="xlsm",
)
def _(path: Path) -> None:
    book = valid_book("dechets_collecte")
    cell(book, 2, "tonnage_t", 815.5)  # (not the bytes of the accepted .xlsx: judged)
    write_book(book, path)


@case(
    "xls_delivery",
    "Classeur livré au format Excel 97-2003 (.xls)",
    "eau_volumes",
    expect(["format .xls non accepté", "Excel 97-2003", "Classeur Excel (.xlsx)"]),
    extension="xls",
)
def _(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16) + b"\x3e\x00\x03\x00\xfe\xff\x09\x00"
    path.write_bytes(header + bytes(512 - len(header)) + bytes(range(256)) * 6)


@case(
    "ods_delivery",
    "Classeur livré au format LibreOffice (.ods)",
    "rh_arretes",
    expect(["format .ods non accepté", "LibreOffice", "Classeur Excel (.xlsx)"]),
    extension="ods",
)
def _(path: Path) -> None:
    mimetype = b"application/vnd.oasis.opendocument.spreadsheet"
    write_raw_zip(
        path,
        [
            RawPart("mimetype", mimetype, zipfile.ZIP_STORED, zlib.crc32(mimetype), len(mimetype)),
            raw_part("content.xml", b'<office:document-content office:version="1.3"/>'),
        ],
    )


# --- heavy: huge sheets and zip bombs (cheap to write, made to exhaust a trusting reader) ----

HUGE_ROWS = 250_001  # beyond readers.sheet.MAX_ROWS (200 000)


_HUGE_ROW = (
    b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>%s</t></is></c><c r="B%d" t="inlineStr"><is>'
    b'<t>2025-%02d</t></is></c><c r="C%d"><v>%d</v></c><c r="D%d"><v>0</v></c><c r="E%d"><v>0'
    b'</v></c><c r="F%d"><v>%d</v></c></row>'
)


@functools.cache
def _huge_rows_xml() -> bytes:
    """Rows 2 to HUGE_ROWS of a volumes sheet (one format per row: fast to build)."""
    udis = (b"UDI-BETHUNOIS", b"UDI-LYS")
    return b"".join(
        _HUGE_ROW % (r, r, udis[r % 2], r, r % 12 + 1, r, r * 7 % 9973, r, r, r, r % 977)
        for r in range(2, HUGE_ROWS + 1)
    )


def _huge_sheet_xml(dimension: bool) -> bytes:
    head = b'<dimension ref="A1:F%d"/>' % HUGE_ROWS if dimension else b""
    return (
        SHEET_OPEN
        + head
        + b"<sheetData>"
        + sheet_rows_xml([VOLUMES_HEADER])
        + _huge_rows_xml()
        + b"</sheetData></worksheet>"
    )


def _write_huge(path: Path, dimension: bool) -> None:
    data = _huge_sheet_xml(dimension)
    deflater = zlib.compressobj(1, zlib.DEFLATED, -15)
    sheet = RawPart(
        "xl/worksheets/sheet1.xml",
        deflater.compress(data) + deflater.flush(),
        zipfile.ZIP_DEFLATED,
        zlib.crc32(data),
        len(data),
    )
    write_raw_zip(path, skeleton_parts("Volumes") + [sheet])


@case(
    "huge_sheet",
    "Feuille de 250 001 lignes annoncées par sa zone utilisée (<dimension>)",
    "eau_volumes",
    expect(["feuille « Volumes » trop grande", "A1:F250001", "limite 200\u202f000 lignes"], "Volumes"),
    heavy=True,
)  # fmt: skip
def _(path: Path) -> None:
    _write_huge(path, dimension=True)


@case(
    "huge_sheet_without_dimension",
    "Feuille de 250 001 lignes sans zone utilisée déclarée (lignes comptées en flux)",
    "eau_volumes",
    expect(
        ["feuille « Volumes » trop grande : plus de 200", "limite 200\u202f000 lignes"], "Volumes"
    ),
    heavy=True,
)
def _(path: Path) -> None:
    _write_huge(path, dimension=False)


BOMB_BLOCK = 16 * 2**20  # bytes of blanks deflated once, repeated
BOMB_BLOCKS = 128  # 2 GiB once decompressed


def _bomb_part(declared_size: int | None) -> RawPart:
    """A sheet part of 2 GiB of blanks inside <sheetData>, about 2 MB once deflated: one
    block is deflated and flushed, then repeated (a full flush makes the blocks independent)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = SHEET_OPEN + b"<sheetData>" + sheet_rows_xml([VOLUMES_HEADER])
    tail = b"</sheetData></worksheet>"
    first = deflater.compress(head) + deflater.flush(zlib.Z_FULL_FLUSH)
    block = deflater.compress(b" " * BOMB_BLOCK) + deflater.flush(zlib.Z_FULL_FLUSH)
    last = deflater.compress(tail) + deflater.flush(zlib.Z_FINISH)
    size = len(head) + BOMB_BLOCK * BOMB_BLOCKS + len(tail)
    # the CRC is not computed (2 GiB to hash): no reader that rejects in time gets there
    return RawPart(
        "xl/worksheets/sheet1.xml",
        first + block * BOMB_BLOCKS + last,
        zipfile.ZIP_DEFLATED,
        0,
        size if declared_size is None else declared_size,
    )


@case(
    "zip_bomb",
    "Bombe zip : une feuille de 2 Gio compressée en 2 Mo (tailles annoncées exactes)",
    "eau_volumes",
    expect(["contenu compressé anormal (xl/worksheets/sheet1.xml : taux de compression", "bombe zip"]),
    heavy=True,
)  # fmt: skip
def _(path: Path) -> None:
    write_raw_zip(path, skeleton_parts("Volumes") + [_bomb_part(None)])


@case(
    "zip_bomb_forged_sizes",
    "Bombe zip dont l'en-tête annonce 100 Kio pour 2 Gio réels",
    "eau_volumes",
    expect(["contenu compressé anormal (xl/worksheets/sheet1.xml : plus de 100 Kio", "bombe zip"]),
    heavy=True,
)  # fmt: skip
def _(path: Path) -> None:
    write_raw_zip(path, skeleton_parts("Volumes") + [_bomb_part(100 * 1024)])


# ------------------------------------------------------------------------------------------
# writing


def write_baseline(out_dir: Path) -> dict[str, Path]:
    """The valid delivery of every source, under out_dir/_baseline/sources/."""
    paths = {}
    for source in BASELINE_ORDER:
        department, book = VALID[source]
        path = out_dir / "_baseline" / "sources" / str(YEAR) / department / f"{source}_{YEAR}.xlsx"
        paths[source] = write_book(copy.deepcopy(book), path)
    return paths


def write_case(case_: Case, out_dir: Path) -> Path:
    path = out_dir / case_.relative_path
    path.parent.mkdir(parents=True, exist_ok=True)
    case_.write(path)
    return path


def manifest() -> dict:
    def problem(e: Expect) -> dict:
        item = {"reason": e.reason if len(e.reason) > 1 else e.reason[0]}
        for key in ("sheet", "row", "column", "value"):
            if getattr(e, key) is not None:
                item[key] = getattr(e, key)
        return item

    return {
        "campaign_year": YEAR,
        "baseline": {s: f"_baseline/sources/{YEAR}/{VALID[s][0]}/{s}_{YEAR}.xlsx" for s in VALID},
        "cases": [
            {
                "name": c.name,
                "title_fr": c.title_fr,
                "source": c.source,
                "department": c.department,
                "file": c.relative_path,
                "heavy": c.heavy,
                "expected": [problem(e) for e in c.expect],
            }
            for c in CASES
        ],
    }


def manifest_text() -> str:
    header = (
        "# Corpus of bad deliveries: generated by tests/bad_inputs/generate.py, do not edit.\n"
        "# For each case: the file, its source, and every problem the rejection must report\n"
        "# (each reason string is a substring of the French reason; sheet/row/column/value as\n"
        "# written in the rejection report).\n"
    )
    return header + yaml.safe_dump(manifest(), allow_unicode=True, sort_keys=False, width=100)


def generate(out_dir: Path, heavy: bool = True) -> dict[str, Path]:
    """Write the baseline and every case; returns case name -> file."""
    out_dir = Path(out_dir)
    write_baseline(out_dir)
    written = {c.name: write_case(c, out_dir) for c in CASES if heavy or not c.heavy}
    (out_dir / "cases.yml").write_text(manifest_text(), encoding="utf-8")
    return written


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--manifest":
        Path(argv[1]).write_text(manifest_text(), encoding="utf-8")
        return 0
    if len(argv) in (1, 2) and not argv[0].startswith("-"):
        generate(Path(argv[0]), heavy="--light" not in argv)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
