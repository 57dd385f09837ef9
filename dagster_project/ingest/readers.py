"""Reading a delivered file into sheets of cell values.

``.xlsx`` is read with python-calamine (the fastest Python reader, see notes/stack.md); a
long clean worksheet with fastexcel (the same calamine, with Arrow output) into typed columns
(``_fastexcel_sheet``), python-calamine's values being read only if the engine asks for them.
Before calamine sees the file, the archive is checked without trusting it (limits documented
in docs/ingestion.md):

1. the zip directory: number of parts, encryption, compression method, declared sizes
   (total and compression ratio per part) -- nothing is decompressed yet;
2. one streaming pass over every part, decompressing at most ``_CHUNK`` bytes at a time: a
   part that inflates beyond its declared size (a zip bomb with forged headers) or beyond the
   limits is rejected as soon as the excess is seen; a sheet whose ``<dimension>`` or whose
   counted rows exceed the limits is rejected at that point, without decompressing the rest.
   The same pass records what calamine does not report: Excel error cells (calamine turns
   ``#DIV/0!`` into an empty string), formulas without a cached value, hidden rows and
   merged cells.

The checks and calamine's parse of a workbook still to ingest may run ahead of time, in a
thread (``ingest.readahead``), in the same order: nothing reaches calamine before steps 1
and 2 have passed.

``.csv`` is read in UTF-8 or Windows-1252 with ``;`` or ``,`` as separator.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

from dagster_project.ingest.normalize import CellError


def _limit(name: str, default: int) -> int:
    """A documented limit (docs/ingestion.md), raised by KPI_<NAME> for large deployments."""
    return int(os.environ.get(f"KPI_{name}", default))


MAX_FILE_BYTES = _limit("MAX_FILE_BYTES", 50 * 1024 * 1024)  # a delivered file, as received
MAX_UNCOMPRESSED_BYTES = _limit("MAX_UNCOMPRESSED_BYTES", 256 * 1024 * 1024)  # parts unzipped
MAX_COMPRESSION_RATIO = 200  # uncompressed / compressed, per part of more than 1 MiB
RATIO_CHECK_FROM_BYTES = 1024 * 1024
MAX_PARTS = 2000  # entries of the zip container
MAX_ROWS = _limit("MAX_ROWS", 200_000)  # rows of one sheet (xlsx) or of the file (csv)
MAX_CELLS = _limit("MAX_CELLS", 5_000_000)  # rows x columns of the used range of one sheet

_CHUNK = 1024 * 1024  # bytes decompressed at a time
_OVERLAP = 4096  # bytes inflated beyond the scanned region, so that no tag is split
_LOOKBACK = 16 * 1024  # bytes kept before it, to find the cell of a formula

EMPTY_FILE = "le fichier est vide (0 octet)"


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
    very_hidden: bool = False  # hidden so that Excel's « Afficher » does not even list it
    # among ``hidden_rows``, those hidden by a height of (nearly) zero rather than « Masquer »
    zero_height_rows: set[int] = field(default_factory=set)
    # hidden columns, 0-based inclusive ranges (first, last), those of (nearly) zero width too
    hidden_columns: list[tuple[int, int]] = field(default_factory=list)
    # the range of the sheet's automatic filter (0-based, as ``merged``), when it filters rows
    filter_range: tuple[int, int, int, int] | None = None
    # a .csv: its separator (every line below the header has as many fields as the header)
    delimiter: str | None = None
    # (0-based row, 0-based column) of numeric cells whose number format shows something else
    # than the number they hold: a percentage, a unit, a value divided by 1 000
    formatted: dict[tuple[int, int], NumberFormat] = field(default_factory=dict)
    # merged ranges, 0-based and inclusive: (first row, first column, last row, last column)
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    # (0-based row, 0-based column) of formulas saved without a computed value
    uncached_formulas: set[tuple[int, int]] = field(default_factory=set)
    # rows after ``rows``, read on demand (a large .csv is never held whole as Python lists);
    # iterating it may raise ReadError (a malformed line, too many rows)
    tail: Iterator[list[object]] | None = None
    # a .csv that Arrow can read exactly as ``csv.reader`` does (no quote character, the same
    # number of fields on every line): ``arrow_rows(start)`` gives the rows from ``start``
    # (0-based) on as an Arrow table of text columns, None when the file is not that regular
    arrow_rows: Callable[[int], object] | None = None
    # a large worksheet read into typed Arrow columns by fastexcel (``_ArrowSheet``): ``rows``
    # then ends with its header row, ``arrow_rows`` gives the rows below, and ``reread()``
    # gives the sheet as calamine's Python values, for whatever the Arrow path does not judge
    reread: Callable[[], Sheet] | None = None
    # such a sheet's rows above the header (left empty in ``rows``): how many cells each fills
    head_filled: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class NumberFormat:
    """A cell's number format that shows more than the number it holds."""

    code: str  # as written in the workbook (« 0% », « #,##0 "kg" »)
    percent: bool = False  # shows the number × 100 followed by %
    unit: str = ""  # the text it shows with the number (« kg », « € »)
    scaled: bool = False  # shows the number divided by 1 000 (a comma after the digits)
    # whether it shows no digit of a positive, a negative, a zero value: nothing (« ;;; »),
    # or only a text (« "n.c." »)
    hides: tuple[bool, bool, bool] = (False, False, False)


@dataclass
class _SheetScan:
    """What the streaming pass learns about one sheet part."""

    errors: dict[tuple[int, int], str] = field(default_factory=dict)
    hidden_rows: set[int] = field(default_factory=set)
    zero_height_rows: set[int] = field(default_factory=set)
    hidden_columns: list[tuple[int, int]] = field(default_factory=list)
    filter_range: tuple[int, int, int, int] | None = None
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    uncached_formulas: set[tuple[int, int]] = field(default_factory=set)
    row_tags: int = 0
    last_row: int = 0  # highest row number (1-based) seen in a row tag
    width: int = 0  # highest column (1-based) seen, counted from column AA on
    dimension: str | None = None
    prefixed: bool = False  # elements written with a namespace prefix (<x:row>)
    first_cell: bytes | None = None  # reference of the first cell tag, when it holds a value
    first_seen: bool = False  # whether the first cell tag was found
    typed_dates: bool = False  # cells of type t="d" (ISO dates, which readers map differently)
    # the workbook's notable number formats, by style index (``_number_formats``), and the
    # numeric cells of this sheet shown through one of them
    styles: dict[int, NumberFormat] = field(default_factory=dict)
    formatted: dict[tuple[int, int], NumberFormat] = field(default_factory=dict)
    style_cells: re.Pattern | None = None  # finds the style attribute of those styles
    # filled cells (at most: a value or an inline text counts) of each of the first HEAD_ROWS
    # rows, by 0-based row; None when they could not be counted
    head_filled: dict[int, int] | None = field(default_factory=dict)
    head_done: bool = False


_NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
}
_CELL = re.compile(rb"<(?:\w+:)?c\s([^>]*?)(/?)>")
_ATTR = re.compile(rb'(\w+)="([^"]*)"')
_VALUE = re.compile(rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>")
_ROW = re.compile(rb"<(?:\w+:)?row(?=[\s/>])([^>]*)>")
_ROW_NUMBER = re.compile(rb'\br="(\d+)"')
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="([^"]+)"')
_PREFIXED = re.compile(rb"<\w+:worksheet\b")
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+\d+)(?::([A-Z]+\d+))?"')
_FILTER = re.compile(rb'<(?:\w+:)?autoFilter\s+ref="\$?([A-Z]+)\$?(\d+)(?::\$?([A-Z]+)\$?(\d+))?"')
_COLUMN = re.compile(rb"<(?:\w+:)?col\s([^>]*)>")
# a row height under 3 points: the row is hidden as surely as by « Masquer » (« 0 », « 2.5 »)
# (after the literal, so that the search looks for it fast; not customHeight="1")
_LOW_HEIGHT = re.compile(rb'ht="(?<!\wht=")0*(?:[0-2](?:\.\d*)?|\.\d*)"')
MIN_ROW_HEIGHT = 3.0  # points: a lower row shows nothing a person can read
MIN_COLUMN_WIDTH = 1.0  # characters: a narrower column shows nothing a person can read
_WIDE_REF = re.compile(rb' r="([A-Z]{2,3})\d')
# a formula element followed by the end of its cell, or by an empty value: no cached result
# (an empty value is a cached empty text only in a cell of type t="str")
_UNCACHED = re.compile(
    rb"(?:</(?:\w+:)?f>|<(?:\w+:)?f\b[^>]*/>)\s*"
    rb"(<(?:\w+:)?v\s*/>|<(?:\w+:)?v>\s*</(?:\w+:)?v>)?\s*</(?:\w+:)?c>"
)
_CELL_START = re.compile(rb"<(?:\w+:)?c\s[^>]*>")
_FILLED = re.compile(rb"<(?:\w+:)?(?:v|t)(?:\s[^>]*)?>[^<]")  # a value, or an inline text
_CELL_END = re.compile(rb"</(?:\w+:)?c>")
_ROW_END = re.compile(rb"</(?:\w+:)?row>")
HEAD_ROWS = 11  # rows where the engine looks for the header (engine.MAX_HEADER_SEARCH_ROWS)

_LOCAL_HEADER = struct.Struct("<4s5HL2L2H")


def column_letters(index: int) -> str:
    """0-based column index -> Excel letters (0 -> A, 27 -> AB)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_ref(row: int, column: int) -> str:
    """0-based (row, column) -> ``B12``."""
    return f"{column_letters(column)}{row + 1}"


def _letters_index(letters: bytes) -> int:
    col = 0
    for ch in letters:
        col = col * 26 + (ch - 64)
    return col - 1


def _cell_index(ref: bytes) -> tuple[int, int]:
    m = re.match(rb"([A-Z]+)(\d+)", ref)
    if not m:
        raise ValueError(ref)
    return int(m[2]) - 1, _letters_index(m[1])


def _thousands(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} Mio" if n >= 2**20 else f"{n / 1024:.0f} Kio"


def _sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> XML part path, from workbook.xml and its relationships."""
    try:
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, zlib.error):
        return {}
    targets = {r.get("Id"): r.get("Target") for r in rels.findall("rel:Relationship", _NS)}
    parts = {}
    names = [str(sheet.get("name")) for sheet in workbook.findall("m:sheets/m:sheet", _NS)]
    for name in names:
        if sum(other.casefold() == name.casefold() for other in names) > 1:
            raise ReadError(
                f"contenu anormal : deux feuilles portent le nom « {name} » (Excel ne l'admet "
                "pas : une seule serait lue) : ouvrez le classeur dans Excel et enregistrez-le à "
                "nouveau"
            )
    for sheet in workbook.findall("m:sheets/m:sheet", _NS):
        target = targets.get(sheet.get(f"{{{_NS['r']}}}id"), "") or ""
        if target.startswith("/"):
            path = target.lstrip("/")
        else:
            path = str(PurePosixPath("xl") / target)
        parts[sheet.get("name")] = path
    return parts


# ------------------------------------------------------------------------------------------
# not a workbook at all: say what it is


def _sniff(head: bytes) -> str | None:
    """What a file that is not an xlsx zip looks like, in French, or None."""
    if head.startswith(b"%PDF"):
        return "c'est un document PDF renommé en .xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return (
            "c'est un classeur Excel 97-2003 (.xls) renommé en .xlsx, ou un classeur protégé "
            "par mot de passe : enregistrez-le au format « Classeur Excel (.xlsx) », sans "
            "mot de passe"
        )
    lowered = head.lstrip(b"\xef\xbb\xbf \r\n\t").lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<table")):
        return "c'est une page HTML renommée en .xlsx (export web)"
    if lowered.startswith(b"<?xml"):
        return "c'est un fichier XML (classeur XML 2003 ?) renommé en .xlsx"
    if head.startswith(b"PK"):
        return None
    if head and all(32 <= b < 127 or b in (9, 10, 13) or b >= 128 for b in head[:512]):
        return "c'est un fichier texte (CSV ?) renommé en .xlsx : gardez l'extension .csv"
    return None


def _not_a_workbook(path: Path, detail: str | None = None) -> ReadError:
    with path.open("rb") as handle:
        head = handle.read(2048)
    what = _sniff(head)
    if what:
        return ReadError(f"le fichier n'est pas un classeur Excel .xlsx : {what}")
    if head.startswith(b"PK"):
        return ReadError(
            "classeur .xlsx endommagé ou incomplet (fichier tronqué pendant la copie ou "
            f"l'envoi{' : ' + detail if detail else ''}) : renvoyez le fichier d'origine"
        )
    return ReadError(
        "le fichier n'est pas un classeur Excel .xlsx valide (fichier tronqué, ou autre format "
        "renommé en .xlsx : enregistrez-le au format « Classeur Excel (.xlsx) »)"
    )


