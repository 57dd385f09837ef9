"""Reading ahead: calamine parses the workbooks still to be ingested while others are.

Calamine's parse is most of the time a workbook takes to read (SF10 water-quality register:
3.6 s of 5 s) and it runs without Python's lock, so it can use the second core while the
ingestion validates and writes other deliveries. ``Ingestor.ingest_source`` hands the
workbooks not yet recorded in the warehouse to ``READ_AHEAD`` (one process-wide instance:
each Dagster ingestion step builds its own ``Ingestor``); ``readers.file.read_file`` takes a
workbook's parse when it is there.

One worker thread reads the largest workbook first (the one whose parse would otherwise
wait longest) and holds at most one finished read nobody has taken yet: at most two
workbooks' cells in calamine's memory besides the one being validated. A read ahead is the
same as ``readers.xlsx_file.read_xlsx``'s own: the archive's checks (``check_archive``, then
the streaming ``scan_archive``), and only when they pass, calamine's parse; a file refused
by the checks is read again when its turn comes, to say why; a file modified since it was
scheduled is read again.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from dagster_project.ingest.readers.xlsx_file import CalamineParse


def _key(path: Path) -> tuple[str, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    # an absolute path without resolving links (``resolve`` stats every folder of the path,
    # for every file at every step: 0.13 s of SF10's ingestion); a file reached by two paths
    # is merely read twice
    return (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


class ReadAhead:
    def __init__(self, held: int = 1):
        self.held = held  # finished parses nobody took yet, at most
        self._cond = threading.Condition()
        self._queue: list[tuple[tuple[str, int, int], Path]] = []  # largest first
        self._started: dict[str, tuple[tuple[str, int, int], CalamineParse]] = {}
        self._worker: threading.Thread | None = None

    def schedule(self, paths: list[Path]) -> None:
        """Read these workbooks ahead, largest first; what is not among them any more is
        forgotten (already ingested, or not in this campaign)."""
        keys = [(key, Path(p)) for p in paths if (key := _key(p)) is not None]
        wanted = {key for key, _ in keys}
        with self._cond:
            for name, (key, _) in list(self._started.items()):
                if key not in wanted:
                    del self._started[name]
            started = {key for key, _ in self._started.values()}
            self._queue = sorted(
                (item for item in keys if item[0] not in started),
                key=lambda item: -item[0][1],
            )
            if self._queue and (self._worker is None or not self._worker.is_alive()):
                self._worker = threading.Thread(target=self._work, name="read-ahead", daemon=True)
                self._worker.start()
            self._cond.notify_all()

    def take(self, path: Path) -> CalamineParse | None:
        """The parse of ``path`` begun ahead (finished or not), None if there is none: not
        scheduled, not begun yet (it is then never begun), or the file changed since."""
        key = _key(path)
        if key is None:
            return None
        with self._cond:
            self._queue = [item for item in self._queue if item[0][0] != key[0]]
            found = self._started.pop(key[0], None)
            self._cond.notify_all()
        if found is None or found[0] != key:
            return None
        return found[1]

    def _finished_waiting(self) -> int:
        return sum(1 for _, parse in self._started.values() if parse.done.is_set())

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._queue and self._finished_waiting() >= self.held:
                    self._cond.wait(timeout=1.0)
                if not self._queue:
                    return
                key, path = self._queue.pop(0)
                parse = CalamineParse(path)
                self._started[key[0]] = (key, parse)
            parse.run()  # the archive's checks, then calamine's parse
            with self._cond:
                self._cond.notify_all()


READ_AHEAD = ReadAhead()
