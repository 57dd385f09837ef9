"""Which files of ``sources/`` are deliveries, of which source, and which are refused unread.

A delivery is a file ``sources/<year>/<department>/<source_id>*.xlsx|csv`` (a file of another
spreadsheet format named after a source is one too, refused with a report). Everything that
decides what a delivery is before it is read lives here, apart from judging it (``pipeline``):
the sensor, ``kpi status``, the portal and the campaign reports list deliveries through
``discover`` and know them by ``delivery_sha256``/``delivery_id_of`` without ingesting them.
Nothing comes in from outside ``sources/``: links, files of a linked folder and names that
are not text are listed, then refused without being read (``refusal_of``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from dagster_project.contracts.model import Contract, source_of
from dagster_project.ingest.readers.file import OTHER_FORMATS
from dagster_project.lib.hashing import sha256_file

REPORT_SUFFIX = ".rejet.csv"
NOTICE_SUFFIX = ".a_confirmer.csv"  # atypical values of an accepted file (quality.notices)
# .xlsx and .csv are read; a file of another format named after a source (.xlsm, .xls,
# .ods...) is a delivery too, refused with a report saying how to save it
# (readers.file.OTHER_FORMATS)
DELIVERY_SUFFIXES = (".xlsx", ".csv", *OTHER_FORMATS)
_YEAR_DIR = re.compile(r"^\d{4}$")


@dataclass(frozen=True)
class DeliveryFile:
    path: Path
    campaign_year: int
    department: str
    source_id: str

    @property
    def received_at(self) -> dt.datetime:
        # (the file itself, never what a link points to: a link is refused, see ``refusal_of``)
        return dt.datetime.fromtimestamp(self.path.lstat().st_mtime).replace(microsecond=0)


def is_delivery_file(path: Path) -> bool:
    """A file deposited as a delivery (by its name). A link with such a name is one too, to
    be refused with a report (``refusal_of``), even when it leads nowhere."""
    name = path.name
    return (
        (path.is_file() or path.is_symlink())
        and path.suffix.lower() in DELIVERY_SUFFIXES
        and not name.endswith((REPORT_SUFFIX, NOTICE_SUFFIX))
        and not name.startswith(("~$", "."))
    )


def printable(text: str) -> str:
    """A name as valid text: the bytes of a file name that are not UTF-8 (which Python keeps
    as surrogate escapes, and neither DuckDB, Arrow nor a UTF-8 report can hold) shown as
    « \ufffd »; a valid name is returned as it is."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def linked_folder(path: Path) -> Path | None:
    """The folder of ``sources/`` holding the file (its department's, its year's) that is a
    link to another folder, if any."""
    for folder in (path.parent, path.parent.parent):
        if folder.is_symlink():
            return folder
    return None


def refusal_of(path: Path) -> str | None:
    """Why a file deposited in a delivery folder is refused without being read (French), or
    None. Nothing comes in from outside ``sources/``: a link (symbolic, or hard: the same file
    under another name, possibly elsewhere) and a file reached through a linked folder are
    not deliveries (the collection kit); neither is a name that is not valid text (UTF-8),
    which no report, log or e-mail could name. ``discover`` lists them like any delivery, so
    ``Ingestor.evaluate`` records their rejection and ``kpi status`` and the sensor see them."""
    folder = linked_folder(path)
    if folder is not None:
        return (
            f"le dossier « {printable(folder.name)} » est un lien vers un autre dossier : les "
            "fichiers qu'il contient ne sont pas lus. Déposez le fichier dans le dossier de la "
            "campagne lui-même (sources/<année>/<direction>/)"
        )
    if path.is_symlink():
        return (
            "ce fichier est un lien (raccourci) vers un autre fichier, pas une livraison : il "
            "n'est pas lu. Déposez le fichier lui-même (une copie) dans le dossier"
        )
    for name, what in ((path.name, "fichier"), (path.parent.name, "dossier")):
        if printable(name) != name:
            return (
                f"nom de {what} illisible : des caractères ne sont pas du texte UTF-8 (montrés "
                "ici « \ufffd »). Renommez-le avec des lettres, des chiffres, des tirets ou des "
                "soulignés (par exemple eau_volumes_2025.xlsx), puis déposez le fichier à nouveau"
            )
    if path.lstat().st_nlink > 1:
        return (
            "ce fichier est un lien physique (le même fichier enregistré sous plusieurs noms ou "
            "dans plusieurs dossiers), pas une livraison : il n'est pas lu. Déposez une copie "
            "indépendante du fichier"
        )
    return None