# ------------------------------------------------------------------------------------------
# the zip directory


def _no_duplicate_parts(infos: list[zipfile.ZipInfo]) -> None:
    """A part present twice (two entries of one name, whatever its case or slashes: a part's
    name ignores case) is refused: each reader would pick one, not necessarily the same (the
    checks one version, calamine the other). A macro project: an .xlsm renamed .xlsx."""
    seen: set[str] = set()
    for info in infos:
        key = info.filename.replace("\\", "/").lstrip("/").casefold()
        if key in seen:
            raise ReadError(
                f"contenu anormal : l'élément « {info.filename} » figure deux fois dans le "
                "classeur (deux versions d'une même feuille ou partie, dont une seule serait "
                "lue) : fichier refusé par sécurité ; ouvrez-le dans Excel et enregistrez-le à "
                "nouveau"
            )
        seen.add(key)
    if "xl/vbaproject.bin" in seen:
        raise ReadError(MACRO_WORKBOOK)


MACRO_WORKBOOK = (
    "le fichier n'est pas un classeur .xlsx : c'est un classeur avec macros (.xlsm) renommé en "
    ".xlsx : enregistrez-le au format « Classeur Excel (.xlsx) » (Fichier › Enregistrer sous), "
    "les macros ne sont pas acceptées"
)


