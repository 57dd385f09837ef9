"""The campaign status presented to people.

``format_status`` is the terminal table of ``kpi status`` (one line per expected delivery,
then the summary line); ``export_status_xlsx`` is a formatted workbook to send around (one
row per expected delivery, French headers, filters, late rows in red, a summary sheet, and a
sheet « Graphiques » of native Excel charts beside their tables: per direction, its sources
accepted, rejected and late; the progress of the accepted deliveries against the due
dates). The same rows give the same bytes (fixed document dates and zip timestamps).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from dagster_project.campaign.dates import fr_date
from dagster_project.campaign.status import StatusRow, summarize
from dagster_project.ingest.discovery import printable

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


CHARTS = "Graphiques"
DIRECTION_SERIES = ("Sources", "Acceptées (en vigueur)", "Rejetées", "En retard")
PROGRESS_SERIES = ("Échéances passées", "Livraisons acceptées")
_ROW_CM = 0.53  # height of a default row (15 points)


def direction_counts(rows: Sequence[StatusRow]) -> list[tuple[str, int, int, int, int]]:
    """Per direction (in the rows' order): its sources, those with an accepted delivery in
    force, those whose latest delivery was rejected, those late."""
    counts: dict[str, list[int]] = {}
    for r in rows:
        c = counts.setdefault(r.direction_fr or r.department, [0, 0, 0, 0])
        c[0] += 1
        c[1] += r.accepted_in_force
        c[2] += r.rejected
        c[3] += r.late
    return [(name, *c) for name, c in counts.items()]


def progress(rows: Sequence[StatusRow]) -> list[tuple[dt.date, int, int]]:
    """The campaign's progress against its due dates, for the required deliveries: at each
    date that changes something (a due date, an accepted delivery now in force), how many
    were due by then and how many were accepted by then."""
    required = [r for r in rows if r.expected and r.required]
    due = sorted(r.due_date for r in required if r.due_date)
    accepted = sorted(
        r.in_force_received_at.date()
        if isinstance(r.in_force_received_at, dt.datetime)
        else r.in_force_received_at
        for r in required
        if r.in_force_received_at
    )
    return [
        (day, sum(d <= day for d in due), sum(a <= day for a in accepted))
        for day in sorted(set(due) | set(accepted))
    ]


def _stamp(rows: Sequence[StatusRow]) -> dt.datetime:
    """The workbook's fixed date: its latest delivery, else 1 January of the campaign year."""
    received = [r.received_at for r in rows if isinstance(r.received_at, dt.datetime)]
    if received:
        return max(received).replace(microsecond=0, tzinfo=None)
    year = rows[0].year if rows else 2000
    return dt.datetime(year, 1, 1)


def _charts_sheet(workbook, rows: Sequence[StatusRow]) -> None:
    """Tables and their charts: deliveries per direction; progress against the due dates."""
    from openpyxl.chart import BarChart, LineChart, Reference
    from openpyxl.chart.axis import DateAxis
    from openpyxl.chart.data_source import AxDataSource, StrRef
    from openpyxl.styles import Font

    sheet = workbook.create_sheet(CHARTS)
    bold = Font(bold=True)
    sheet.column_dimensions["A"].width = 48
    for letter in "BCDE":
        sheet.column_dimensions[letter].width = 14
    counts = direction_counts(rows)
    sheet.append(["Livraisons par direction"])
    sheet["A1"].font = Font(bold=True, size=12)
    sheet.append(["Direction", *DIRECTION_SERIES])
    for cell in sheet[2]:
        cell.font = bold
    for line in counts:
        sheet.append(list(line))
    last = 2 + len(counts)
    bars = BarChart()
    bars.type = "bar"  # horizontal: the directions' names are long
    bars.grouping = "clustered"
    bars.title = "Sources par direction : acceptées, rejetées, en retard"
    bars.y_axis.title = "Nombre de sources"
    bars.x_axis.scaling.orientation = "maxMin"  # the directions in the table's order
    bars.y_axis.majorGridlines = None
    bars.add_data(
        Reference(sheet, min_col=2, max_col=5, min_row=2, max_row=max(last, 3)),
        titles_from_data=True,
    )
    names = Reference(sheet, min_col=1, min_row=3, max_row=max(last, 3))
    for series in bars.series:  # the directions are text: a string reference, not numbers
        series.cat = AxDataSource(strRef=StrRef(f=str(names)))
    bars.legend.position = "b"
    bars.width = 22
    bars.height = max(7.5, 2.5 + 1.4 * len(counts))
    for series, colour in zip(bars.series, ("A6A6A6", "70AD47", "FFC000", "C00000"), strict=True):
        series.graphicalProperties.solidFill = colour
        series.graphicalProperties.line.solidFill = colour
    sheet.add_chart(bars, "G2")

    start = max(last + 3, 2 + math.ceil(bars.height / _ROW_CM) + 2)
    points = progress(rows)
    sheet.cell(
        start, 1, "Avancement par rapport aux échéances (livraisons obligatoires)"
    ).font = Font(bold=True, size=12)
    for col, header in enumerate(["Date", *PROGRESS_SERIES], start=1):
        sheet.cell(start + 1, col, header).font = bold
    for i, (day, due, accepted) in enumerate(points, start=start + 2):
        sheet.cell(i, 1, day).number_format = "DD/MM/YYYY"
        sheet.cell(i, 2, due)
        sheet.cell(i, 3, accepted)
    end = start + 1 + len(points)
    line = LineChart()
    line.title = "Livraisons acceptées et échéances passées (cumul)"
    line.y_axis.title = "Livraisons obligatoires"
    line.y_axis.crossAx = 500
    line.x_axis = DateAxis(crossAx=100)
    line.x_axis.number_format = "dd/mm/yyyy"
    line.x_axis.majorTimeUnit = "days"
    line.x_axis.title = "Date"
    line.add_data(
        Reference(sheet, min_col=2, max_col=3, min_row=start + 1, max_row=max(end, start + 2)),
        titles_from_data=True,
    )
    line.set_categories(Reference(sheet, min_col=1, min_row=start + 2, max_row=max(end, start + 2)))
    line.legend.position = "b"
    line.width = 22
    line.height = 9
    for series, colour in zip(line.series, ("C00000", "70AD47"), strict=True):
        series.graphicalProperties.line.solidFill = colour
        series.graphicalProperties.line.width = 28575  # 2.25 points
        series.smooth = False
    for chart in (bars, line):  # shown axes (openpyxl leaves « delete » unset: hidden in Excel)
        chart.x_axis.delete = False
        chart.y_axis.delete = False
    sheet.add_chart(line, f"G{start + 1}")


def export_status_xlsx(rows: Sequence[StatusRow], path: Path) -> Path:
    """A formatted workbook to send around: one row per expected delivery, late rows in red,
    a summary, charts (« Graphiques »); fixed dates: the same rows give the same bytes."""
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
    _charts_sheet(workbook, rows)

    from dagster_project.campaign.templates.workbook import _save

    path = Path(path)
    _save(workbook, path, _stamp(rows))  # fixed document dates and zip timestamps, atomically
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
