"""A blank campaign workbook assembled and saved, for every department that delivers.

``write_templates`` writes, for each department, one ``.xlsx`` per source it delivers:
``<out_dir>/<department>/<source_id>_<year>.xlsx``. The four departments of the detailed
sources (the contracts' ``department``) get those sources; every department owning
``declared`` indicators of the catalogue gets an ``indicateurs_declares`` workbook
pre-filled with its indicator ids (``planned_templates``). ``build_workbook`` puts the
sheets of one (department, source) together: ``Notice``, ``Données``, ``Indicateurs``
(declared figures only), ``Listes`` (hidden).

Output is deterministic: the same arguments give byte-identical files (fixed document
properties and zip timestamps).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter

from dagster_project.campaign.templates.layout import (
    DATA_SHEET,
    INDICATORS_SHEET,
    LISTS_SHEET,
    NOTICE_SHEET,
    STEERING_DIRECTION,
)
from dagster_project.campaign.templates.notice import write_notice
from dagster_project.campaign.templates.sheets import (
    Lists,
    indicator_comment,
    write_data_sheet,
    write_indicators_sheet,
)
from dagster_project.campaign.templates.wording import examples_for_year
from dagster_project.contracts.model import ANY_DEPARTMENT, Contract
from dagster_project.contracts.reference import (
    DECLARED_SOURCE,
    Indicator,
    direction_of,
    load_communes,
    load_declared_indicators,
)
from dagster_project.settings import CATALOGUE_CSV, COMMUNES_CSV

# (department, source_id) -> (due date, contact e-mail or None); from sources/<year>/campagne.yml
Deadlines = Mapping[tuple[str, str], tuple[dt.date | str | None, str | None]]


class _FixedTimeZip(zipfile.ZipFile):
    """Zip archive whose entries all carry the same timestamp (reproducible files)."""

    date_time = (2000, 1, 1, 0, 0, 0)

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        if isinstance(zinfo_or_arcname, str):
            info = zipfile.ZipInfo(zinfo_or_arcname, date_time=self.date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zinfo_or_arcname = info
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        # openpyxl writes worksheets from temporary files: keep their bytes, not their mtime
        self.writestr(str(arcname or filename), Path(filename).read_bytes())


def _save(wb: Workbook, path: Path, stamp: dt.datetime) -> None:
    """Save atomically, with fixed document properties and zip timestamps."""
    wb.properties.created = stamp
    wb.properties.modified = stamp
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".xlsx", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        archive = _FixedTimeZip(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
        ExcelWriter(wb, archive).save()  # closes the archive; keeps our `modified`
        tmp.chmod(0o644)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def build_workbook(
    contract: Contract,
    *,
    year: int,
    department: str,
    direction: str,
    communes: list[tuple[str, str]],
    indicators: list[Indicator] | None = None,
    deadline: tuple[Any, str | None] | None = None,
) -> Workbook:
    """The blank workbook of one (department, source) for the campaign ``year``."""
    file_name = f"{contract.source_id}_{year}.xlsx"
    indicators = indicators or []
    declared = bool(contract.rules_of("declared_indicator"))
    wb = Workbook()
    notice = wb.active
    notice.title = NOTICE_SHEET
    data = wb.create_sheet(DATA_SHEET)
    indicator_sheet = wb.create_sheet(INDICATORS_SHEET) if declared else None
    lists_ws = wb.create_sheet(LISTS_SHEET)
    lists_ws.sheet_state = "hidden"
    lists = Lists(lists_ws, communes)

    prefilled: list[dict[str, Any]] = []
    comments: dict[str, str] = {}
    id_column = None
    if declared:
        id_column = contract.rules_of("declared_indicator")[0]["column"]
        has_source = any(c.name == "source" for c in contract.columns)
        for ind in indicators:
            record: dict[str, Any] = {id_column: ind.indicator_id}
            if has_source:
                record["source"] = direction
            prefilled.append(record)
            comments[ind.indicator_id] = indicator_comment(ind)

    write_notice(
        notice,
        contract,
        year=year,
        department=department,
        direction=direction,
        file_name=file_name,
        deadline=deadline,
        n_indicators=len(indicators),
    )
    write_data_sheet(
        data,
        contract,
        year=year,
        lists=lists,
        prefilled=prefilled,
        comments=comments,
        comment_column=id_column,
    )
    if indicator_sheet is not None:
        write_indicators_sheet(indicator_sheet, indicators)
    wb.active = 0
    wb.properties.creator = STEERING_DIRECTION
    wb.properties.lastModifiedBy = STEERING_DIRECTION
    wb.properties.title = f"{examples_for_year(contract.title_fr, year)} — campagne {year}"
    wb.properties.subject = f"{contract.source_id} — {direction}"
    return wb


def planned_templates(
    contracts: Mapping[str, Contract], declared: Mapping[str, list[Indicator]]
) -> dict[str, list[str]]:
    """Department -> source ids whose template it receives."""
    plan: dict[str, list[str]] = defaultdict(list)
    for source_id, contract in sorted(contracts.items()):
        if contract.department != ANY_DEPARTMENT:
            plan[contract.department].append(source_id)
    if DECLARED_SOURCE in contracts:
        for department, indicators in declared.items():
            if indicators:
                plan[department].append(DECLARED_SOURCE)
    return {d: plan[d] for d in sorted(plan)}


def write_templates(
    year: int,
    out_dir: Path,
    contracts: Mapping[str, Contract] | None = None,
    departments: Iterable[str] | None = None,
    deadlines: Deadlines | None = None,
    *,
    catalogue_csv: Path = CATALOGUE_CSV,
    communes_csv: Path = COMMUNES_CSV,
) -> list[Path]:
    """Write the blank workbooks of the campaign ``year``; returns their paths (sorted).

    ``out_dir/<department>/<source_id>_<year>.xlsx`` for every department (or only those of
    ``departments``); existing files are replaced. ``deadlines`` maps (department, source_id)
    to (due date, contact e-mail or None), shown in the Notice.
    """
    if contracts is None:
        from dagster_project.contracts.model import default_contracts

        contracts = default_contracts()
    declared = load_declared_indicators(catalogue_csv)
    plan = planned_templates(contracts, declared)
    if departments is not None:
        wanted = list(dict.fromkeys(departments))
        unknown = [d for d in wanted if d not in plan]
        if unknown:
            raise ValueError(
                "direction(s) sans modèle à produire : "
                + ", ".join(unknown)
                + " (connues : "
                + ", ".join(plan)
                + ")"
            )
        plan = {d: plan[d] for d in sorted(wanted)}
    communes = load_communes(communes_csv)
    stamp = dt.datetime(year, 1, 1)
    written: list[Path] = []
    for department, source_ids in plan.items():
        direction = direction_of(department, contracts)
        for source_id in source_ids:
            contract = contracts[source_id]
            wb = build_workbook(
                contract,
                year=year,
                department=department,
                direction=direction,
                communes=communes,
                indicators=declared.get(department, []) if source_id == DECLARED_SOURCE else None,
                deadline=(deadlines or {}).get((department, source_id)),
            )
            path = Path(out_dir) / department / f"{source_id}_{year}.xlsx"
            _save(wb, path, stamp)
            written.append(path)
    return sorted(written)


__all__ = ["build_workbook", "planned_templates", "write_templates"]