def check_archive(path: Path) -> zipfile.ZipFile:
    """Open the workbook's zip container after checking its directory (nothing decompressed).

    Declared sizes are checked here; ``scan_archive`` then checks that no part inflates
    beyond what it declares.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _not_a_workbook(path) from exc
    try:
        infos = archive.infolist()
        if len(infos) > MAX_PARTS:
            raise ReadError(
                f"contenu anormal : {len(infos)} éléments dans le classeur "
                f"(limite {MAX_PARTS}) : fichier refusé par sécurité"
            )
        names = {info.filename for info in infos}
        _no_duplicate_parts(infos)
        if "xl/workbook.xml" not in names:
            if "mimetype" in names and b"opendocument" in archive.read("mimetype")[:100]:
                raise ReadError(
                    "le fichier n'est pas un classeur Excel .xlsx : c'est un classeur "
                    "OpenDocument (.ods) renommé : enregistrez-le au format « Classeur Excel "
                    "(.xlsx) »"
                )
            raise ReadError(
                "le fichier n'est pas un classeur Excel .xlsx (partie xl/workbook.xml absente)"
            )
        total = 0
        for info in infos:
            if info.flag_bits & 0x1:
                raise ReadError(
                    "classeur chiffré (protégé par mot de passe) : enregistrez-le sans mot de passe"
                )
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ReadError(
                    f"méthode de compression non prise en charge ({info.filename}) : "
                    "enregistrez le classeur depuis Excel"
                )
            total += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_CHECK_FROM_BYTES and ratio > MAX_COMPRESSION_RATIO:
                raise ReadError(
                    f"contenu compressé anormal ({info.filename} : taux de compression "
                    f"{ratio:.0f}:1, limite {MAX_COMPRESSION_RATIO}:1) : fichier refusé par "
                    "sécurité (« bombe zip »)"
                )
        if total > MAX_UNCOMPRESSED_BYTES:
            raise ReadError(
                f"classeur trop volumineux une fois décompressé ({_mib(total)}, "
                f"limite {_mib(MAX_UNCOMPRESSED_BYTES)})"
            )
    except BaseException:
        archive.close()
        raise
    return archive


# ------------------------------------------------------------------------------------------
# one streaming pass over the parts


def _inflate(handle, info: zipfile.ZipInfo, budget: int):
    """Decompressed chunks of one part, read from its raw bytes (sizes are not trusted)."""
    handle.seek(info.header_offset)
    header = handle.read(_LOCAL_HEADER.size)
    if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise ReadError(f"classeur .xlsx endommagé (partie {info.filename} introuvable)")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    handle.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
    remaining = info.compress_size
    inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    produced = 0
    crc = 0
    pending = b""
    while True:
        if not pending:
            if remaining <= 0:
                break
            pending = handle.read(min(_CHUNK, remaining))
            if not pending:
                raise ReadError(f"classeur .xlsx tronqué (partie {info.filename} incomplète)")
            remaining -= len(pending)
        if inflater is None:
            out, pending = pending, b""
        else:
            try:
                out = inflater.decompress(pending, _CHUNK)
            except zlib.error as exc:
                raise ReadError(
                    f"classeur .xlsx endommagé (partie {info.filename} illisible) : "
                    "renvoyez le fichier d'origine"
                ) from exc
            pending = inflater.unconsumed_tail
        produced += len(out)
        if produced > info.file_size:
            raise ReadError(
                f"contenu compressé anormal ({info.filename} : plus de {_mib(info.file_size)} "
                "une fois décompressé alors que le classeur annonce cette taille) : fichier "
                "refusé par sécurité (« bombe zip »)"
            )
        if produced > budget:
            raise ReadError(
                f"classeur trop volumineux une fois décompressé (plus de "
                f"{_mib(MAX_UNCOMPRESSED_BYTES)}) : fichier refusé par sécurité"
            )
        if out:
            crc = zlib.crc32(out, crc)
            yield out
        if inflater is not None and inflater.eof:
            break
    if produced != info.file_size or crc != info.CRC:
        raise ReadError(
            f"classeur .xlsx endommagé (partie {info.filename} : contenu altéré, somme de "
            "contrôle incorrecte) : renvoyez le fichier d'origine"
        )


def _too_big(name: str, rows: int, cells: int | None, what: str) -> ReadError:
    if rows > MAX_ROWS:
        reason = (
            f"feuille « {name} » trop grande : {what} {_thousands(rows)} lignes (limite "
            f"{_thousands(MAX_ROWS)} lignes par feuille)"
        )
    else:
        reason = (
            f"feuille « {name} » trop grande : {what} {_thousands(cells or 0)} cellules "
            f"(lignes × colonnes, limite {_thousands(MAX_CELLS)})"
        )
    return ReadError(
        reason + " ; s'il s'agit de lignes ou de colonnes vides mises en forme, supprimez-les, "
        "sinon découpez le fichier",
        sheet=name,
    )


def _check_dimension(name: str, ref: str) -> None:
    m = re.fullmatch(r"([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?", ref)
    if not m:
        return
    last_col = m[3] or m[1]
    rows = int(m[4] or m[2])
    cols = _letters_index(last_col.encode()) + 1
    if rows > MAX_ROWS or rows * cols > MAX_CELLS:
        raise _too_big(name, rows, rows * cols, f"zone utilisée {ref}, soit")


def _float(text: bytes | None, default: float) -> float:
    try:
        return float(text) if text is not None else default
    except ValueError:
        return default


def _scan_region(buf: bytes, start: int, end: int, scan: _SheetScan) -> None:
    """Record what starts in ``buf[start:end]`` (``buf`` goes on beyond ``end``, and keeps
    some bytes before ``start`` to look back at the cell of a formula)."""
    region = buf[start:end]
    # a search for one byte is a memchr: a cell region without that letter (the usual sheet
    # of numbers and shared strings has no "e", "f", "g" or "h") skips the longer searches
    # counting a literal is ten times faster than a regular expression (an extra
    # <rowBreaks> at the end of the sheet counts one row too many: harmless)
    row_tags = region.count(b"<row") + (region.count(b":row ") if scan.prefixed else 0)
    if row_tags:
        scan.row_tags += row_tags
        last = max(region.rfind(b"<row"), region.rfind(b":row ") if scan.prefixed else -1)
        tag = _ROW.match(region, region.rfind(b"<", 0, last + 1)) if last >= 0 else None
        number = _ROW_NUMBER.search(tag[1]) if tag else None
        if number:
            scan.last_row = max(scan.last_row, int(number[1]))
        low = _LOW_HEIGHT.search(region) is not None
        if low or (b"h" in region and (b'hidden="1"' in region or b'hidden="true"' in region)):
            for attrs in _ROW.findall(region):
                values = dict(_ATTR.findall(attrs))
                if b"r" not in values:
                    continue
                if values.get(b"hidden") in (b"1", b"true"):
                    scan.hidden_rows.add(int(values[b"r"]) - 1)
                elif low and _float(values.get(b"ht"), MIN_ROW_HEIGHT) < MIN_ROW_HEIGHT:
                    scan.hidden_rows.add(int(values[b"r"]) - 1)
                    scan.zero_height_rows.add(int(values[b"r"]) - 1)
    # <cols> comes before the cells (the schema's order); an <autoFilter> after them
    if not scan.first_seen and (b"<col " in region or (scan.prefixed and b":col " in region)):
        for m in _COLUMN.finditer(region):
            values = dict(_ATTR.findall(m[1]))
            hidden = values.get(b"hidden") in (b"1", b"true")
            if hidden or _float(values.get(b"width"), MIN_COLUMN_WIDTH) < MIN_COLUMN_WIDTH:
                try:
                    first, last = int(values[b"min"]) - 1, int(values[b"max"]) - 1
                except (KeyError, ValueError):
                    continue
                scan.hidden_columns.append((first, min(last, 16383)))
    if b"u" in region and b"autoFilter" in region and b"filterColumn" in region:
        for m in _FILTER.finditer(region):
            scan.filter_range = (
                int(m[2]) - 1,
                _letters_index(m[1]),
                int(m[4] or m[2]) - 1,
                _letters_index(m[3] or m[1]),
            )
    if not scan.first_seen and (first := _CELL.search(buf, start, end)) is not None:
        scan.first_seen = True
        close = _CELL_END.search(buf, first.end()) if first[2] != b"/" else None
        if close is not None and _FILLED.search(buf, first.end(), close.start()):
            scan.first_cell = dict(_ATTR.findall(first[1])).get(b"r")
    if not scan.typed_dates and b't="d"' in region:
        scan.typed_dates = True
    if scan.style_cells is not None:  # numeric cells of a notable number format
        for hit in scan.style_cells.finditer(buf, start, end):
            m = _CELL.match(buf, buf.rfind(b"<", 0, hit.start()))
            if m is None or m[2] == b"/":
                continue
            attrs = dict(_ATTR.findall(m[1]))
            if attrs.get(b"t", b"n") == b"n" and b"r" in attrs:
                scan.formatted[_cell_index(attrs[b"r"])] = scan.styles[int(hit[1])]
    if not scan.head_done:
        _scan_head(buf, start, end, scan)
    for letters in set(_WIDE_REF.findall(region)):
        scan.width = max(scan.width, _letters_index(letters) + 1)
    if b"e" in region and b't="e"' in region:
        for m in _CELL.finditer(buf, start, end):
            attrs = dict(_ATTR.findall(m[1]))
            if attrs.get(b"t") != b"e" or b"r" not in attrs or m[2] == b"/":
                continue
            value = _VALUE.search(buf, m.end(), m.end() + 400)
            text = value[1].decode("utf-8", "replace") if value else "#ERREUR"
            scan.errors[_cell_index(attrs[b"r"])] = text
    if b"f" in region and (b"<f" in region or (scan.prefixed and b":f" in region)):
        for m in _UNCACHED.finditer(buf, start, min(len(buf), end + _OVERLAP)):
            if m.start() >= end:
                break
            low = max(0, m.start() - _LOOKBACK)
            at = max(buf.rfind(b"<c ", low, m.start()), buf.rfind(b":c ", low, m.start()))
            cell = _CELL_START.match(buf, buf.rfind(b"<", low, at + 1)) if at >= 0 else None
            attrs = dict(_ATTR.findall(cell[0])) if cell else {}
            if m[1] and attrs.get(b"t") == b"str":
                continue  # a formula whose result is an empty text
            if b"r" in attrs:
                scan.uncached_formulas.add(_cell_index(attrs[b"r"]))
    if b"g" in region and b"mergeCell" in region:
        for m in _MERGE.finditer(region):
            first = _cell_index(m[1])
            last = _cell_index(m[2] or m[1])
            scan.merged.append((first[0], first[1], last[0], last[1]))


def _scan_head(buf: bytes, start: int, end: int, scan: _SheetScan) -> None:
    """Count the filled cells of the first ``HEAD_ROWS`` rows (``_SheetScan.head_filled``)."""
    for row in _ROW.finditer(buf, start, end):
        number = _ROW_NUMBER.search(row[1])
        index = int(number[1]) - 1 if number else None
        if index is None or index >= HEAD_ROWS:
            scan.head_done = True
            if index is None:  # a row without its number: rows cannot be told apart
                scan.head_filled = None
            return
        if row[1].endswith(b"/"):  # <row r="2"/>: no cell
            continue
        close = _ROW_END.search(buf, row.end())
        if close is None or scan.head_filled is None:
            scan.head_done, scan.head_filled = True, None
            return
        scan.head_filled[index] = len(_FILLED.findall(buf, row.end(), close.start()))


def _scan_sheet(chunks, name: str, styles: dict[int, NumberFormat] | None = None) -> _SheetScan:
    scan = _SheetScan(styles=styles or {})
    if scan.styles:  # the style attribute of a cell, for the notable styles only
        ids = b"|".join(b"%d" % style for style in sorted(scan.styles))
        scan.style_cells = re.compile(rb'\ss="(%s)"' % ids)
    buf = b""
    start = 0  # buf[:start] was scanned already (kept to look back)
    for chunk in chunks:
        buf += chunk
        if scan.dimension is None:  # declared before <sheetData>, in the first bytes
            scan.prefixed = _PREFIXED.search(buf, 0, 64 * 1024) is not None
            found = _DIMENSION.search(buf, 0, 64 * 1024)
            if found:
                scan.dimension = found[1].decode("ascii", "replace")
                _check_dimension(name, scan.dimension)
            elif b"sheetData" in buf or len(buf) >= 64 * 1024:
                scan.dimension = ""
        if len(buf) - start <= 2 * _OVERLAP:
            continue
        # scan up to the last tag that starts well before the end of what is inflated
        end = buf.rfind(b"<", start + 1, len(buf) - _OVERLAP)
        if end < 0:
            end = len(buf) - _OVERLAP  # one long text node: no tag starts there
        _scan_region(buf, start, end, scan)
        keep = max(0, end - _LOOKBACK)
        buf, start = buf[keep:], end - keep
        _check_size(name, scan)
    _scan_region(buf, start, len(buf), scan)
    _check_size(name, scan)
    return scan


def _check_size(name: str, scan: _SheetScan) -> None:
    rows = max(scan.row_tags, scan.last_row)
    if rows > MAX_ROWS:
        raise _too_big(name, rows, None, "plus de")
    if scan.width and rows * scan.width > MAX_CELLS:
        raise _too_big(name, rows, rows * scan.width, "plus de")


# built-in number formats (no code in the workbook): percentages, and currencies (« € » in a
# French Excel)
_BUILTIN_PERCENT = {9, 10}
_BUILTIN_CURRENCY = {5, 6, 7, 8, 42, 44}
_SHOWN_UNIT = re.compile(r"[^\W\d_]|[€$£%‰°²³µ]")  # a letter or a sign: the text is a unit


def _format_text(section: str) -> tuple[str, str]:
    """(the text a format section shows, the section without it): quoted text, escaped
    characters, currency tags [$€-40C] and unquoted currency signs are shown as written;
    padding (_x), fills (*x), colours and conditions ([Red], [>100]) are not."""
    shown, bare = [], []
    k = 0
    while k < len(section):
        c = section[k]
        if c == '"':
            end = section.find('"', k + 1)
            end = len(section) if end < 0 else end
            shown.append(section[k + 1 : end])
            k = end + 1
            continue
        if c == "\\" and k + 1 < len(section):
            shown.append(section[k + 1])
            k += 2
            continue
        if c in "_*" and k + 1 < len(section):
            k += 2
            continue
        if c == "[":
            end = section.find("]", k + 1)
            end = len(section) if end < 0 else end
            tag = section[k + 1 : end]
            if tag.startswith("$"):
                shown.append(tag[1:].split("-")[0])
            k = end + 1
            continue
        if c in "€$£":
            shown.append(c)
        else:
            bare.append(c)
        k += 1
    return "".join(shown).strip(), "".join(bare)


def _number_format(code: str) -> NumberFormat | None:
    """What a number format shows besides the number (its sections for positive and negative
    numbers); None for a plain number, a date or a time (calamine gives dates as dates)."""
    every = re.split(r';(?=(?:[^"]*"[^"]*")*[^"]*$)', code)
    sections = every[:2]
    # whether the section for a positive, a negative, a zero value shows no digit
    positive = every[0]
    hides = tuple(
        _shows_no_digit(section) and bool(code.strip())
        for section in (
            positive,
            every[1] if len(every) > 1 else positive,
            every[2] if len(every) > 2 else positive,
        )
    )
    percent = scaled = False
    units: list[str] = []
    for section in sections:
        shown, bare = _format_text(section)
        if bare.strip().lower() in ("general", "standard"):
            if shown and _SHOWN_UNIT.search(shown):
                units.append(shown)
            continue
        if re.search(r"[yYmMdDhHsS]", bare):  # a date or a time (« m » is a month here)
            return None
        if not re.search(r"[0#?@]", bare):  # no digit shown: nothing (;;;), or only a text
            continue
        percent = percent or "%" in bare
        scaled = scaled or re.search(r"[0#?],+[^0#?]*$", bare) is not None
        if shown and _SHOWN_UNIT.search(shown):
            units.append(shown)
    if not (percent or scaled or units or any(hides)):
        return None
    return NumberFormat(code, percent, units[0] if units else "", scaled, hides)


def _shows_no_digit(section: str) -> bool:
    """Whether a format section shows no digit of the number: nothing, or only a text."""
    bare = _format_text(section)[1]
    return bare.strip().lower() not in ("general", "standard") and not re.search(r"[0#?@]", bare)


MAX_STYLES = 65_536  # cell styles or number formats of a workbook (Excel: 64 000 at most)


def _styles_numbers(path: Path, info: zipfile.ZipInfo) -> tuple[dict[int, str], list[int]]:
    """The custom number formats (id -> code) and the number format of each cell style, read
    from the styles part as it is inflated (a pull parser that forgets what it has read: a
    styles part of any size costs no memory), within ``MAX_STYLES``."""
    parser = ElementTree.XMLPullParser(events=("start", "end"))
    stack: list[ElementTree.Element] = []
    codes: dict[int, str] = {}
    numbers: list[int] = []
    with path.open("rb") as handle:
        for chunk in _inflate(handle, info, MAX_UNCOMPRESSED_BYTES):
            parser.feed(chunk)
            for event, element in parser.read_events():
                if event == "start":
                    stack.append(element)
                    continue
                stack.pop()
                if len(stack) == 2:  # a numFmt of numFmts, an xf of cellXfs...
                    parent = stack[1].tag.rsplit("}", 1)[-1]
                    tag = element.tag.rsplit("}", 1)[-1]
                    number = element.get("numFmtId", "")
                    if parent == "numFmts" and tag == "numFmt" and number.isdigit():
                        codes[int(number)] = element.get("formatCode", "")
                    elif parent == "cellXfs" and tag == "xf":
                        numbers.append(int(number) if number.isdigit() else 0)
                    del stack[1][:]
                elif len(stack) == 1:
                    del stack[0][:]
                if len(numbers) > MAX_STYLES or len(codes) > MAX_STYLES:
                    raise ReadError(
                        f"contenu anormal : plus de {_thousands(MAX_STYLES)} styles de cellule "
                        "(Excel en admet 64 000) : fichier refusé par sécurité"
                    )
    parser.close()
    return codes, numbers


def _number_formats(path: Path, archive: zipfile.ZipFile) -> dict[int, NumberFormat]:
    """The workbook's cell styles whose number format shows more than the number (a
    percentage, a unit, a value divided by 1 000), by style index (a cell's ``s``)."""
    try:
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, zlib.error):
        return {}
    part = None
    for rel in rels.findall("rel:Relationship", _NS):
        if str(rel.get("Type", "")).endswith("/styles"):
            target = rel.get("Target") or ""
            part = (
                target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
            )
    try:
        info = archive.getinfo(part) if part else None
    except KeyError:
        info = None
    if info is None:
        return {}
    try:
        codes, numbers = _styles_numbers(path, info)
    except ElementTree.ParseError:
        return {}
    found = {}
    for index, number in enumerate(numbers):
        if number in codes:
            kind = _number_format(codes[number])
        elif number in _BUILTIN_PERCENT:
            kind = NumberFormat("0%" if number == 9 else "0.00%", percent=True)
        elif number in _BUILTIN_CURRENCY:
            kind = NumberFormat(f"format monétaire n° {number}", unit="€")
        else:
            kind = None
        if kind is not None:
            found[index] = kind
    return found


