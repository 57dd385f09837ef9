"""A child process timed from outside: wall and CPU time, the peak memory of its process
tree (sampled from /proc), its JSON line; the machine it ran on."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any


def _children(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, IndexError, ValueError):
        return 0


def _pss_kb(pid: int) -> int:
    """Proportional set size: the pages a process shares with others (a forked copy of the
    warm process, the GX worker forked from a run) counted in part, not whole as in RSS."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return 0


MEMORY_GUARD_KB = int(os.environ.get("KPI_BENCH_MEMORY_GUARD_GIB", "12")) * 2**20
# the tree's PSS is read (the kernel walks its pages: ≈ 1 ms per 60 MB) only above this RSS,
# at most every PSS_INTERVAL: below it the RSS, higher than the PSS, is the peak reported
PSS_ABOVE_KB = 1 * 2**20
PSS_INTERVAL = 0.5


class TreeSampler(threading.Thread):
    """Samples the resident memory of a process tree (sum over its processes); kills the
    tree (its own process group) beyond MEMORY_GUARD_KB, so that a benchmark never pushes
    the machine into swapping or the OOM killer. Above PSS_ABOVE_KB it also reads the tree's
    PSS (``pss_samples``): the sum of RSS counts twice the pages a forked process shares
    with the one it was forked from (the run and its GX worker, both copies of the warm
    process)."""

    def __init__(self, pid: int, interval: float = 0.1, runs_of: int | None = None):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        # a warm process: it and its children (the runs it makes) count too — what the run
        # shares with it is in both PSS, once in their sum
        self.runs_of = runs_of
        self.samples: list[tuple[float, int]] = []
        self.pss_samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.killed_for_memory = False

    def run(self) -> None:
        while not self.stop.is_set():
            pids = _children(self.pid)
            if self.runs_of:
                pids += _children(self.runs_of)
            total = sum(_rss_kb(p) for p in pids)
            now = time.time()
            self.samples.append((now, total))
            if total > PSS_ABOVE_KB and (
                not self.pss_samples or now - self.pss_samples[-1][0] >= PSS_INTERVAL
            ):
                self.pss_samples.append((now, sum(_pss_kb(p) for p in pids)))
            if total > MEMORY_GUARD_KB and not self.killed_for_memory:
                self.killed_for_memory = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
            self.stop.wait(self.interval)

    @property
    def peak_kb(self) -> int:
        """The peak of the tree's memory: its PSS where read, its RSS below PSS_ABOVE_KB."""
        below = max((kb for _, kb in self.samples if kb <= PSS_ABOVE_KB), default=0)
        return max(below, max((kb for _, kb in self.pss_samples), default=0))

    @property
    def peak_rss_kb(self) -> int:
        return max((kb for _, kb in self.samples), default=0)

    def peak_between(self, start: float, end: float) -> int:
        return max((kb for t, kb in self.samples if start <= t <= end), default=0)


def run_measured(
    cmd: list[str],
    env: dict[str, str],
    label: str,
    log_dir: Path,
    timeout: float | None = None,
    runs_of: int | None = None,
) -> dict[str, Any]:
    """Run one child, return wall seconds, peaks, exit code and its JSON line (if any).
    ``runs_of``: the warm process the child may hand its run to (``kpi warm``): its memory and
    that of the runs it makes meanwhile are the child's (their CPU time is not in
    ``cpu_seconds``)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{label}.out", log_dir / f"{label}.err"
    load_before = os.getloadavg()[0]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started_at = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, start_new_session=True)
        sampler = TreeSampler(proc.pid, runs_of=runs_of)
        sampler.start()
        timer = None
        if timeout:
            timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if timer:
            timer.cancel()
        sampler.stop.set()
        sampler.join()
    stdout = out_path.read_text(encoding="utf-8", errors="replace")
    payload = {}
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                payload = json.loads(line)
            except json.JSONDecodeError:
                continue
            break
    return {
        "label": label,
        "cmd": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
        "exit_code": proc.returncode,
        "timed_out": proc.returncode == -signal.SIGKILL and not sampler.killed_for_memory,
        "killed_for_memory": sampler.killed_for_memory,
        "wall_seconds": round(wall, 3),
        "started_at": started_at,
        "ended_at": started_at + wall,
        "peak_tree_mib": round(sampler.peak_kb / 1024, 1),
        "peak_tree_rss_mib": round(sampler.peak_rss_kb / 1024, 1),
        "maxrss_mib": round(usage.ru_maxrss / 1024, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "child": payload,
        "_sampler": sampler,
    }


def _public(measure: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in measure.items() if not k.startswith("_")}


def machine() -> dict[str, Any]:
    from dagster_project.lib.versions import tool_versions

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0
    # the release manifest's tools (the Excel libraries of the naive peer and exports among them)
    versions = tool_versions(absent=None)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }
