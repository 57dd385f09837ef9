"""Reading a delivered file into sheets of cell values.

``.xlsx`` is read with python-calamine (the fastest Python reader, see notes/stack.md).
Calamine turns Excel error cells (``#DIV/0!``) into empty strings, so their positions are
recovered from the sheet XML, which is only scanned when it contains an error cell.
``.csv`` is read in UTF-8 or Windows-1252 with ``;`` or ``,`` as separator.
Bounded input: the archive is inspected before anything is decompressed (zip bombs, huge
sheets), with limits documented in docs/ingestion.md.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

from dagster_project.ingest.normalize import CellError

MAX_FILE_BYTES = 50 * 1024 * 1024  # a delivered file
MAX_UNCOMPRESSED_BYTES = 400 * 1024 * 1024  # sum of the workbook's XML parts once unzipped
MAX_COMPRESSION_RATIO = 200  # uncompressed / compressed, per part
MAX_ROWS = 1_000_000  # rows of one data sheet


class ReadError(Exception):
    """The file cannot be read at all; ``reason`` is French."""

    def __init__(self, reason: str, sheet: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.sheet = sheet


@dataclass
class Sheet:
    name: str
    rows: list[list[object]]
    # (0-based row, 0-based column) -> Excel error text, for cells calamine returned empty
    errors: dict[tuple[int, int], str] = field(default_factory=dict)
    hidden_rows: set[int] = field(default_factory=set)
    hidden: bool = False


_NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
}
_CELL = re.compile(rb"<(?:\w+:)?c\s([^>]*?)(/?)>")
_ATTR = re.compile(rb'(\w+)="([^"]*)"')
_VALUE = re.compile(rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>")
_ROW = re.compile(rb"<(?:\w+:)?row\s([^>]*)>")


def _cell_index(ref: bytes) -> tuple[int, int]:
    m = re.match(rb"([A-Z]+)(\d+)", ref)
    if not m:
        raise ValueError(ref)
    col = 0
    for ch in m[1]:
        col = col * 26 + (ch - 64)
    return int(m[2]) - 1, col - 1


def _sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> XML part path, from workbook.xml and its relationships."""
    try:
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        return {}
    targets = {r.get("Id"): r.get("Target") for r in rels.findall("rel:Relationship", _NS)}
    parts = {}
    for sheet in workbook.findall("m:sheets/m:sheet", _NS):
        target = targets.get(sheet.get(f"{{{_NS['r']}}}id"), "")
        if target.startswith("/"):
            path = target.lstrip("/")
        else:
            path = str(PurePosixPath("xl") / target)
        parts[sheet.get("name")] = path
    return parts


def _scan_sheet_xml(xml: bytes) -> tuple[dict[tuple[int, int], str], set[int]]:
    """Error cells and hidden rows of one sheet part (only what calamine does not report)."""
    errors: dict[tuple[int, int], str] = {}
    hidden: set[int] = set()
    if b'hidden="1"' in xml or b'hidden="true"' in xml:
        for m in _ROW.finditer(xml):
            attrs = dict(_ATTR.findall(m[1]))
            if attrs.get(b"hidden") in (b"1", b"true") and b"r" in attrs:
                hidden.add(int(attrs[b"r"]) - 1)
    if b't="e"' in xml:
        for m in _CELL.finditer(xml):
            attrs = dict(_ATTR.findall(m[1]))
            if attrs.get(b"t") != b"e" or b"r" not in attrs or m[2] == b"/":
                continue
            value = _VALUE.search(xml, m.end(), m.end() + 400)
            text = value[1].decode("utf-8", "replace") if value else "#ERREUR"
            errors[_cell_index(attrs[b"r"])] = text
    return errors, hidden