def scan_archive(path: Path, archive: zipfile.ZipFile) -> dict[str, _SheetScan]:
    """Inflate every part once, within the limits; returns what each sheet part holds."""
    parts = _sheet_parts(archive)
    sheet_of_part = {part: name for name, part in parts.items()}
    budget = MAX_UNCOMPRESSED_BYTES
    scans: dict[str, _SheetScan] = {}
    styles = _number_formats(path, archive)
    with path.open("rb") as handle:
        for info in archive.infolist():
            if info.is_dir():
                continue
            chunks = _inflate(handle, info, budget)
            name = sheet_of_part.get(info.filename)
            if info.filename == "[Content_Types].xml":
                tail = b""
                for chunk in chunks:
                    budget -= len(chunk)
                    if b"macroEnabled" in tail + chunk[:64] or b"macroEnabled" in chunk:
                        raise ReadError(MACRO_WORKBOOK)  # the workbook of an .xlsm
                    tail = chunk[-16:]
            elif name is not None:
                counted = _Counted(chunks)
                scans[name] = _scan_sheet(counted, name, styles)
                budget -= counted.total
            else:
                for chunk in chunks:
                    budget -= len(chunk)
    return scans


class _Counted:
    def __init__(self, chunks):
        self.chunks = chunks
        self.total = 0

    def __iter__(self):
        for chunk in self.chunks:
            self.total += len(chunk)
            yield chunk


