"""The layout every sheet of a blank campaign workbook shares.

The sheets' names (the ingestion reads ``Données``; the Notice never holds a row that could
pass for its header), the rows of data the validation covers, who signs the workbook, and
the styles: required columns in blue, optional ones in grey.
"""

from __future__ import annotations

from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

NOTICE_SHEET = "Notice"
DATA_SHEET = "Données"
INDICATORS_SHEET = "Indicateurs"
LISTS_SHEET = "Listes"
FIRST_DATA_ROW = 2
LAST_VALIDATED_ROW = 5000
STEERING_DIRECTION = "Direction du Pilotage Stratégique"

BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)
HEADING = Font(bold=True, size=12, color="1F4E78")
REQUIRED_FILL = PatternFill("solid", fgColor="BDD7EE")
OPTIONAL_FILL = PatternFill("solid", fgColor="E7E6E6")
TABLE_FILL = PatternFill("solid", fgColor="DDEBF7")
WRAP = Alignment(wrap_text=True, vertical="top")
_THIN = Side(style="thin", color="A6A6A6")
BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
