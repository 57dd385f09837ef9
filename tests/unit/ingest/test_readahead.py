"""Reading ahead (ingest/readers/readahead.py): calamine parses the workbooks still to ingest
in the background; what is read never depends on it."""

from __future__ import annotations

import datetime as dt
import io
import os
import struct
import time
import zipfile

import duckdb
import pytest

from dagster_project.ingest.discovery import discover
from dagster_project.ingest.pipeline import Ingestor
from dagster_project.ingest.readers.file import read_file
from dagster_project.ingest.readers.readahead import READ_AHEAD, ReadAhead
from dagster_project.ingest.readers.sheet import ReadError
from dagster_project.ingest.readers.xlsx_file import CalamineParse, read_xlsx

ACTIVITY = ["code_insee", "mois", "controles_spanc_vente", "branchements_eu_crees",
            "demandes_eaux_pluviales"]  # fmt: skip


def _rows(n: int, start: int = 0) -> list[list[object]]:
    return [["62119", f"2025-{1 + k % 12:02d}", k, 0, 1] for k in range(start, start + n)]


def _sheets(sheets):
    return [(s.name, s.rows, s.hidden, s.errors, s.merged, s.hidden_rows) for s in sheets]


def _take_once_begun(ahead: ReadAhead, path):
    """``take`` once the worker has begun ``path`` (taken before, a file not begun yet is
    left to the caller: ``take`` returns None, by design)."""
    deadline = time.monotonic() + 30
    while True:
        with ahead._cond:  # noqa: SLF001
            if os.path.abspath(path) in ahead._started:  # noqa: SLF001
                break
        assert time.monotonic() < deadline, f"{path.name} was never begun"
        time.sleep(0.01)
    return ahead.take(path)


def test_parse_read_ahead_gives_the_same_sheets(workbook):
    paths = [
        workbook({"Notice": [["mode d'emploi"]], "Activité": [ACTIVITY, *_rows(40 * (k + 1))]})
        for k in range(3)
    ]
    expected = [_sheets(read_xlsx(p)) for p in paths]
    ahead = ReadAhead()
    ahead.schedule(paths)
    got = {}
    for path in reversed(paths):  # largest first, the order the worker begins them
        read = _take_once_begun(ahead, path)
        assert read is not None and read.done.wait(30) and read.scans is not None
        got[path] = _sheets(read_xlsx(path, read))
    assert [got[p] for p in paths] == expected


def test_largest_first_and_at_most_one_finished_parse_waiting(workbook):
    small = workbook({"Activité": [ACTIVITY, *_rows(5)]})
    large = workbook({"Activité": [ACTIVITY, *_rows(3000)]})
    middle = workbook({"Activité": [ACTIVITY, *_rows(500)]})
    ahead = ReadAhead(held=1)
    ahead.schedule([small, large, middle])
    first = _take_once_begun(ahead, large)
    assert first is not None and first.done.wait(30)
    # the worker then parses the middle one and waits: the small one is not begun
    ahead._worker.join(timeout=0.5)  # noqa: SLF001 (still alive: waiting for a take)
    with ahead._cond:  # noqa: SLF001
        started = {os.path.basename(name) for name in ahead._started}  # noqa: SLF001
    assert started <= {middle.name}
    assert _take_once_begun(ahead, middle) is not None
    parse = _take_once_begun(ahead, small)
    assert parse is not None and parse.done.wait(30) and parse.error is None
    assert ahead.take(small) is None  # a parse is taken once


def test_a_file_changed_since_it_was_scheduled_is_read_again(workbook, tmp_path):
    path = workbook({"Activité": [ACTIVITY, *_rows(3)]}, name="eau.xlsx")
    ahead = ReadAhead()
    ahead.schedule([path])
    parse = _take_once_begun(ahead, path)
    assert parse is not None and parse.done.wait(30)
    ahead.schedule([path])
    deadline = time.monotonic() + 30
    while not ahead._started:  # noqa: SLF001 (wait for the worker to begin)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    workbook({"Activité": [ACTIVITY, *_rows(7)]}, name="eau.xlsx")  # same path, new content
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert ahead.take(path) is None
    assert len(read_file(path)[0].rows) == 8


def test_a_file_refused_by_the_archive_checks_is_reported_as_without_read_ahead(tmp_path):
    path = tmp_path / "eau_volumes_2025.xlsx"
    path.write_text("udi;mois\n", encoding="utf-8")
    with pytest.raises(ReadError) as without:
        read_file(path)
    READ_AHEAD.schedule([path])
    with pytest.raises(ReadError) as with_ahead:
        read_file(path)
    assert with_ahead.value.reason == without.value.reason


def test_a_forged_archive_read_ahead_never_reaches_calamine(tmp_path, workbook, monkeypatch):
    """A zip bomb whose headers declare a small size: the read ahead runs the archive's
    checks first, as read_xlsx does, and calamine never sees the file."""
    original = workbook({"Activité": [ACTIVITY, *_rows(3)]})
    with zipfile.ZipFile(original) as archive:
        parts = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    sheet = next(name for name in parts if name.startswith("xl/worksheets/sheet"))
    head, _, tail = parts[sheet].partition(b"</sheetData>")
    row = b'<row r="9"><c r="A9" t="inlineStr"><is><t>62119</t></is></c></row>'
    parts[sheet] = head + row * 200_000 + b"</sheetData>" + tail  # ~14 MB inflated
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    data = bytearray(out.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(sheet)
    struct.pack_into("<L", data, info.header_offset + 22, 4096)  # local header: declared size
    at = data.find(b"PK\x01\x02")
    while at >= 0:  # central directory
        length = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + length]) == sheet.encode():
            struct.pack_into("<L", data, at + 24, 4096)
        at = data.find(b"PK\x01\x02", at + 4)
    forged = tmp_path / "forged.xlsx"
    forged.write_bytes(bytes(data))
    parsed = []
    monkeypatch.setattr(CalamineParse, "parse", lambda self, scans: parsed.append(self.path))
    ahead = ReadAhead()
    ahead.schedule([forged])
    read = _take_once_begun(ahead, forged)
    assert read is not None and read.done.wait(30) and read.scans is None
    with pytest.raises(ReadError, match="bombe zip"):  # the scan's own verdict
        read_xlsx(forged, read)
    assert parsed == []


def test_ingestor_reads_ahead_only_what_is_not_recorded(workbook, tmp_path, contracts):
    sources = tmp_path / "sources"
    folder = sources / "2025" / "water"
    folder.mkdir(parents=True)
    for name in ("assainissement_activite_2025.xlsx", "eau_volumes_2025.xlsx"):
        path = workbook({"Activité": [ACTIVITY, *_rows(4)]}, name=name)
        path.rename(folder / name)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        ingestor = Ingestor(con, contracts, today=dt.date(2026, 1, 15))
        files = discover(sources, contracts)
        assert {p.name for p in ingestor.read_ahead(files)} == {
            "assainissement_activite_2025.xlsx",
            "eau_volumes_2025.xlsx",
        }
        summary = ingestor.ingest_source("assainissement_activite", files)
        assert summary.accepted
        assert [p.name for p in ingestor.read_ahead(files)] == ["eau_volumes_2025.xlsx"]
    finally:
        con.close()