# ------------------------------------------------------------------------------------------
# readers


ARROW_MIN_ROWS = 10_000  # row tags from which a clean worksheet is read into Arrow columns
_DEDUPED = re.compile(r"^(.*)_(\d+)$")  # fastexcel's name for a repeated header (« Nom_1 »)


def _arrow_eligible(scan: _SheetScan | None) -> bool:
    """Whether a worksheet is read by fastexcel into Arrow columns: a long sheet whose first
    cell is A1 (its rows are counted from row 1) and in which the scan found nothing that only
    the cell-by-cell rules explain (error values, formulas without a value, hidden rows,
    merged cells, cells typed as ISO dates)."""
    return (
        scan is not None
        and scan.row_tags >= ARROW_MIN_ROWS
        and scan.first_cell == b"A1"
        and bool(scan.head_filled)
        and not (
            scan.errors
            or scan.uncached_formulas
            or scan.hidden_rows
            or scan.hidden_columns
            or scan.merged
            or scan.formatted
            or scan.typed_dates
        )
    )


def _header_guess(scan: _SheetScan) -> int:
    """The row taken for the header: the first of the widest of the first rows (titles above
    a header fill fewer cells). The engine checks that no row above could be a header."""
    filled = scan.head_filled or {0: 0}
    widest = max(filled.values())
    return min(index for index, count in filled.items() if count == widest)


@dataclass
class _ArrowSheet:
    header: list[str]  # the header row, as written
    header_row: int  # 0-based
    batch: object  # pyarrow.RecordBatch: the rows below, one typed column per header cell
    head_filled: dict[int, int]  # filled cells of the rows above the header (scan)


def _fastexcel_sheet(path: Path, name: str, scan: _SheetScan) -> _ArrowSheet | None:
    """A worksheet read by fastexcel (the same calamine, with Arrow output): the header row
    (``_header_guess``) and the rows below as typed columns. None when it cannot be read that
    way without loss: a column mixing types (``strict``: fastexcel would otherwise convert
    them), a blank or repeated header cell, a column beyond the header, more rows than the
    limit."""
    import fastexcel

    logging.getLogger("fastexcel").setLevel(logging.ERROR)  # its notes on guessed types
    header_row = _header_guess(scan)
    try:
        sheet = fastexcel.read_excel(str(path)).load_sheet(
            name, header_row=header_row, schema_sample_rows=None, dtype_coercion="strict"
        )
        columns = sheet.available_columns()
        names = [column.name for column in columns]
        if (
            [column.absolute_index for column in columns] != list(range(len(columns)))
            or any(column.column_name_from != "looked_up" for column in columns)
            or any((m := _DEDUPED.match(n)) is not None and m[1] in names for n in names)
        ):
            return None
        batch = sheet.to_arrow()
    except Exception:  # fastexcel raises several error types: calamine reads the sheet then
        return None
    if batch.num_rows + header_row + 1 > MAX_ROWS or batch.num_columns != len(names):
        return None
    above = {i: n for i, n in (scan.head_filled or {}).items() if i < header_row}
    return _ArrowSheet(names, header_row, batch, above)


