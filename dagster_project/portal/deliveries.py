"""An upload, from the bytes received to the delivery in force.

1. The bytes are written (never under the name the browser gave: only its suffix is kept,
   from a fixed list) into a folder of their own, ``.portal/depots/<id>/<year>/<department>/``,
   and judged there by the ingestion engine (``verdict.judge_file``).
2. Accepted: copied into ``sources/<year>/<department>/`` atomically (a hidden temporary
   file of that folder, written, flushed, then renamed: the pipeline and the sensor never
   see half a file), under a name the kit accepts: ``<source_id>_<year>_portail_<time>.xlsx``
   (the newest accepted file is the delivery in force); the copy in ``depots`` is removed,
   and the pipeline is asked to run for that source (``runner``).
3. Rejected: the file and its report ``<file>.rejet.csv`` stay in ``.portal/depots/<id>/``
   as evidence; nothing enters ``sources/``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dagster_project.contracts.reference import unit_label
from dagster_project.ingest.discovery import printable
from dagster_project.portal.verdict import Verdict, judge_file

ACCEPTED_SUFFIXES = (".xlsx", ".csv")
# formats a department may try, refused by the engine with a report saying how to save them
REPORTED_SUFFIXES = (".xls", ".xlsm", ".xlsb", ".ods")


class UploadRefused(ValueError):
    """Refused before judging (not a workbook, empty, too large); French message."""

    def __init__(self, message: str, status: int = 415):
        super().__init__(message)
        self.status = status


def new_upload_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(4)


def suffix_of(original_name: str) -> str:
    """The suffix of the name the browser sent, lower case, when it is one the kit knows;
    the name itself is never used as a path."""
    name = original_name.replace("\\", "/").rsplit("/", 1)[-1]
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in ACCEPTED_SUFFIXES + REPORTED_SUFFIXES:
        raise UploadRefused(
            "ce fichier n'est pas un classeur : déposez le classeur .xlsx (ou un fichier .csv) "
            "du modèle de la source",
            status=415,
        )
    return suffix


def stored_name(source_id: str, year: int, suffix: str, when: dt.datetime) -> str:
    return f"{source_id}_{year}_portail_{when:%Y%m%d-%H%M%S-%f}{suffix}"


def write_atomically(data_path: Path, destination: Path) -> None:
    """Copy ``data_path`` to ``destination`` through a hidden temporary file of the same
    folder (names starting with « . » are never deliveries), flushed, then renamed."""
    folder = destination.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{destination.name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb") as out, open(data_path, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, destination)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass
class UploadResult:
    upload_id: str
    verdict: Verdict
    stored_path: Path  # in sources/ (accepted) or in .portal/depots/ (rejected)
    original_name: str
    size: int
    received_at: dt.datetime

    @property
    def accepted(self) -> bool:
        return self.verdict.accepted


def receive(
    data_path: Path,
    original_name: str,
    *,
    year: int,
    department: str,
    source_id: str,
    sources_dir: Path,
    state: Path,
    published: Path,
    today: dt.date,
) -> UploadResult:
    """Judge the received bytes (``data_path``, a temporary file) and put them where they
    belong. Raises ``UploadRefused`` before judging anything that is not a workbook."""
    suffix = suffix_of(original_name)
    size = data_path.stat().st_size
    if size == 0:
        raise UploadRefused("le fichier est vide (0 octet)", status=400)
    upload_id = new_upload_id()
    received = dt.datetime.now()
    name = stored_name(source_id, year, suffix, received)
    folder = state / "depots" / upload_id / str(year) / department
    folder.mkdir(parents=True)
    staged = folder / name
    write_atomically(data_path, staged)
    verdict = judge_file(staged, year, department, source_id, published, today=today)
    if verdict.accepted:
        destination = Path(sources_dir) / str(year) / department / name
        write_atomically(staged, destination)
        shutil.rmtree(state / "depots" / upload_id, ignore_errors=True)
        stored = destination
    else:
        stored = staged
    return UploadResult(
        upload_id=upload_id,
        verdict=verdict,
        stored_path=stored,
        original_name=printable(original_name)[-200:],
        size=size,
        received_at=received.replace(microsecond=0),
    )


# --- following an accepted upload to the published copy ------------------------------------


def publication_state(published: Path, delivery_id: str) -> dict:
    """Where a delivery stands in the published copy: not there yet; recorded (accepted or
    rejected by the run, in force or not); how many published values it feeds."""
    state = {"published": False, "outcome": None, "in_force": False, "values": 0}
    if not published.exists():
        return state
    try:
        con = duckdb.connect(str(published.resolve()), read_only=True)
    except duckdb.Error:
        return state
    try:
        row = con.execute(
            "select outcome, in_force, problem_count from ingest.deliveries where delivery_id = ?",
            [delivery_id],
        ).fetchone()
        if row is None:
            return state
        state.update(published=True, outcome=row[0], in_force=bool(row[1]), problems=row[2])
        if row[0] == "accepted":
            state["values"] = con.execute(
                "select count(*) from marts.fct_indicator_values "
                "where list_contains(string_split(delivery_ids, ','), ?)",
                [delivery_id],
            ).fetchone()[0]
            state["examples"] = [
                {
                    "indicator_id": r[0],
                    "code_insee": r[1],
                    "value": r[2],
                    "unit": r[3],
                    "unit_label": unit_label(r[3]),  # what a person reads (« € », « km »)
                }
                for r in con.execute(
                    "select indicator_id, code_insee, value, unit from marts.fct_indicator_values "
                    "where list_contains(string_split(delivery_ids, ','), ?) "
                    "order by indicator_id, code_insee nulls first limit 5",
                    [delivery_id],
                ).fetchall()
            ]
    except duckdb.Error:
        pass
    finally:
        con.close()
    return state