def discover(sources_dir: Path, contracts: dict[str, Contract]) -> list[DeliveryFile]:
    """Every delivery file under sources/<year>/<department>/, sorted as received. Links,
    files of a linked folder and names that are not valid text are listed too (their
    department made ``printable``): ``refusal_of`` says why they are refused."""
    found: list[DeliveryFile] = []
    source_ids = list(contracts)
    if not sources_dir.is_dir():
        return found
    for year_dir in sorted(
        p for p in sources_dir.iterdir() if p.is_dir() and _YEAR_DIR.match(p.name)
    ):
        for department_dir in sorted(p for p in year_dir.iterdir() if p.is_dir()):
            for path in sorted(department_dir.iterdir()):
                if not is_delivery_file(path):
                    continue
                source_id = source_of(path.name, source_ids)
                if source_id is None:
                    continue
                department = printable(department_dir.name)
                found.append(DeliveryFile(path, int(year_dir.name), department, source_id))
    found.sort(key=lambda d: (d.path.lstat().st_mtime, d.path.name))
    return found


def ingestion_order(contracts: dict[str, Contract], files: list[DeliveryFile]) -> list[str]:
    """The order in which one process ingests the sources: each after the sources it
    references, and among those free to go, the one with the fewest bytes of workbooks first.
    The largest workbooks are read ahead first (``ingest.readers.readahead``): ingested last, their
    reading overlaps the other sources' validation and writing instead of being waited for
    (SF10: 0.5 s of a 5.5 s ingestion, bench/README.md). ``kpi run`` gives Dagster this order
    as step priorities; the benchmark follows it."""
    size: dict[str, int] = dict.fromkeys(contracts, 0)
    for delivery in files:
        if delivery.path.suffix.lower() == ".xlsx" and delivery.source_id in size:
            size[delivery.source_id] += delivery.path.lstat().st_size
    upstream = {
        source_id: contract.referenced_sources & set(contracts)
        for source_id, contract in contracts.items()
    }
    order: list[str] = []
    while len(order) < len(contracts):
        waiting = [s for s in contracts if s not in order]
        ready = [s for s in waiting if upstream[s] <= set(order)] or waiting  # (no cycle)
        order.append(min(ready, key=lambda s: (size[s], s)))
    return order


def unrecognised_files(sources_dir: Path, contracts: dict[str, Contract]) -> list[Path]:
    """Files in delivery folders that match no contract (shown by `kpi status`)."""
    out = []
    if not sources_dir.is_dir():
        return out
    for path in sorted(sources_dir.glob("[0-9][0-9][0-9][0-9]/*/*")):
        if is_delivery_file(path) and source_of(path.name, list(contracts)) is None:
            out.append(path)
    return out


def refused_sha256(path: Path, refusal: str) -> str:
    """What stands for the SHA-256 of a refused file, whose content is never read: a hash of
    what it is (name, link target, size, modification time, why it is refused), so the same
    refused file is one delivery, and a refused copy of an accepted file never takes its
    delivery id."""
    stat = path.lstat()
    target = os.readlink(path) if path.is_symlink() else ""
    digest = hashlib.sha256(b"refused\0")
    for part in (refusal, path.name, str(target), str(stat.st_size), str(stat.st_mtime_ns)):
        digest.update(os.fsencode(part) + b"\0")
    return digest.hexdigest()


def delivery_sha256(path: Path) -> str:
    """The SHA-256 a delivery is known by: its content's, or for a refused file
    (``refusal_of``) a hash of what it is, without reading it."""
    refusal = refusal_of(path)
    return (
        sha256_file(path, follow_links=False) if refusal is None else refused_sha256(path, refusal)
    )


def delivery_id_of(delivery: DeliveryFile, sha: str) -> str:
    return f"{delivery.source_id}-{delivery.campaign_year}-{delivery.department}-{sha[:12]}"