class CalamineParse:
    """A workbook's checks (steps 1 and 2) then the parse of every worksheet, run ahead of
    time in a thread (``ingest.readahead``): calamine releases the GIL while it parses, so the
    parse uses another core. ``scans``: what step 2 found, None when the workbook was refused
    (``read_xlsx`` then reads it again and says why); ``sheets``: (name, visibility, calamine
    sheet, ``_ArrowSheet`` or the exception calamine raised); ``error``: calamine could not
    open the workbook. A long clean worksheet (``_arrow_eligible``) is read by fastexcel into
    Arrow columns, calamine's Python values being read only if the engine needs them."""

    def __init__(self, path: Path):
        self.path = path
        self.scans: dict[str, _SheetScan] | None = None
        self.sheets: list[tuple[str, bool, object]] = []
        self.error: Exception | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            with check_archive(self.path) as archive:
                scans = scan_archive(self.path, archive)
            self.parse(scans)
            self.scans = scans
        except (ReadError, OSError):
            pass
        finally:
            self.done.set()

    def parse(self, scans: dict[str, _SheetScan]) -> None:
        from python_calamine import CalamineWorkbook

        try:
            workbook = CalamineWorkbook.from_path(str(self.path))
        except Exception as exc:  # calamine raises several error types
            self.error = exc
            return
        try:
            for meta in workbook.sheets_metadata:
                if str(meta.typ) not in ("SheetTypeEnum.WorkSheet", "WorkSheet"):
                    continue
                # Visible, Hidden or VeryHidden (hidden where Excel's « Afficher » cannot)
                visible = str(meta.visible).rsplit(".", 1)[-1]
                parsed: object = None
                scan = scans.get(meta.name)
                if visible == "Visible" and _arrow_eligible(scan):
                    parsed = _fastexcel_sheet(self.path, meta.name, scan)
                if parsed is None:
                    try:
                        parsed = workbook.get_sheet_by_name(meta.name)
                    except Exception as exc:
                        parsed = exc
                self.sheets.append((meta.name, visible, parsed))
        except Exception as exc:
            self.error = exc
        finally:
            workbook.close()


def _python_sheet(name: str, visible: str, parsed, scan: _SheetScan | None) -> Sheet:
    """A worksheet parsed by calamine, as Python values, with what the scan found."""
    from python_calamine import CalamineError

    if isinstance(parsed, CalamineError):
        raise ReadError(f"feuille illisible ({parsed})", sheet=name) from parsed
    if isinstance(parsed, Exception):
        raise ReadError(f"classeur illisible ({type(parsed).__name__} : {parsed})") from parsed
    if parsed.height > MAX_ROWS:
        raise _too_big(name, parsed.height, None, "")
    try:
        rows = parsed.to_python(skip_empty_area=False)
    except CalamineError as exc:
        raise ReadError(f"feuille illisible ({exc})", sheet=name) from exc
    scan = scan or _SheetScan()
    return Sheet(
        name=name,
        rows=rows,
        errors=scan.errors,
        hidden_rows=scan.hidden_rows,
        hidden=visible != "Visible",
        very_hidden=visible == "VeryHidden",
        zero_height_rows=scan.zero_height_rows,
        hidden_columns=scan.hidden_columns,
        formatted=scan.formatted,
        filter_range=scan.filter_range,
        merged=scan.merged,
        uncached_formulas=scan.uncached_formulas,
    )


def _reread(path: Path, name: str, visible: str, scan: _SheetScan | None) -> Sheet:
    """A worksheet read by fastexcel, read again by calamine as Python values."""
    from python_calamine import CalamineWorkbook

    try:
        with CalamineWorkbook.from_path(str(path)) as workbook:
            parsed: object = workbook.get_sheet_by_name(name)
    except Exception as exc:
        parsed = exc
    return _python_sheet(name, visible, parsed, scan)


def _arrow_rows(sheet: _ArrowSheet, start: int):
    """``Sheet.arrow_rows`` of a worksheet read by fastexcel: the rows below its header."""
    import pyarrow as pa

    return pa.Table.from_batches([sheet.batch]) if start == sheet.header_row + 1 else None


def read_xlsx(path: Path, ahead: CalamineParse | None = None) -> list[Sheet]:
    """The sheets of a workbook; ``ahead``: its checks and parse begun ahead of time."""
    if ahead is not None:
        ahead.done.wait()
    if ahead is not None and ahead.scans is not None:
        scans, parse = ahead.scans, ahead
    else:  # checked first, then parsed: nothing reaches calamine before the checks pass
        with check_archive(path) as archive:
            scans = scan_archive(path, archive)
        parse = CalamineParse(path)
        parse.parse(scans)
    if parse.error is not None:
        exc = parse.error
        raise ReadError(f"classeur illisible ({type(exc).__name__} : {exc})") from exc
    sheets = []
    for name, visible, parsed in parse.sheets:
        if isinstance(parsed, _ArrowSheet):
            sheets.append(
                Sheet(
                    name=name,
                    rows=[[] for _ in range(parsed.header_row)] + [list(parsed.header)],
                    arrow_rows=partial(_arrow_rows, parsed),
                    reread=partial(_reread, path, name, visible, scans.get(name)),
                    head_filled=parsed.head_filled,
                )
            )
        else:
            sheets.append(_python_sheet(name, visible, parsed, scans.get(name)))
    return sheets


