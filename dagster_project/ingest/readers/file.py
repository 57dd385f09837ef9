"""Every sheet of a delivered file, read by the reader of its format.

``read_file`` is where a delivery's reading starts: ``.xlsx`` goes to ``readers.xlsx_file``
(with its calamine parse begun ahead of time, ``readers.readahead``, when there is one),
``.csv`` to ``readers.csv_file``. The kit accepts nothing else; a spreadsheet or table of
another format (``OTHER_FORMATS``) is refused with a French reason saying how to save it.
"""

from __future__ import annotations

from pathlib import Path

from dagster_project.ingest.readers.csv_file import read_csv
from dagster_project.ingest.readers.readahead import READ_AHEAD
from dagster_project.ingest.readers.sheet import (
    EMPTY_FILE,
    MAX_FILE_BYTES,
    ReadError,
    Sheet,
    _mib,
)
from dagster_project.ingest.readers.xlsx_file import read_xlsx

_SAVE_AS_XLSX = (
    "ouvrez-le et enregistrez-le au format « Classeur Excel (.xlsx) » (Fichier › Enregistrer "
    "sous › Type)"
)
_SAVE_AS_CSV = "enregistrez-le au format « CSV (séparateur : point-virgule) » (extension .csv)"
# spreadsheet and table formats refused with a report (the kit accepts .xlsx and .csv only):
# what each one is and how to save it as the kit asks; a file of these suffixes named after a
# source is a delivery (``discovery.DELIVERY_SUFFIXES``): it gets its report, never skipped
OTHER_FORMATS: dict[str, str] = {
    ".xlsm": f"classeur Excel avec macros (.xlsm) : {_SAVE_AS_XLSX}, les macros ne sont pas "
    "acceptées",
    ".xlsb": f"classeur Excel binaire (.xlsb) : {_SAVE_AS_XLSX}",
    ".xls": f"classeur Excel 97-2003 (.xls) : {_SAVE_AS_XLSX}",
    ".xlt": f"modèle Excel 97-2003 (.xlt) : {_SAVE_AS_XLSX}",
    ".xltx": f"modèle Excel (.xltx) : {_SAVE_AS_XLSX}",
    ".xltm": f"modèle Excel avec macros (.xltm) : {_SAVE_AS_XLSX}",
    ".ods": f"classeur LibreOffice / OpenOffice (.ods) : {_SAVE_AS_XLSX} (« Excel 2007-365 »)",
    ".fods": f"classeur LibreOffice (.fods) : {_SAVE_AS_XLSX} (« Excel 2007-365 »)",
    ".numbers": "classeur Apple Numbers : exportez-le au format Excel (.xlsx)",
    ".txt": f"fichier texte (.txt) : {_SAVE_AS_CSV}, ou déposez le classeur .xlsx",
    ".tsv": f"fichier texte séparé par des tabulations : {_SAVE_AS_CSV}",
    ".tab": f"fichier texte séparé par des tabulations : {_SAVE_AS_CSV}",
    ".prn": f"fichier texte (.prn) : {_SAVE_AS_CSV}",
}  # (a .pdf, a .docx beside a delivery are documents, not deliveries: not looked at)


def read_file(path: Path) -> list[Sheet]:
    """Every sheet of a delivered file, or ReadError with a French reason. A workbook's
    calamine parse begun ahead of time (``readers.readahead``) is used when there is one."""
    suffix = path.suffix.lower()
    if suffix in OTHER_FORMATS:
        raise ReadError(
            f"format {suffix} non accepté (seuls .xlsx et .csv le sont) : c'est un "
            + OTHER_FORMATS[suffix]
        )
    size = path.stat().st_size
    if size == 0:
        raise ReadError(EMPTY_FILE)
    if size > MAX_FILE_BYTES:
        raise ReadError(f"fichier trop volumineux ({_mib(size)}, limite {_mib(MAX_FILE_BYTES)})")
    if suffix == ".xlsx":
        return read_xlsx(path, READ_AHEAD.take(path))
    if suffix == ".csv":
        return read_csv(path)
    raise ReadError(f"format {suffix or '(sans extension)'} non accepté (attendu .xlsx ou .csv)")
