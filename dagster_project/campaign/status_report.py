"""The campaign status presented to people.

``format_status`` is the terminal table of ``kpi status`` (one line per expected delivery,
then the summary line); ``export_status_xlsx`` is a formatted workbook to send around (one
row per expected delivery, French headers, filters, late rows in red, a summary sheet).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from dagster_project.campaign.dates import fr_date
from dagster_project.campaign.status import StatusRow, summarize
from dagster_project.ingest.pipeline import printable

OUTCOME_FR = {"accepted": "accepté", "rejected": "rejeté"}

EXPORT_COLUMNS = [  # (header, width, value)
    ("Année", 7, lambda r: r.year),
    ("Direction", 34, lambda r: r.direction_fr),
    ("Code direction", 16, lambda r: r.department),
    ("Source", 24, lambda r: r.source_id),
    ("Intitulé", 40, lambda r: r.title_fr),
    ("Responsable", 22, lambda r: r.owner),
    ("Courriel", 32, lambda r: r.email),
    ("Échéance", 12, lambda r: r.due_date),
    ("Obligatoire", 12, lambda r: "oui" if r.required else "non"),
    ("Prévu par la campagne", 12, lambda r: "oui" if r.expected else "non"),
    ("Reçu", 8, lambda r: "oui" if r.received else "non"),
    ("Dernier fichier", 30, lambda r: r.latest_file),
    ("Reçu le", 17, lambda r: r.received_at),
    ("Résultat", 11, lambda r: OUTCOME_FR.get(r.latest_outcome or "", "")),
    ("Problèmes", 11, lambda r: r.problem_count if r.rejected else None),
    ("Rapport de rejet", 40, lambda r: r.report_path if r.rejected else None),
    ("Fichier en vigueur", 30, lambda r: r.in_force_file),
    ("En vigueur depuis le", 17, lambda r: r.in_force_received_at),
    ("Jours de retard", 10, lambda r: r.days_late or None),
    ("Statut", 60, lambda r: r.status_fr),
]


def export_status_xlsx(rows: Sequence[StatusRow], path: Path) -> Path:
    """A formatted workbook to send around: one row per expected delivery, late rows in red."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    late_fill = PatternFill("solid", fgColor="F8CBAD")
    rejected_fill = PatternFill("solid", fgColor="FFE699")
    accepted_fill = PatternFill("solid", fgColor="E2EFDA")
    header_fill = PatternFill("solid", fgColor="1F4E78")

    workbook = Workbook()
    sheet = workbook.active
    year = rows[0].year if rows else ""
    sheet.title = f"Campagne {year}".strip()
    sheet.append([header for header, _, _ in EXPORT_COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = header_fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    sheet.row_dimensions[1].height = 32
    for row in rows:
        sheet.append([value(row) for _, _, value in EXPORT_COLUMNS])
        for cell in sheet[sheet.max_row]:  # a text is text, never a formula (« =… »)
            if cell.data_type == "f":
                cell.data_type = "s"
        fill = (
            late_fill
            if row.late
            else rejected_fill
            if row.rejected
            else accepted_fill
            if row.accepted_in_force
            else None
        )
        for index, (header, _, _) in enumerate(EXPORT_COLUMNS, start=1):
            cell = sheet.cell(row=sheet.max_row, column=index)
            if header == "Échéance":
                cell.number_format = "DD/MM/YYYY"
            elif header in ("Reçu le", "En vigueur depuis le"):
                cell.number_format = "DD/MM/YYYY HH:MM"
            if fill is not None:
                cell.fill = fill
            if row.late and header in ("Statut", "Jours de retard"):
                cell.font = Font(bold=True, color="9C0006")
    for index, (_, width, _) in enumerate(EXPORT_COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(EXPORT_COLUMNS))}{max(sheet.max_row, 2)}"

    about = workbook.create_sheet("Résumé")
    about.append([summarize(rows).text_fr() if rows else "Aucune livraison attendue."])
    about.append([])
    about.append(["Légende"])
    about["A3"].font = Font(bold=True)
    about.append(["en retard : rien d'accepté n'est en vigueur et l'échéance est dépassée"])
    about["A4"].fill = late_fill
    about.append(["rejeté : la dernière livraison a été rejetée (voir le rapport de rejet)"])
    about["A5"].fill = rejected_fill
    about.append(["reçu, accepté : une livraison acceptée est en vigueur"])
    about["A6"].fill = accepted_fill
    about.column_dimensions["A"].width = 100

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def format_status(rows: Sequence[StatusRow], unrecognised: Iterable[Path] = ()) -> str:
    """A terminal table (one line per expected delivery) and the summary line."""
    headers = ("Direction", "Source", "Échéance", "Responsable", "Statut")
    lines_data = [
        (
            r.department,
            r.source_id,
            fr_date(r.due_date),
            r.owner,
            ("! " if r.late or r.rejected else "  ") + r.status_fr,
        )
        for r in rows
    ]
    widths = [
        max([len(h)] + [len(line[i]) for line in lines_data]) for i, h in enumerate(headers[:-1])
    ]

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(
            [v.ljust(w) for v, w in zip(values[:-1], widths, strict=True)] + [values[-1]]
        ).rstrip()

    out = [fmt(headers), fmt(["-" * w for w in widths] + ["-" * 6])]
    previous = None
    for department, line in zip((r.department for r in rows), lines_data, strict=True):
        if previous is not None and department != previous:
            out.append("")
        out.append(fmt(line))
        previous = department
    unrecognised = list(unrecognised)
    if unrecognised:
        out.append("")
        out.append("Fichiers déposés qui ne correspondent à aucune source (nom à corriger) :")
        out += [f"  {printable(str(p))}" for p in unrecognised]
    out.append("")
    out.append(summarize(rows).text_fr() if rows else "Aucune livraison attendue.")
    return "\n".join(out)
