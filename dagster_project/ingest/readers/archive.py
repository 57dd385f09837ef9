"""Step 1 of reading a workbook: its zip container, checked without trusting it.

``check_archive`` opens the container after checking its directory: number of parts,
encryption, compression method, declared sizes (total and compression ratio per part) --
nothing is decompressed yet. A file that is not an ``.xlsx`` at all (a PDF, an ``.xls``, an
``.xlsm``, a page of HTML, a ``.csv``...) is named, so that the report says how to save it.
``_inflate`` decompresses one part from its raw bytes, at most ``_CHUNK`` bytes at a time and
without trusting its declared size: step 2 (``readers.scan``) reads every part through it.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

from dagster_project.ingest.readers.sheet import (
    MAX_COMPRESSION_RATIO,
    MAX_PARTS,
    MAX_UNCOMPRESSED_BYTES,
    RATIO_CHECK_FROM_BYTES,
    ReadError,
    _mib,
)

_CHUNK = 1024 * 1024  # bytes decompressed at a time

_NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
}

_LOCAL_HEADER = struct.Struct("<4s5HL2L2H")


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
# one part, inflated


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
