"""What a rejected delivery tells its department: the French report ``<file>.rejet.csv``.

The report is written beside the file, readable in Excel, one line per kind of problem
(``report.group_problems``), never through a link nor outside the file's folder, and a cell
that Excel would take for a formula is neutralised. ``unreadable_reason`` is the one problem
of a file whose reading failed on an internal error, without the server's paths.
"""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
from pathlib import Path

from dagster_project.ingest.discovery import REPORT_SUFFIX, DeliveryFile, printable
from dagster_project.ingest.report import REPORT_HEADER, group_problems
from dagster_project.ingest.validation.results import ValidationResult
from dagster_project.lib.csv_safety import neutralise_row


def report_path_of(path: Path) -> Path:
    """``<file>.rejet.csv`` beside the file (its name made valid text: ``printable``)."""
    return path.with_name(printable(path.name) + REPORT_SUFFIX)


def write_report(path: Path, delivery: DeliveryFile, result: ValidationResult) -> Path:
    """French rejection report next to the file, readable in Excel (UTF-8 with BOM, `;`):
    one line per kind of problem, with its rows and how many (``report.group_problems``);
    the file named from the sources folder (``2025/water/x.xlsx``), never a server path.

    Nothing is written outside the file's folder nor through a link: the report is written
    into a new temporary file of that folder (created exclusively, never through a link),
    then renamed over ``<file>.rejet.csv`` (``report_path_of``): a link planted at that name
    is replaced, never followed. A text cell that Excel would take for a formula (« =… »,
    « +… », « -… », « @… ») is written with a « ' » before it (``csv_safety``)."""
    report = report_path_of(path)
    name = str(path.relative_to(path.parents[2])) if len(path.parents) > 2 else path.name
    name = printable(name)
    tmp = report.with_name(f".{report.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o666)  # (0o666: the umask decides, as for any file written)
    handle = os.fdopen(fd, "w", encoding="utf-8-sig", errors="replace", newline="")
    try:
        with handle:
            writer = csv.writer(handle, delimiter=";")
            writer.writerow(REPORT_HEADER)
            for group in group_problems(result.problems):
                writer.writerow(neutralise_row(group.report_row(name)))
            if result.omitted_problems:
                writer.writerow(
                    ["", "", "", "", "", f"… et {result.omitted_problems} autres problèmes", ""]
                )
        os.replace(tmp, report)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return report


def unreadable_reason(exc: BaseException, path: Path) -> str:
    """The French problem of a delivery whose reading or judging failed on an internal error:
    what the error was, in one line, without the server's paths."""
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    for where in (str(path), str(path.parent)):
        detail = detail.replace(where, path.name if where == str(path) else "")
    detail = " ".join(f"{type(exc).__name__} : {detail}".split()).rstrip(" :")
    if len(detail) > 300:
        detail = detail[:299] + "…"
    return printable(
        f"le fichier n'a pas pu être lu jusqu'au bout (erreur interne : {detail}) ; "
        "transmettez-le à la Direction du Pilotage Stratégique"
    )
