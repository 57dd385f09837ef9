"""Reading a delivered ``.csv``: in UTF-8 or Windows-1252, with ``;`` or ``,`` as separator.

The encoding is checked on the whole file (a file mixing both is refused, never half
mis-read); the first rows are read at once (the header search), the others as the
validation asks for them (``Sheet.tail``): a large ``.csv`` is never held whole as Python
lists. A regular ``.csv`` (no quote character, the same number of fields on every line) is
also offered as Arrow text columns read by Arrow's multithreaded parser (``_csv_arrow``),
which give the same cells as ``csv.reader``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from dagster_project.ingest.readers.sheet import MAX_ROWS, ReadError, Sheet, _thousands


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
