"""The ``Notice`` sheet of a blank campaign workbook, in plain French.

What the file is, the deadline and where to send it, the rules of the kit (valid for every
source) and those of this source, then a table of the columns (meaning, type, unit,
required, allowed values). The Notice never holds a row that could pass for the data
header, so the ingestion always picks ``Données``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

from dagster_project.campaign.templates.layout import (
    BOLD,
    BOX,
    DATA_SHEET,
    HEADING,
    INDICATORS_SHEET,
    LISTS_SHEET,
    TABLE_FILL,
    TITLE,
    WRAP,
)
from dagster_project.campaign.templates.wording import (
    constraints_fr,
    examples_for_year,
    header_of,
    required_fr,
    type_label_fr,
    unit_fr,
)
from dagster_project.contracts.model import Contract

DEFAULT_DEADLINE = "voir le courrier de campagne"


def _fmt_date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return str(value)


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


def write_notice(
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
    ws["A1"].font = TITLE
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
        ws.cell(ws.max_row, 1).font = BOLD
        ws.cell(ws.max_row, 1).alignment = WRAP
        ws.cell(ws.max_row, 2).alignment = WRAP

    def section(title: str, rows: list[tuple[str, str]]) -> None:
        if not rows:
            return
        ws.append([])
        ws.append([title])
        ws.cell(ws.max_row, 1).font = HEADING
        for label, text in rows:
            ws.append([label, text])
            ws.cell(ws.max_row, 1).font = BOLD
            ws.cell(ws.max_row, 1).alignment = WRAP
            ws.cell(ws.max_row, 2).alignment = WRAP

    section(
        "Règles de remplissage (valables pour toutes les sources)",
        _kit_rules(contract, year, file_name),
    )
    section("Règles propres à cette source", _source_rules(contract, year, n_indicators))

    ws.append([])
    ws.append([f"Colonnes de la feuille « {DATA_SHEET} »"])
    ws.cell(ws.max_row, 1).font = HEADING
    ws.append(
        ["Colonne", "Signification", "Type", "Unité", "Obligatoire", "Valeurs admises, bornes"]
    )
    for cell in ws[ws.max_row]:
        cell.font = BOLD
        cell.fill = TABLE_FILL
        cell.border = BOX
        cell.alignment = WRAP
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
            cell.border = BOX
            cell.alignment = WRAP
        ws.cell(ws.max_row, 1).font = BOLD
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
