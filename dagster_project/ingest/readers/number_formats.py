"""The number formats of a workbook that show more than the number a cell holds.

A cell holding 0.5 may show « 50 % », « 0,5 kg », « 0 » (divided by 1 000) or nothing at all:
what a person reads is then not what is read. The styles part is read once, as it is
inflated (``_styles_numbers``), and each cell style whose number format shows a percentage,
a unit, a value divided by 1 000 or hides the number is kept as a ``NumberFormat``, by style
index; the streaming pass (``readers.scan``) then records the numeric cells shown through
one of them.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

from dagster_project.ingest.readers.archive import _NS, _inflate
from dagster_project.ingest.readers.sheet import (
    MAX_UNCOMPRESSED_BYTES,
    NumberFormat,
    ReadError,
    _thousands,
)

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