def _encoding(data: bytes) -> str:
    """The codec of a .csv (UTF-8, with or without BOM, else Windows-1252), checked on the
    whole file; the decoded text is not kept (rows are decoded again as they are read)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ReadError(
            "encodage UTF-16 (« Texte Unicode ») non accepté : enregistrez le fichier au format "
            "« CSV UTF-8 (délimité par des virgules) » ou « CSV (séparateur : point-virgule) »"
        )
    bom = data.startswith(b"\xef\xbb\xbf")
    body = memoryview(data)[3:] if bom else data
    try:
        str(body, "utf-8")
        return "utf-8-sig" if bom else "utf-8"
    except UnicodeDecodeError as not_utf8:
        try:
            str(body, "cp1252", "strict")
            _not_mixed(data, utf8_from=not_utf8.start + (3 if bom else 0))
            return "cp1252"
        except UnicodeDecodeError as exc:
            start = exc.start + (3 if bom else 0)
            line = data[:start].count(b"\n") + 1
            raise ReadError(
                f"encodage non reconnu (octet 0x{data[start]:02X} ligne {line}) : attendu "
                "UTF-8 ou Windows-1252 ; enregistrez le fichier au format « CSV UTF-8 »"
            ) from exc


# accented letters, « Œ œ » and typographic signs as UTF-8 writes them: in a Windows-1252 text
# they would read « Ã© », « Å“ », « â€™ », which no French text holds
_UTF8_LETTERS = re.compile(rb"\xc3[\x80-\xbf]|\xc5[\x92\x93]|\xe2\x80[\x93-\xa6\xaf]")


def _not_mixed(data: bytes, utf8_from: int) -> None:
    """A .csv that is not UTF-8 (a byte at ``utf8_from`` is not) but holds letters written in
    UTF-8: two files put together, or a file edited with two programs. Neither encoding reads
    all of it: refused, never half mis-read."""
    utf8 = _UTF8_LETTERS.search(data)
    if utf8 is None:
        return
    line_utf8 = data.count(b"\n", 0, utf8.start()) + 1
    line_cp1252 = data.count(b"\n", 0, utf8_from) + 1
    raise ReadError(
        f"encodage mélangé : la ligne {line_utf8} est écrite en UTF-8 et la ligne "
        f"{line_cp1252} en Windows-1252 (fichiers "
        "assemblés, ou modifiés avec deux logiciels) : enregistrez le fichier entier au format "
        "« CSV UTF-8 »"
    )


def read_csv(path: Path) -> list[Sheet]:
    """The first rows at once; the others as the engine asks for them (``Sheet.tail``)."""
    data = path.read_bytes()
    encoding = _encoding(data)
    if b"\x00" in data:
        raise ReadError("le fichier .csv contient des caractères binaires : ce n'est pas un texte")
    start = data[:65536].decode(encoding, errors="ignore")
    lines = [line for line in start.splitlines()[:12] if line.strip()]
    sample = "\n".join(lines)
    if not sample.count(";") and not sample.count(",") and sample.count("\t"):
        raise ReadError(
            "séparateur tabulation non accepté : le séparateur doit être « ; » ou « , » "
            "(enregistrez au format « CSV (séparateur : point-virgule) »)"
        )
    delimiter = ";" if sample.count(";") >= sample.count(",") else ","
    if lines and (declared := re.fullmatch(r"\ufeff?sep=([;,])\W*", lines[0].strip())):
        delimiter = declared[1]  # Excel's « sep=; » first line says which separator it is
    if data.count(b"\n") > MAX_ROWS:  # maybe too many rows: count them before any work
        for _ in _csv_rows(data, encoding, delimiter):
            pass
    rows = _csv_rows(data, encoding, delimiter)
    head: list[list[object]] = []
    for cells in rows:
        head.append(cells)
        if len(head) == CSV_HEAD_ROWS:
            break
    arrow = partial(_csv_arrow, data, encoding, delimiter) if b'"' not in data else None
    return [Sheet(name=path.name, rows=head, tail=rows, arrow_rows=arrow, delimiter=delimiter)]


CSV_HEAD_ROWS = 64  # rows read at once (header search); the others are read as validated


def _csv_rows(data: bytes, encoding: str, delimiter: str) -> Iterator[list[object]]:
    stream = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="")
    reader = csv.reader(stream, delimiter=delimiter)
    count = 0
    try:
        for row in reader:
            count += 1
            if count > MAX_ROWS:
                raise ReadError(
                    f"fichier trop grand : plus de {_thousands(MAX_ROWS)} lignes (limite "
                    f"{_thousands(MAX_ROWS)})"
                )
            yield row  # an empty cell is "" (the engine treats blank text as empty)
    except csv.Error as exc:
        raise ReadError(
            f"fichier .csv illisible ligne {reader.line_num} ({exc}) : guillemet non fermé ?"
        ) from exc


def _csv_arrow(data: bytes, encoding: str, delimiter: str, start: int):
    """Rows ``start``.. of a .csv as an Arrow table of text columns ``f0``, ``f1``..., read by
    Arrow's multithreaded parser, or None when ``csv.reader`` might read the file otherwise.

    Without a quote character (the caller checks), ``csv.reader`` splits each line on the
    delimiter; so does Arrow, as long as every line has the same number of fields (Arrow
    refuses the file otherwise: None). A blank line is a row for both (no cell for
    ``csv.reader``, empty cells for Arrow: an empty row either way, counted in the row
    numbers). The answer is then the same cells, the same rows, in the same order."""
    import pyarrow as pa
    import pyarrow.csv as arrow_csv

    body = data.decode("cp1252").encode("utf-8") if encoding == "cp1252" else data
    begin = 3 if encoding == "utf-8-sig" else 0
    end = len(body)
    while end > begin and body[end - 1] in b"\r\n":  # trailing line breaks: no row for either
        end -= 1
    if end == begin:
        return None
    line = begin  # the first row read, to count its fields
    for _ in range(start):
        line = body.find(b"\n", line, end) + 1
        if line == 0:
            return None
    stop = body.find(b"\n", line, end)
    fields = body.count(delimiter.encode(), line, end if stop < 0 else stop) + 1
    names = [f"f{i}" for i in range(fields)]
    try:
        return arrow_csv.read_csv(
            pa.py_buffer(body).slice(begin, end - begin),
            read_options=arrow_csv.ReadOptions(
                skip_rows=start, column_names=names, block_size=8 << 20
            ),
            parse_options=arrow_csv.ParseOptions(
                delimiter=delimiter,
                quote_char=False,
                double_quote=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
            ),
            convert_options=arrow_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None  # a line with another number of fields: csv.reader's rows are ragged


_SAVE_AS_XLSX = (
    "ouvrez-le et enregistrez-le au format « Classeur Excel (.xlsx) » (Fichier › Enregistrer "
    "sous › Type)"
)
_SAVE_AS_CSV = "enregistrez-le au format « CSV (séparateur : point-virgule) » (extension .csv)"
# spreadsheet and table formats refused with a report (the kit accepts .xlsx and .csv only):
# what each one is and how to save it as the kit asks; a file of these suffixes named after a
# source is a delivery (``pipeline.DELIVERY_SUFFIXES``): it gets its report, never skipped
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
    calamine parse begun ahead of time (``ingest.readahead``) is used when there is one."""
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
        from dagster_project.ingest.readahead import READ_AHEAD

        return read_xlsx(path, READ_AHEAD.take(path))
    if suffix == ".csv":
        return read_csv(path)
    raise ReadError(f"format {suffix or '(sans extension)'} non accepté (attendu .xlsx ou .csv)")


__all__ = ["CellError", "ReadError", "Sheet", "cell_ref", "column_letters", "read_file"]
