"""Blank workbooks of the yearly collection campaign, derived from the source contracts.

``write_templates`` writes, for each department, one ``.xlsx`` per source it delivers:
``<out_dir>/<department>/<source_id>_<year>.xlsx``. The four departments of the detailed
sources (the contracts' ``department``) get those sources; every department owning
``declared`` indicators of the catalogue gets an ``indicateurs_declares`` workbook
pre-filled with its indicator ids.

Each workbook has, in this order:

- ``Notice``: what the file is, the deadline and where to send it, the rules of the kit in
  plain French, and a table of the columns (meaning, type, unit, required, allowed values);
- ``Données``: the header row the ingestion expects (exactly the contract's column names,
  ``code_insee`` for communes) and Excel data validation (commune and value lists, numeric
  bounds, dates of the campaign year) on rows 2 to 5000;
- ``Indicateurs`` (declared figures only): id, label, unit, nature and last published figure
  of the department's indicators;
- ``Listes`` (hidden): the 100 member communes (code and name) and the lists used by the
  dropdowns.

The Notice never holds a row that could pass for the data header, so the ingestion always
picks ``Données``. Output is deterministic: the same arguments give byte-identical files.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import re
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from dagster_project.contracts.model import ANY_DEPARTMENT, TYPE_LABELS_FR, Column, Contract
from dagster_project.settings import CATALOGUE_CSV, COMMUNES_CSV

DECLARED_SOURCE = "indicateurs_declares"
NOTICE_SHEET = "Notice"
DATA_SHEET = "Données"
INDICATORS_SHEET = "Indicateurs"
LISTS_SHEET = "Listes"
FIRST_DATA_ROW = 2
LAST_VALIDATED_ROW = 5000
STEERING_DIRECTION = "Direction du Pilotage Stratégique"
DEFAULT_DEADLINE = "voir le courrier de campagne"

# (department, source_id) -> (due date, contact e-mail or None); from sources/<year>/campagne.yml
Deadlines = Mapping[tuple[str, str], tuple[dt.date | str | None, str | None]]

UNITS_FR = {
    "eur": "€",
    "eur_ht": "€ HT",
    "eur_per_year": "€ par an",
    "eur_per_unit": "€ par unité",
    "m3": "m³",
    "m3_per_year": "m³ par an",
    "m2": "m²",
    "t": "tonnes",
    "t_per_year": "tonnes par an",
    "t_co2_per_year": "tonnes de CO₂ par an",
    "km": "km",
    "ha": "ha",
    "jours": "jours",
    "days": "jours",
    "years": "années",
    "count": "nombre",
    "count_per_year": "nombre par an",
    "count_per_week": "nombre par semaine",
    "persons": "personnes",
    "inhabitants": "habitants",
    "inhabitants_per_km2": "habitants par km²",
    "communes": "communes",
    "dwellings": "logements",
    "jobs": "emplois",
    "agents": "agents",
    "pct": "%",
    "pct_per_year": "% par an",
    "pct_points": "points de %",
    "ratio": "ratio",
    "rank": "rang",
    "gwh_per_year": "GWh par an",
    "kwh": "kWh",
}
KINDS_FR = {"value": "valeur constatée", "forecast": "prévision", "target": "objectif"}
TYPE_LABELS_TEMPLATE = {**TYPE_LABELS_FR, "commune": "code INSEE (5 chiffres)"}
COLUMN_FORMATS = {"date": "DD/MM/YYYY", "month": "MMMM YYYY", "commune": "@"}
# The examples of the contracts' descriptions (« ex. janvier 2025, 2025-01 ou 01/2025 ») and
# of TYPE_LABELS_FR (« janvier 2025 ») are written for this campaign year: a template for
# year N shows them moved to N (an example of the following year stays in N + 1).
CONTRACT_EXAMPLES_YEAR = 2025
# The catalogue's last published figures (column published_2025) come from the 2025 report,
# whatever the campaign year: a fact, not an example.
PUBLISHED_REPORT_YEAR = 2025

_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=14)
_HEADING = Font(bold=True, size=12, color="1F4E78")
_REQUIRED_FILL = PatternFill("solid", fgColor="BDD7EE")
_OPTIONAL_FILL = PatternFill("solid", fgColor="E7E6E6")
_TABLE_FILL = PatternFill("solid", fgColor="DDEBF7")
_WRAP = Alignment(wrap_text=True, vertical="top")
_THIN = Side(style="thin", color="A6A6A6")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)


@dataclass(frozen=True)
class Indicator:
    indicator_id: str
    label_fr: str
    unit: str
    kind: str
    definition: str
    published: str
    period: str
    allow_negative: bool


# ----------------------------------------------------------------------------------------
# referentials


def load_communes(path: Path = COMMUNES_CSV) -> list[tuple[str, str]]:
    """(code_insee, nom) of the member communes, by code."""
    with Path(path).open(encoding="utf-8") as handle:
        return sorted((row["code_insee"], row["nom"]) for row in csv.DictReader(handle))


def load_declared_indicators(path: Path = CATALOGUE_CSV) -> dict[str, list[Indicator]]:
    """Declared indicators of the catalogue, by owning department (catalogue order)."""
    path = Path(path)
    negative: set[str] = set()
    extensions = path.with_name("indicator_catalogue_extensions.csv")
    if extensions.is_file():
        with extensions.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if str(row.get("allow_negative", "")).strip().lower() in ("true", "1", "oui"):
                    negative.add(row["indicator_id"])
    out: dict[str, list[Indicator]] = defaultdict(list)
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("computation") != "declared":
                continue
            out[row["department"]].append(
                Indicator(
                    indicator_id=row["indicator_id"],
                    label_fr=row.get("label_fr") or "",
                    unit=row.get("unit") or "",
                    kind=row.get("kind") or "",
                    definition=row.get("definition") or "",
                    published=row.get(f"published_{PUBLISHED_REPORT_YEAR}") or "",
                    period=row.get("published_period") or "",
                    allow_negative=row["indicator_id"] in negative,
                )
            )
    return dict(out)


def direction_of(department: str, contracts: Mapping[str, Contract]) -> str:
    """French name of a department's direction (contracts first, then the demo's table)."""
    for contract in contracts.values():
        if contract.department == department and contract.direction_fr:
            return contract.direction_fr
    from dagster_project.demo.declared import DIRECTIONS_FR

    return DIRECTIONS_FR.get(department, f"Direction « {department} »")


def unit_fr(unit: str | None) -> str:
    if not unit:
        return ""
    return UNITS_FR.get(unit, unit)


# ----------------------------------------------------------------------------------------
# plain-French descriptions of a column


def _num(value: float) -> str:
    """A bound written the French way (0,5 ; 1 000)."""
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", " ")
    return str(value).replace(".", ",")


def _fmt_date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return str(value)


_EXAMPLE = re.compile(r"\b(?:ex\.|par exemple)\s*[^);\n]*?(?=\)|;|\n|\.(?:\s|$)|$)")
_DATE_OR_YEAR = re.compile(
    r"(?<!\d)(?:(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{4})"
    r"|(?P<y2>\d{4})-(?P<m2>\d{2})-(?P<d2>\d{2})|(?P<year>(?:19|20)\d{2}))(?!\d)"
)


def _shift_years(text: str, years: int) -> str:
    """Every year of ``text`` (alone, in a month or in a date) ``years`` later; a date keeps
    its format, 29 February becomes 28 February in a common year."""
    if not years:
        return text

    def moved(year: int, month: int, day: int) -> dt.date | None:
        try:
            start = dt.date(year, month, day)
        except ValueError:
            return None
        try:
            return start.replace(year=year + years)
        except ValueError:
            return start.replace(year=year + years, day=28)

    def replace(m: re.Match) -> str:
        if m["year"]:
            return str(int(m["year"]) + years)
        if m["y"]:
            day = moved(int(m["y"]), int(m["m"]), int(m["d"]))
            if day is None:
                return m[0]
            return f"{day.day:0{len(m['d'])}d}/{day.month:0{len(m['m'])}d}/{day.year}"
        day = moved(int(m["y2"]), int(m["m2"]), int(m["d2"]))
        return day.isoformat() if day else m[0]

    return _DATE_OR_YEAR.sub(replace, text)


def examples_for_year(text: str, year: int) -> str:
    """A contract text with its examples (« ex. … ») in the campaign ``year``.

    Only the years inside an example move, by ``year - CONTRACT_EXAMPLES_YEAR``: a rule
    (« à partir de 2015 ») stays as written.
    """
    years = year - CONTRACT_EXAMPLES_YEAR
    if not years or not text:
        return text
    return _EXAMPLE.sub(lambda m: _shift_years(m[0], years), text)


def type_label_fr(kind: str, year: int) -> str:
    """French label of a column type, its example (« janvier 2025 ») in ``year``."""
    return _shift_years(TYPE_LABELS_TEMPLATE[kind], year - CONTRACT_EXAMPLES_YEAR)


def required_fr(column: Column) -> str:
    if column.default is not None:
        return f"non (vide = {_num(column.default) if isinstance(column.default, int | float) else column.default})"
    return "oui" if column.required else "non"


def _date_rule_fr(column: Column, year: int) -> list[str]:
    rule = column.effective_date_range
    parts: list[str] = []
    if rule == "campaign_year":
        parts.append(
            f"mois de l'année {year}" if column.type == "month" else f"dans l'année {year}"
        )
    elif isinstance(rule, dict):
        if rule.get("min_year"):
            parts.append(f"à partir de {rule['min_year']}")
        if rule.get("not_future"):
            parts.append("jamais dans le futur")
    return parts


def constraints_fr(column: Column, contract: Contract, year: int) -> str:
    """Allowed values and bounds of a column, in plain French."""
    parts: list[str] = []
    if column.allowed is not None:
        parts.append("valeurs : " + ", ".join(column.allowed))
    if column.type == "yes_no":
        parts.append("oui ou non")
    if column.type == "commune":
        parts.append("une des 100 communes de l'agglomération (liste déroulante)")
    if column.type in ("integer", "number"):
        low = column.lower_bound
        if low is not None:
            parts.append(f"≥ {_num(low)}")
        if column.min_exclusive is not None:
            parts.append(f"> {_num(column.min_exclusive)}")
        if column.max is not None:
            parts.append(f"≤ {_num(column.max)}")
        if column.max_exclusive is not None:
            parts.append(f"< {_num(column.max_exclusive)}")
        if column.step:
            parts.append(f"multiple de {_num(column.step)}")
        if column.allow_negative and low is None and column.min_exclusive is None:
            if _declared_value_column(contract) == column.name:
                parts.append(
                    "négatif seulement pour les indicateurs qui l'autorisent (feuille Indicateurs)"
                )
            else:
                parts.append("valeur négative acceptée")
    if column.type in ("date", "month"):
        parts.extend(_date_rule_fr(column, year))
    if column.not_after:
        parts.append(f"au plus tard la date « {column.not_after} » de la même ligne")
    if column.age_reference:
        low, high = column.age_years_min, column.age_years_max
        if low is not None and high is not None:
            parts.append(
                f"âge entre {_num(low)} et {_num(high)} ans à la date « {column.age_reference} »"
            )
    if column.unique:
        parts.append("valeur unique (pas de doublon)")
    for rule in contract.rules_of("references"):
        if rule["column"] == column.name:
            parts.append(f"doit exister dans la livraison « {rule['source']} » de {year}")
    for rule in contract.rules_of("column_le"):
        if rule["column"] == column.name:
            parts.append(f"≤ « {rule['other']} » de la même ligne")
    for rule in contract.rules_of("constant"):
        if rule["column"] == column.name:
            parts.append("identique sur toutes les lignes")
    for rule in contract.rules_of("required_unless"):
        if rule["column"] == column.name:
            parts.append(
                f"vide seulement si « {rule['other']} » vaut " + " ou ".join(rule["values"])
            )
    for rule in contract.rules_of("declared_indicator"):
        if rule["column"] == column.name:
            parts.append("un identifiant de la feuille Indicateurs (indicateur de votre direction)")
    if column.is_pseudonymised:
        parts.append("remplacé par un pseudonyme à l'intégration")
    return " ; ".join(parts)


def _declared_value_column(contract: Contract) -> str | None:
    rules = contract.rules_of("declared_indicator")
    return rules[0].get("value_column", "valeur") if rules else None


def header_of(column: Column) -> str:
    """Header written in the template (communes are given by INSEE code)."""
    return "code_insee" if column.type == "commune" else column.name


# ----------------------------------------------------------------------------------------
# Notice


def _kit_rules(contract: Contract, year: int, file_name: str) -> list[tuple[str, str]]:
    has_commune = any(c.type == "commune" for c in contract.columns)
    has_month = any(c.type == "month" for c in contract.columns)
    rename = " (seule exception : code_insee, voir « Communes »)" if has_commune else ""
    with_unit = [c for c in contract.columns if c.unit]
    units = (
        (
            "Une unité en fin de cellule n'est admise que si c'est celle de la colonne (colonne "
            f"« Unité » ci-dessous : 12 {unit_fr(with_unit[0].unit)} dans la colonne "
            f"{with_unit[0].name}) ; toute autre unité est refusée, jamais convertie (12 500 kg "
            "dans une colonne en tonnes)."
            if with_unit
            else "Écrivez les nombres sans unité : une unité dans la cellule est refusée."
        )
        + " La cellule doit afficher sa valeur : pas de format Pourcentage (sauf pour une part "
        "comprise entre 0 et 1), ni de format qui ajoute une unité ou divise par 1 000."
    )
    months = (
        f" Mois : cellule date (n'importe quel jour du mois), AAAA-MM, MM/AAAA ou « janvier {year} »."
        if has_month
        else ""
    )
    rules = [
        (
            "Un fichier = une livraison",
            f"Chaque envoi de ce fichier remplace entièrement le précédent pour la campagne {year} "
            "(rien n'est ajouté à l'envoi précédent) : renvoyez toujours le fichier complet. "
            f"Gardez le début du nom du fichier ({file_name}) : il désigne la source.",
        ),
        (
            "Accepté ou refusé en entier",
            "Le fichier est accepté ou refusé en entier : une seule cellule en erreur et rien "
            "n'est intégré. Vous recevez alors un rapport de rejet qui indique, pour chaque "
            "motif, la feuille, les lignes, la colonne et les valeurs concernées ; la livraison "
            "acceptée précédemment reste en vigueur. Un fichier accepté dont certains chiffres "
            "semblent anormaux reçoit un avis « à confirmer » : vérifiez-les.",
        ),
        (
            "Ligne d'en-tête",
            f"La ligne 1 de la feuille « {DATA_SHEET} » (noms des colonnes) doit rester : ne la "
            f"supprimez pas et ne renommez pas les colonnes{rename}. L'ordre des colonnes est libre ; une "
            "colonne ajoutée est ignorée. En-têtes bleus : colonnes obligatoires ; en-têtes gris : "
            "colonnes facultatives (la colonne peut rester vide).",
        ),
        (
            "Nombres",
            "Saisissez des nombres. La notation française est acceptée : 4 548 ou 4 548,5 "
            "(espaces entre les milliers, virgule décimale) ; le point décimal aussi (4548.5). "
            + units
            + " Les valeurs négatives sont refusées, sauf mention contraire dans le tableau "
            "ci-dessous.",
        ),
        (
            "Dates et mois" if has_month else "Dates",
            f"Dates : cellule date Excel ou texte JJ/MM/AAAA (ou AAAA-MM-JJ).{months} Une date "
            f"hors de l'année {year} est refusée, sauf mention contraire dans le tableau "
            "ci-dessous.",
        ),
    ]
    if has_commune:
        rules.append(
            (
                "Communes",
                "Colonne code_insee : le code INSEE à 5 chiffres d'une des 100 communes de "
                "l'agglomération, à choisir dans la liste déroulante (codes et noms dans la "
                f"feuille masquée « {LISTS_SHEET} » : clic droit sur un onglet › Afficher). Pour "
                "saisir plutôt les noms, renommez l'en-tête code_insee en « commune » : le nom "
                "officiel est reconnu sans tenir compte des majuscules, des accents, des traits "
                "d'union ni de « St » pour « Saint ». Une commune hors de l'agglomération est "
                "refusée.",
            )
        )
    rules += [
        (
            "Ligne de total",
            "Une ligne dont la première cellule remplie commence par « Total » n'est pas une "
            "donnée : elle est contrôlée, et chaque nombre qu'elle contient doit être égal à la "
            "somme des lignes au-dessus (à 0,01 près), sinon le fichier est refusé. Elle est "
            "facultative.",
        ),
        (
            "Valeurs d'erreur Excel",
            "Aucune valeur d'erreur Excel (#DIV/0!, #N/A, #REF!, #VALEUR!, #NOM?...) : une seule "
            "fait refuser le fichier. Remplacez les formules en erreur par une valeur.",
        ),
        (
            "Doublons",
            "Deux lignes avec la même clé (" + ", ".join(contract.grain) + ") sont refusées.",
        ),
        (
            "Lignes, colonnes et feuilles masquées",
            "Ce qui est lu doit être visible : une ligne ou une colonne masquée (ou de hauteur "
            "ou de largeur nulle, ou cachée par un filtre) qui contient des données est refusée, "
            f"de même qu'une feuille « {DATA_SHEET} » masquée : affichez-les et vérifiez-les, ou "
            "supprimez-les.",
        ),
        (
            "Format",
            "Enregistrez au format « Classeur Excel (.xlsx) » ; un fichier .csv (UTF-8 ou "
            "Windows-1252, séparateur ;) est accepté aussi, chaque ligne ayant autant de champs "
            "que l'en-tête. Les autres formats (.xlsm, .xls, .ods...) sont refusés. Les données "
            f"tiennent sur la seule feuille « {DATA_SHEET} » : une autre feuille qui porte "
            "l'en-tête ou des lignes de données fait refuser le fichier ; les autres feuilles "
            "(dont celle-ci) sont ignorées.",
        ),
        (
            "Contrôles de saisie",
            f"Les listes déroulantes et contrôles de la feuille « {DATA_SHEET} » aident à la "
            "saisie (sélectionnez une cellule pour voir l'aide de sa colonne), mais un copier-coller les "
            "contourne : seul le contrôle à réception fait foi.",
        ),
    ]
    return rules


def _source_rules(contract: Contract, year: int, n_indicators: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for rule in contract.rules_of("references"):
        out.append(
            (
                "Référence",
                f"Chaque valeur de « {rule['column']} » doit figurer dans la livraison en vigueur "
                f"de « {rule['source']} » pour {year} : livrez « {rule['source']} » d'abord.",
            )
        )
    for _rule in contract.rules_of("covers_all_communes"):
        out.append(
            (
                "Toutes les communes",
                "Chacune des 100 communes membres doit figurer une fois et une seule.",
            )
        )
    for rule in contract.rules_of("column_le"):
        out.append(
            (
                "Cohérence",
                f"Sur chaque ligne, « {rule['column']} » ne peut pas dépasser « {rule['other']} ».",
            )
        )
    for rule in contract.rules_of("constant"):
        out.append(
            (
                "Valeur commune",
                f"« {rule['column']} » doit être identique sur toutes les lignes.",
            )
        )
    for rule in contract.rules_of("required_unless"):
        out.append(
            (
                "Cellule obligatoire",
                f"« {rule['column']} » ne peut être vide que si « {rule['other']} » vaut "
                + " ou ".join(rule["values"])
                + ".",
            )
        )
    for rule in contract.rules_of("declared_indicator"):
        out.append(
            (
                "Indicateurs",
                f"Les {n_indicators} indicateurs déclarés de votre direction sont pré-remplis "
                f"(colonne {rule['column']} ; libellé et unité en commentaire de chaque cellule et "
                f"dans la feuille « {INDICATORS_SHEET} »). Complétez valeur et date_valeur ; "
                "supprimez la ligne entière d'un indicateur que vous ne déclarez pas : une ligne "
                "incomplète fait refuser le fichier. Colonne code_insee vide : valeur pour toute "
                "l'agglomération ; pour une valeur par commune, copiez la ligne et choisissez la "
                "commune. N'ajoutez pas d'indicateur d'une autre direction.",
            )
        )
    if contract.sensitivity == "personal" and not any(c.privacy for c in contract.columns):
        out.append(
            (
                "Données personnelles",
                "Ce fichier ne nomme aucun agent, mais ses décomptes portent souvent sur moins "
                "de 5 agents : transmettez-le uniquement au destinataire indiqué ci-dessus. Ses "
                "lignes ne sont pas publiées ; seuls les totaux qui portent sur 5 agents ou plus "
                "le sont.",
            )
        )
    elif contract.sensitivity == "personal":
        out.append(
            (
                "Données personnelles",
                "Ce fichier contient des données personnelles : transmettez-le uniquement au "
                "destinataire indiqué ci-dessus. À l'intégration, le matricule est remplacé par "
                "un pseudonyme et la date de naissance par l'âge ; les valeurs en clair ne sont "
                "pas conservées dans l'entrepôt.",
            )
        )
    return out


def _deadline_text(deadline: tuple[Any, str | None] | None) -> str:
    due, contact = deadline if deadline else (None, None)
    due_text = _fmt_date(due) if due else DEFAULT_DEADLINE
    contact_text = contact or DEFAULT_DEADLINE
    return f"Date limite : {due_text}. À renvoyer à : {contact_text}."


def _write_notice(
    ws: Worksheet,
    contract: Contract,
    *,
    year: int,
    department: str,
    direction: str,
    file_name: str,
    deadline: tuple[Any, str | None] | None,
    n_indicators: int,
) -> None:
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 80
    for letter, width in zip("CDEF", (26, 12, 16, 48), strict=True):
        ws.column_dimensions[letter].width = width
    ws.sheet_view.showGridLines = False

    ws.append([f"Campagne {year} — {examples_for_year(contract.title_fr, year)}"])
    ws["A1"].font = _TITLE
    ws.append([f"Modèle de fichier « {file_name} » ({contract.source_id})"])
    ws.append([])
    info = [
        ("Direction", f"{direction} (dossier de livraison « {department} »)"),
        ("Année de campagne", f"{year} (données de l'année {year})"),
        ("Ce fichier", examples_for_year(contract.description_fr, year)),
        (
            "Nom du fichier à renvoyer",
            f"{file_name} : remplissez la feuille « {DATA_SHEET} » à partir de la ligne 2.",
        ),
        ("Date limite et envoi", _deadline_text(deadline)),
        ("Une ligne par", " × ".join(contract.grain) or "—"),
    ]
    for label, text in info:
        ws.append([label, text])
        ws.cell(ws.max_row, 1).font = _BOLD
        ws.cell(ws.max_row, 1).alignment = _WRAP
        ws.cell(ws.max_row, 2).alignment = _WRAP

    def section(title: str, rows: list[tuple[str, str]]) -> None:
        if not rows:
            return
        ws.append([])
        ws.append([title])
        ws.cell(ws.max_row, 1).font = _HEADING
        for label, text in rows:
            ws.append([label, text])
            ws.cell(ws.max_row, 1).font = _BOLD
            ws.cell(ws.max_row, 1).alignment = _WRAP
            ws.cell(ws.max_row, 2).alignment = _WRAP

    section(
        "Règles de remplissage (valables pour toutes les sources)",
        _kit_rules(contract, year, file_name),
    )
    section("Règles propres à cette source", _source_rules(contract, year, n_indicators))

    ws.append([])
    ws.append([f"Colonnes de la feuille « {DATA_SHEET} »"])
    ws.cell(ws.max_row, 1).font = _HEADING
    ws.append(
        ["Colonne", "Signification", "Type", "Unité", "Obligatoire", "Valeurs admises, bornes"]
    )
    for cell in ws[ws.max_row]:
        cell.font = _BOLD
        cell.fill = _TABLE_FILL
        cell.border = _BOX
        cell.alignment = _WRAP
    for column in contract.columns:
        ws.append(
            [
                header_of(column),
                examples_for_year(column.description_fr, year),
                type_label_fr(column.type, year),
                unit_fr(column.unit),
                required_fr(column),
                constraints_fr(column, contract, year),
            ]
        )
        for cell in ws[ws.max_row]:
            cell.border = _BOX
            cell.alignment = _WRAP
        ws.cell(ws.max_row, 1).font = _BOLD
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


# ----------------------------------------------------------------------------------------
# Listes (hidden) and data validation


class _Lists:
    """The hidden sheet holding the dropdown lists; returns absolute range references."""

    def __init__(self, ws: Worksheet, communes: list[tuple[str, str]]):
        self.ws = ws
        self.next_column = 1
        self.communes_ref = self.add("Codes INSEE des communes", [code for code, _ in communes])
        names_column = self.next_column
        self.ws.cell(1, names_column, "Noms des communes").font = _BOLD
        for offset, (_, name) in enumerate(communes):
            self.ws.cell(2 + offset, names_column, name)
        self.ws.column_dimensions[get_column_letter(names_column)].width = 32
        self.next_column += 1

    def add(self, label: str, values: list[str]) -> str:
        column = self.next_column
        self.next_column += 1
        letter = get_column_letter(column)
        self.ws.cell(1, column, label).font = _BOLD
        for offset, value in enumerate(values):
            self.ws.cell(2 + offset, column, value).number_format = "@"
        self.ws.column_dimensions[letter].width = max(14, min(40, len(label) + 2))
        last = 1 + max(len(values), 1)
        return f"{quote_sheetname(self.ws.title)}!${letter}$2:${letter}${last}"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _excel_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _date_formula(day: dt.date) -> str:
    return f"DATE({day.year},{day.month},{day.day})"


def _validation(
    column: Column, contract: Contract, year: int, ref: str, lists: _Lists
) -> DataValidation:
    """Excel data validation of one column (``ref`` = its first data cell, e.g. C2)."""
    kind = column.type
    dv = DataValidation(allow_blank=True, showInputMessage=True, showErrorMessage=True)
    error = None
    if kind == "commune":
        dv.type, dv.formula1 = "list", lists.communes_ref
        dv.errorStyle = "warning"
        error = (
            "Code INSEE absent de la liste des 100 communes de l'agglomération. Si vous saisissez "
            "des noms de commune, renommez l'en-tête en « commune »."
        )
    elif column.allowed is not None or kind == "yes_no":
        values = list(column.allowed) if column.allowed is not None else ["oui", "non"]
        dv.type, dv.formula1 = "list", lists.add(f"Valeurs de {column.name}", values)
        error = "Valeur non autorisée : choisissez dans la liste (" + ", ".join(values) + ")."
    elif kind in ("integer", "number"):
        error = _numeric_validation(dv, column, ref)
    elif kind in ("date", "month"):
        error = _date_validation(dv, column, year)
        if kind == "month":
            # "2025-03" or "mars 2025" typed as text are valid for the kit: warn, don't block
            dv.errorStyle = "warning"
    if error is None:
        dv.showErrorMessage = False
    else:
        dv.errorTitle = _clip(column.name, 32)
        dv.error = _clip(error, 225)
    constraint = constraints_fr(column, contract, year)
    prompt = type_label_fr(kind, year)
    if column.unit:
        prompt += f" ({unit_fr(column.unit)})"
    prompt += f", {'obligatoire' if required_fr(column) == 'oui' else 'facultatif'}"
    if constraint:
        prompt += f" ; {constraint}"
    prompt += f". {examples_for_year(column.description_fr, year)}"
    dv.promptTitle = _clip(header_of(column), 32)
    dv.prompt = _clip(prompt, 255)
    return dv


def _numeric_validation(dv: DataValidation, column: Column, ref: str) -> str:
    low, high = column.lower_bound, column.max
    integer = column.type == "integer"
    if integer:
        if column.min_exclusive is not None:
            floor = math.floor(column.min_exclusive) + 1
            low = floor if low is None else max(low, floor)
        if column.max_exclusive is not None:
            ceil = math.ceil(column.max_exclusive) - 1
            high = ceil if high is None else min(high, ceil)
    needs_custom = column.step or (
        not integer and (column.min_exclusive is not None or column.max_exclusive is not None)
    )
    what = "un nombre entier" if integer else "un nombre"
    bounds = []
    if low is not None:
        bounds.append(f"≥ {_num(low)}")
    if column.min_exclusive is not None and not integer:
        bounds.append(f"> {_num(column.min_exclusive)}")
    if high is not None:
        bounds.append(f"≤ {_num(high)}")
    if column.max_exclusive is not None and not integer:
        bounds.append(f"< {_num(column.max_exclusive)}")
    if column.step:
        bounds.append(f"multiple de {_num(column.step)}")
    message = f"Saisissez {what}" + (" " + ", ".join(bounds) if bounds else "") + "."
    if needs_custom or (low is None and high is None):
        tests = [f"ISNUMBER({ref})"]
        if integer:
            tests.append(f"{ref}=INT({ref})")
        if low is not None:
            tests.append(f"{ref}>={_excel_number(low)}")
        if column.min_exclusive is not None and not integer:
            tests.append(f"{ref}>{_excel_number(column.min_exclusive)}")
        if high is not None:
            tests.append(f"{ref}<={_excel_number(high)}")
        if column.max_exclusive is not None and not integer:
            tests.append(f"{ref}<{_excel_number(column.max_exclusive)}")
        if column.step:
            tests.append(f"MOD(ROUND({ref}/{_excel_number(column.step)},6),1)=0")
        dv.type = "custom"
        dv.formula1 = f"AND({','.join(tests)})" if len(tests) > 1 else tests[0]
        return message
    dv.type = "whole" if integer else "decimal"
    if low is not None and high is not None:
        dv.operator, dv.formula1, dv.formula2 = "between", _excel_number(low), _excel_number(high)
    elif low is not None:
        dv.operator, dv.formula1 = "greaterThanOrEqual", _excel_number(low)
    else:
        dv.operator, dv.formula1 = "lessThanOrEqual", _excel_number(high)
    return message


def _date_validation(dv: DataValidation, column: Column, year: int) -> str:
    rule = column.effective_date_range
    dv.type = "date"
    if rule == "campaign_year":
        dv.operator = "between"
        dv.formula1 = _date_formula(dt.date(year, 1, 1))
        dv.formula2 = _date_formula(dt.date(year, 12, 31))
        if column.type == "month":
            return (
                f"Saisissez un mois de {year} : date du mois, {year}-03, 03/{year} ou "
                f"« mars {year} ». Un mois saisi en texte est accepté : confirmez."
            )
        return f"Saisissez une date de l'année {year} (JJ/MM/AAAA)."
    low = high = None
    if isinstance(rule, dict):
        if rule.get("min_year"):
            low = _date_formula(dt.date(int(rule["min_year"]), 1, 1))
        if rule.get("not_future"):
            high = "TODAY()"
    if low and high:
        dv.operator, dv.formula1, dv.formula2 = "between", low, high
    elif high:
        dv.operator, dv.formula1 = "lessThanOrEqual", high
    else:
        dv.operator, dv.formula1 = "greaterThanOrEqual", low or _date_formula(dt.date(1900, 1, 1))
    parts = ["Saisissez une date (JJ/MM/AAAA)"]
    if isinstance(rule, dict) and rule.get("min_year"):
        parts.append(f"à partir de {rule['min_year']}")
    if high:
        parts.append("jamais dans le futur")
    return ", ".join(parts) + "."


def _column_width(column: Column, values: Iterable[str] = ()) -> float:
    base = {"date": 13, "month": 14, "commune": 12, "integer": 12, "number": 14, "yes_no": 8}
    width = max(len(header_of(column)) + 3, base.get(column.type, 18))
    if column.allowed:
        width = max(width, max(len(v) for v in column.allowed) + 4)
    for value in values:
        width = max(width, len(value) + 2)
    return min(width, 48)


def _write_data_sheet(
    ws: Worksheet,
    contract: Contract,
    *,
    year: int,
    lists: _Lists,
    prefilled: list[dict[str, Any]],
    comments: dict[str, str],
    comment_column: str | None = None,
) -> None:
    columns = list(contract.columns)
    ws.append([header_of(c) for c in columns])
    for index, column in enumerate(columns, start=1):
        cell = ws.cell(1, index)
        cell.font = _BOLD
        cell.fill = _REQUIRED_FILL if required_fr(column) == "oui" else _OPTIONAL_FILL
        cell.border = _BOX
        cell.alignment = Alignment(vertical="center")
    for record in prefilled:
        ws.append([record.get(c.name) for c in columns])
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        values = [str(r[column.name]) for r in prefilled if r.get(column.name) is not None]
        dimension = ws.column_dimensions[letter]
        dimension.width = _column_width(column, values)
        if column.type in COLUMN_FORMATS:
            dimension.number_format = COLUMN_FORMATS[column.type]
        ref = f"{letter}{FIRST_DATA_ROW}"
        dv = _validation(column, contract, year, ref, lists)
        dv.add(f"{letter}{FIRST_DATA_ROW}:{letter}{LAST_VALIDATED_ROW}")
        ws.add_data_validation(dv)
    if comments and comment_column:
        key_column = next(i for i, c in enumerate(columns, start=1) if c.name == comment_column)
        for row_offset, record in enumerate(prefilled):
            text = comments.get(record.get(comment_column))
            if text:
                comment = Comment(text, STEERING_DIRECTION, height=120, width=360)
                ws.cell(FIRST_DATA_ROW + row_offset, key_column).comment = comment
    ws.freeze_panes = f"A{FIRST_DATA_ROW}"


def _write_indicators_sheet(ws: Worksheet, indicators: list[Indicator]) -> None:
    header = [
        "Identifiant (indicator_id)",
        "Libellé",
        "Unité",
        "Nature",
        "Valeur négative possible",
        f"Valeur publiée (rapport {PUBLISHED_REPORT_YEAR})",
        "Période publiée",
        "Définition",
    ]
    ws.append(header)
    for cell in ws[1]:
        cell.font = _BOLD
        cell.fill = _TABLE_FILL
        cell.border = _BOX
    for ind in indicators:
        ws.append(
            [
                ind.indicator_id,
                ind.label_fr,
                unit_fr(ind.unit),
                KINDS_FR.get(ind.kind, ind.kind),
                "oui" if ind.allow_negative else "non",
                ind.published,
                ind.period,
                ind.definition,
            ]
        )
        for cell in ws[ws.max_row]:
            cell.alignment = _WRAP
    widths = (max([len(i.indicator_id) for i in indicators] + [24]) + 2, 60, 16, 16, 12, 16, 22, 60)
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    ws.freeze_panes = "B2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{max(ws.max_row, 2)}"


def _indicator_comment(ind: Indicator) -> str:
    lines = [ind.label_fr, f"Unité : {unit_fr(ind.unit) or '—'}"]
    if ind.kind and ind.kind != "value":
        lines.append(f"Nature : {KINDS_FR.get(ind.kind, ind.kind)}")
    if ind.published:
        period = f" ({ind.period})" if ind.period else ""
        lines.append(f"Publié au rapport {PUBLISHED_REPORT_YEAR} : {ind.published}{period}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# workbook assembly and deterministic save


class _FixedTimeZip(zipfile.ZipFile):
    """Zip archive whose entries all carry the same timestamp (reproducible files)."""

    date_time = (2000, 1, 1, 0, 0, 0)

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        if isinstance(zinfo_or_arcname, str):
            info = zipfile.ZipInfo(zinfo_or_arcname, date_time=self.date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zinfo_or_arcname = info
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        # openpyxl writes worksheets from temporary files: keep their bytes, not their mtime
        self.writestr(str(arcname or filename), Path(filename).read_bytes())


def _save(wb: Workbook, path: Path, stamp: dt.datetime) -> None:
    """Save atomically, with fixed document properties and zip timestamps."""
    wb.properties.created = stamp
    wb.properties.modified = stamp
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".xlsx", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        archive = _FixedTimeZip(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
        ExcelWriter(wb, archive).save()  # closes the archive; keeps our `modified`
        tmp.chmod(0o644)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def build_workbook(
    contract: Contract,
    *,
    year: int,
    department: str,
    direction: str,
    communes: list[tuple[str, str]],
    indicators: list[Indicator] | None = None,
    deadline: tuple[Any, str | None] | None = None,
) -> Workbook:
    """The blank workbook of one (department, source) for the campaign ``year``."""
    file_name = f"{contract.source_id}_{year}.xlsx"
    indicators = indicators or []
    declared = bool(contract.rules_of("declared_indicator"))
    wb = Workbook()
    notice = wb.active
    notice.title = NOTICE_SHEET
    data = wb.create_sheet(DATA_SHEET)
    indicator_sheet = wb.create_sheet(INDICATORS_SHEET) if declared else None
    lists_ws = wb.create_sheet(LISTS_SHEET)
    lists_ws.sheet_state = "hidden"
    lists = _Lists(lists_ws, communes)

    prefilled: list[dict[str, Any]] = []
    comments: dict[str, str] = {}
    id_column = None
    if declared:
        id_column = contract.rules_of("declared_indicator")[0]["column"]
        has_source = any(c.name == "source" for c in contract.columns)
        for ind in indicators:
            record: dict[str, Any] = {id_column: ind.indicator_id}
            if has_source:
                record["source"] = direction
            prefilled.append(record)
            comments[ind.indicator_id] = _indicator_comment(ind)

    _write_notice(
        notice,
        contract,
        year=year,
        department=department,
        direction=direction,
        file_name=file_name,
        deadline=deadline,
        n_indicators=len(indicators),
    )
    _write_data_sheet(
        data,
        contract,
        year=year,
        lists=lists,
        prefilled=prefilled,
        comments=comments,
        comment_column=id_column,
    )
    if indicator_sheet is not None:
        _write_indicators_sheet(indicator_sheet, indicators)
    wb.active = 0
    wb.properties.creator = STEERING_DIRECTION
    wb.properties.lastModifiedBy = STEERING_DIRECTION
    wb.properties.title = f"{examples_for_year(contract.title_fr, year)} — campagne {year}"
    wb.properties.subject = f"{contract.source_id} — {direction}"
    return wb


def planned_templates(
    contracts: Mapping[str, Contract], declared: Mapping[str, list[Indicator]]
) -> dict[str, list[str]]:
    """Department -> source ids whose template it receives."""
    plan: dict[str, list[str]] = defaultdict(list)
    for source_id, contract in sorted(contracts.items()):
        if contract.department != ANY_DEPARTMENT:
            plan[contract.department].append(source_id)
    if DECLARED_SOURCE in contracts:
        for department, indicators in declared.items():
            if indicators:
                plan[department].append(DECLARED_SOURCE)
    return {d: plan[d] for d in sorted(plan)}


def write_templates(
    year: int,
    out_dir: Path,
    contracts: Mapping[str, Contract] | None = None,
    departments: Iterable[str] | None = None,
    deadlines: Deadlines | None = None,
    *,
    catalogue_csv: Path = CATALOGUE_CSV,
    communes_csv: Path = COMMUNES_CSV,
) -> list[Path]:
    """Write the blank workbooks of the campaign ``year``; returns their paths (sorted).

    ``out_dir/<department>/<source_id>_<year>.xlsx`` for every department (or only those of
    ``departments``); existing files are replaced. ``deadlines`` maps (department, source_id)
    to (due date, contact e-mail or None), shown in the Notice.
    """
    if contracts is None:
        from dagster_project.contracts.model import default_contracts

        contracts = default_contracts()
    declared = load_declared_indicators(catalogue_csv)
    plan = planned_templates(contracts, declared)
    if departments is not None:
        wanted = list(dict.fromkeys(departments))
        unknown = [d for d in wanted if d not in plan]
        if unknown:
            raise ValueError(
                "direction(s) sans modèle à produire : "
                + ", ".join(unknown)
                + " (connues : "
                + ", ".join(plan)
                + ")"
            )
        plan = {d: plan[d] for d in sorted(wanted)}
    communes = load_communes(communes_csv)
    stamp = dt.datetime(year, 1, 1)
    written: list[Path] = []
    for department, source_ids in plan.items():
        direction = direction_of(department, contracts)
        for source_id in source_ids:
            contract = contracts[source_id]
            wb = build_workbook(
                contract,
                year=year,
                department=department,
                direction=direction,
                communes=communes,
                indicators=declared.get(department, []) if source_id == DECLARED_SOURCE else None,
                deadline=(deadlines or {}).get((department, source_id)),
            )
            path = Path(out_dir) / department / f"{source_id}_{year}.xlsx"
            _save(wb, path, stamp)
            written.append(path)
    return sorted(written)


__all__ = [
    "DATA_SHEET",
    "INDICATORS_SHEET",
    "LISTS_SHEET",
    "NOTICE_SHEET",
    "build_workbook",
    "load_declared_indicators",
    "planned_templates",
    "write_templates",
]