def check_archive(path: Path) -> zipfile.ZipFile:
    """Open the workbook's zip container after checking it is not a bomb."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ReadError(
            "le fichier n'est pas un classeur Excel .xlsx valide (fichier tronqué, "
            "ou autre format renommé en .xlsx : enregistrez-le au format « Classeur Excel (.xlsx) »)"
        ) from exc
    total = 0
    for info in archive.infolist():
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and ratio > MAX_COMPRESSION_RATIO:
            archive.close()
            raise ReadError(
                f"contenu compressé anormal ({info.filename} : taux de compression {ratio:.0f}:1, "
                f"limite {MAX_COMPRESSION_RATIO}:1) : fichier refusé par sécurité"
            )
    if total > MAX_UNCOMPRESSED_BYTES:
        archive.close()
        raise ReadError(
            f"classeur trop volumineux une fois décompressé ({total // 2**20} Mio, "
            f"limite {MAX_UNCOMPRESSED_BYTES // 2**20} Mio)"
        )
    if "xl/workbook.xml" not in archive.namelist():
        archive.close()
        raise ReadError(
            "le fichier n'est pas un classeur Excel .xlsx (partie xl/workbook.xml absente)"
        )
    return archive


def read_xlsx(path: Path) -> list[Sheet]:
    from python_calamine import CalamineError, CalamineWorkbook

    with check_archive(path) as archive:
        parts = _sheet_parts(archive)
        try:
            workbook = CalamineWorkbook.from_path(str(path))
        except (CalamineError, Exception) as exc:  # calamine raises several error types
            raise ReadError(f"classeur illisible ({type(exc).__name__} : {exc})") from exc
        sheets = []
        for meta in workbook.sheets_metadata:
            name = meta.name
            if str(meta.typ) not in ("SheetTypeEnum.WorkSheet", "WorkSheet"):
                continue
            try:
                calamine_sheet = workbook.get_sheet_by_name(name)
                if calamine_sheet.height > MAX_ROWS:
                    raise ReadError(
                        f"feuille trop grande ({calamine_sheet.height} lignes, limite {MAX_ROWS})",
                        sheet=name,
                    )
                rows = calamine_sheet.to_python(skip_empty_area=False)
            except CalamineError as exc:
                raise ReadError(f"feuille illisible ({exc})", sheet=name) from exc
            errors: dict[tuple[int, int], str] = {}
            hidden: set[int] = set()
            part = parts.get(name)
            if part and part in archive.namelist():
                errors, hidden = _scan_sheet_xml(archive.read(part))
            sheets.append(
                Sheet(
                    name=name,
                    rows=rows,
                    errors=errors,
                    hidden_rows=hidden,
                    hidden=str(meta.visible) not in ("SheetVisibleEnum.Visible", "Visible"),
                )
            )
        return sheets


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="strict")


def read_csv(path: Path) -> list[Sheet]:
    data = path.read_bytes()
    try:
        text = _decode(data)
    except UnicodeDecodeError as exc:
        raise ReadError("encodage non reconnu (attendu UTF-8 ou Windows-1252)") from exc
    if "\x00" in text:
        raise ReadError("le fichier .csv contient des caractères binaires : ce n'est pas un texte")
    lines = [line for line in text.splitlines()[:12] if line.strip()]
    sample = "\n".join(lines)
    delimiter = ";" if sample.count(";") >= sample.count(",") else ","
    rows: list[list[object]] = []
    for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
        rows.append([cell if cell.strip() != "" else None for cell in row])
        if len(rows) > MAX_ROWS:
            raise ReadError(f"fichier trop grand (plus de {MAX_ROWS} lignes)")
    return [Sheet(name=path.name, rows=rows)]


def read_file(path: Path) -> list[Sheet]:
    """Every sheet of a delivered file, or ReadError with a French reason."""
    size = path.stat().st_size
    if size == 0:
        raise ReadError("le fichier est vide (0 octet)")
    if size > MAX_FILE_BYTES:
        raise ReadError(
            f"fichier trop volumineux ({size // 2**20} Mio, limite {MAX_FILE_BYTES // 2**20} Mio)"
        )
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return read_xlsx(path)
    if suffix == ".csv":
        return read_csv(path)
    raise ReadError(f"format {suffix or '(sans extension)'} non accepté (attendu .xlsx ou .csv)")


__all__ = ["CellError", "ReadError", "Sheet", "read_file"]
