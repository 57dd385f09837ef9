"""``ScaleRun``: the stages of one scale factor, each in its own child process, on the
same generated files (bench/README.md, « Method »)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

from runner import BENCH_KEY, KPI, PY, QUERY_RUNS, RESULTS, RUN_SCRIPT, WORK
from runner.children import LIFTED_LIMITS, _force_remove, published_database, redeliver
from runner.measure import TreeSampler, _public, machine, run_measured


class ScaleRun:
    def __init__(self, sf: int, repeat: int, timeout: float | None, warm: bool = True):
        self.sf = sf
        self.warm = warm  # kpi warm before each timed kpi run (bench/README.md)
        self.warm_pid: int | None = None
        self.repeat = repeat
        self.timeout = timeout
        self.root = WORK / f"sf{sf}"
        self.sources = self.root / "sources"
        self.dbt = self.root / "dbt"
        self.project = self.root / "project"
        self.logs = self.root / "logs"
        self.result: dict[str, Any] = {"sf": sf, "stages": {}}
        # which invocation of the bench measured a stage (results.md says when a target line
        # combines stages of different runs: runner.render.measured_when)
        self.bench_run = dt.datetime.now().isoformat(timespec="seconds")
        self.manifest: dict[str, Any] = {}

    # --- environment
    @property
    def warehouse(self) -> Path:
        return self.project / "warehouse.duckdb"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "KPI_DBT_DIR": str(self.dbt),
                "KPI_SOURCES": str(self.sources),
                "KPI_WAREHOUSE": str(self.warehouse),
                "KPI_RELEASES": str(self.project / "releases"),
                "DAGSTER_HOME": str(self.project / "dagster_home"),
                "KPI_PSEUDONYM_KEY": env.get("KPI_PSEUDONYM_KEY") or BENCH_KEY,
                "DAGSTER_DISABLE_TELEMETRY": "1",
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                "PYTHONHASHSEED": "0",
            }
        )
        env.pop("KPI_BUILD_WAREHOUSE", None)
        env["KPI_WARM"] = "1" if self.warm else "0"
        env["KPI_WARM_DIR"] = str(WORK / "warm")
        if self.lift:
            env.update(LIFTED_LIMITS)
        return env

    @property
    def lift(self) -> bool:
        """Does a file of this scale exceed the reader's default limits?"""
        defaults = {"MAX_FILE_BYTES": 50 * 2**20, "MAX_ROWS": 200_000, "MAX_CELLS": 5_000_000}
        try:
            from dagster_project.ingest.readers import sheet as readers

            limits = {k: int(getattr(readers, k, v)) for k, v in defaults.items()}
        except ImportError:
            limits = defaults
        return any(
            f["bytes"] > limits["MAX_FILE_BYTES"]
            or f["rows"] > limits["MAX_ROWS"]
            or f["rows"] * 9 > limits["MAX_CELLS"]
            for f in self.manifest.get("files", [])
        )

    def _me(self, *args: str) -> list[str]:
        return [PY, str(RUN_SCRIPT), *args]

    def _kpi(self, *args: str) -> list[str]:
        """The ``kpi`` command itself (through the warm process unless ``--cold``), the reader's
        limits lifted by the ``KPI_MAX_*`` variables of ``env()`` when the scale needs it.
        (Until 6 December 2026 a lifted scale — SF100 — ran ``kpi``'s ``main()`` in a child of
        its own: cold, and paying Python's finalisation of the run's objects at exit, which the
        ``kpi`` command never pays; bench/README.md.)"""
        return [KPI, *args]

    def start_warm_process(self, suffix: str = "") -> dict[str, Any] | None:
        """``kpi warm`` (untimed, like dbt's parse before it): the next ``kpi run`` goes to a
        process that has loaded everything (cli/warm.py), as on a machine in use."""
        if not self.warm:
            return None
        (WORK / "warm").mkdir(mode=0o700, parents=True, exist_ok=True)
        m = self.measure(f"warm_process{suffix}", [KPI, "warm"])
        said = (self.logs / f"warm_process{suffix}.out").read_text(encoding="utf-8")
        found = re.search(r"n° (\d+), chargé en ([\d.]+) s", said)
        self.warm_pid = int(found[1]) if found else None
        return {
            "ready_seconds": m["wall_seconds"],
            "load_seconds": float(found[2]) if found else None,
        }

    def stop_warm_process(self) -> None:
        if self.warm:
            subprocess.run([KPI, "warm", "--stop"], env=self.env(), capture_output=True)
            self.warm_pid = None

    def measure(self, label: str, cmd: list[str]) -> dict[str, Any]:
        # `kpi run` counts the warm process it may hand its run to (and that process's
        # memory); the other kpi commands (cli/warm.COMMANDS) and the benchmark's own
        # children never use it
        warm = self.warm_pid if cmd[:2] == [KPI, "run"] else None
        m = run_measured(cmd, self.env(), label, self.logs, self.timeout, runs_of=warm)
        state = "ok" if m["exit_code"] == 0 else f"exit {m['exit_code']}"
        if m["timed_out"]:
            state = "TIMEOUT"
        if m["killed_for_memory"]:
            state = "KILLED (memory guard)"
        print(
            f"  SF{self.sf} {label:<22} {m['wall_seconds']:>9.1f} s  "
            f"{m['peak_tree_mib']:>8.0f} MiB  {state}",
            flush=True,
        )
        return m

    def best_of(self, label: str, cmd: list[str], before=None) -> dict[str, Any]:
        runs = []
        for i in range(self.repeat):
            if before:
                before()
            runs.append(self.measure(f"{label}" + (f"_{i + 1}" if self.repeat > 1 else ""), cmd))
        best = min(runs, key=lambda m: m["wall_seconds"])
        out = _public(best)
        out["runs_wall_seconds"] = [m["wall_seconds"] for m in runs]
        return out

    # --- setup
    def prepare(self, regenerate: bool) -> None:
        import scale

        manifest_path = self.root / "manifest.json"
        if regenerate or not manifest_path.is_file():
            print(f"SF{self.sf} : génération…", flush=True)
            scale.generate(self.sf, self.root)
        self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        # always a fresh copy: the project's dbt models may have changed since generation
        self.result["dbt_tests_patched"] = scale.copy_dbt_project(self.sf, self.dbt)
        self.result["dataset"] = {
            k: self.manifest[k]
            for k in ("sf", "communes", "epcis", "rows", "bytes", "generation_seconds")
        }
        self.result["dataset"]["files"] = len(self.manifest["files"])
        self.result["dataset"]["largest"] = max(self.manifest["files"], key=lambda f: f["rows"])
        self.result["limits_lifted"] = self.lift

    def reset_project(self) -> None:
        if self.project.exists():
            shutil.rmtree(self.project, onerror=_force_remove)
        self.project.mkdir(parents=True)

    # --- stages
    def stage_raw(self) -> None:
        self.result["stages"]["raw"] = self.best_of("raw", self._me("_raw", str(self.sources)))

    def stage_naive(self, engine: str) -> None:
        label = "naive" if engine == "openpyxl" else f"naive_{engine}"
        out = self.root / f"{label}_values.csv"
        cmd = [
            PY,
            str(RUN_SCRIPT.parent / "naive_peer.py"),
            str(self.sources),
            "--communes",
            str(self.dbt / "seeds" / "communes.csv"),
            "--engine",
            engine,
            "--out",
            str(out),
        ]
        self.result["stages"][label] = self.best_of(label, cmd)

    def stage_ingest(self, profile: bool = False) -> None:
        scratch = self.root / "ingest_only.duckdb"

        def fresh() -> None:
            for p in (scratch, scratch.with_suffix(".duckdb.wal")):
                p.unlink(missing_ok=True)

        args = ["_ingest", str(self.sources), str(scratch)] + (["--lift"] if self.lift else [])
        if profile:
            fresh()
            target = self.root / "profile_ingest.txt"
            m = self.measure("ingest_profiled", self._me(*args, "--profile", str(target)))
            self.result["profile"] = {"text": str(target), "wall_seconds": m["wall_seconds"]}
            RESULTS.mkdir(exist_ok=True)
            shutil.copy(target, RESULTS / f"profile_ingest_sf{self.sf}.txt")
            return
        self.result["stages"]["ingest"] = self.best_of("ingest", self._me(*args), before=fresh)

    def stage_raw_and_ingest(self) -> None:
        """The raw read and the ingestion in turn (raw, ingest, raw, ingest...): each pair
        runs in the same minute of the machine, whose speed drifts (bench/README.md), so
        the ratio is taken pair by pair and its median kept; best of each kept as well."""
        scratch = self.root / "ingest_only.duckdb"
        ingest_cmd = self._me(
            "_ingest", str(self.sources), str(scratch), *(["--lift"] if self.lift else [])
        )
        raws, ingests, ratios = [], [], []
        for i in range(max(self.repeat, 1)):
            for path in (scratch, scratch.with_suffix(".duckdb.wal")):
                path.unlink(missing_ok=True)
            raws.append(self.measure(f"raw_{i + 1}", self._me("_raw", str(self.sources))))
            ingests.append(self.measure(f"ingest_{i + 1}", ingest_cmd))
            raw_s = (raws[-1].get("child") or {}).get("seconds")
            ingest_s = (ingests[-1].get("child") or {}).get("seconds")
            if raw_s and ingest_s:
                ratios.append(round(ingest_s / raw_s, 3))
        for key, runs in (("raw", raws), ("ingest", ingests)):
            best = _public(min(runs, key=lambda m: m["wall_seconds"]))
            best["runs_wall_seconds"] = [m["wall_seconds"] for m in runs]
            best["runs_inner_seconds"] = [(m.get("child") or {}).get("seconds") for m in runs]
            self.result["stages"][key] = best
        if ratios:
            self.result["stages"]["ingest"]["paired_ratios"] = ratios
            self.result["stages"]["ingest"]["paired_ratio_median"] = statistics.median(ratios)

    def _fresh_run(self, suffix: str = "") -> dict[str, Any]:
        """``kpi run`` on a fresh warehouse and Dagster home, after an untimed ``dbt parse``
        (as on a working machine), with the Dagster step breakdown."""
        from dagster_project.contracts.model import default_contracts

        self.reset_project()
        parse = self.measure(f"dbt_parse_warmup{suffix}", self._me("_dbtparse"))
        if parse["exit_code"]:
            raise RuntimeError("dbt parse a échoué : voir " + str(self.logs))
        warmed = self.start_warm_process(suffix)
        # --force: a full run whatever the last run recorded (a fresh project has no record
        # anyway; said so that the stage measures what it says)
        m = self.measure(f"kpi_run{suffix}", self._kpi("run", "--force"))
        steps_keys = [f"{c.raw_schema}__{c.source_id}" for c in default_contracts().values()]
        steps = self.measure(f"dagster_steps{suffix}", self._me("_steps", *steps_keys))["child"]
        stage = _public(m)
        stage["breakdown"] = self._breakdown(m, steps)
        stage["warm_process"] = warmed  # None: in its own process (--cold)
        return stage

    def stage_naive_and_project(self) -> None:
        """The naive peer and the project (``kpi run`` then ``kpi freeze``) in turn, ``repeat``
        pairs: like the raw read and the ingestion, each pair runs in the same minutes of the
        machine, whose speed drifts by a third between sessions (bench/README.md); the target
        is judged on the median of the pairs' ratios, project / peer."""
        ratios, run_ratios, projects, naives = [], [], [], []
        failed_pairs = 0
        repeat, self.repeat = self.repeat, 1  # one peer run per pair
        try:
            for _ in range(max(repeat, 1)):
                self.stage_naive("openpyxl")
                naives.append(self.result["stages"]["naive"])
                self.stage_project()
                pair = (self.result["stages"]["kpi_run"], self.result["stages"]["freeze"])
                if pair[0]["exit_code"] or pair[1]["exit_code"]:  # a failed pair is no time
                    failed_pairs += 1
                    naives.pop()  # the peer's run of that pair with it
                    continue
                projects.append(pair)
                total = projects[-1][0]["wall_seconds"] + projects[-1][1]["wall_seconds"]
                ratios.append(round(total / naives[-1]["wall_seconds"], 3))
                run_ratios.append(
                    round(projects[-1][0]["wall_seconds"] / naives[-1]["wall_seconds"], 3)
                )
        finally:
            self.repeat = repeat
        if not projects:
            raise RuntimeError("aucune paire réussie : voir " + str(self.logs))
        best = min(range(len(ratios)), key=lambda i: naives[i]["wall_seconds"])
        self.result["stages"]["naive"] = naives[best]
        self.result["stages"]["naive"]["runs_wall_seconds"] = [n["wall_seconds"] for n in naives]
        fastest = min(projects, key=lambda p: p[0]["wall_seconds"] + p[1]["wall_seconds"])
        self.result["stages"]["kpi_run"], self.result["stages"]["freeze"] = fastest
        self.result["stages"]["kpi_run"]["pairs_end_to_end_seconds"] = [
            round(p[0]["wall_seconds"] + p[1]["wall_seconds"], 1) for p in projects
        ]
        self.result["stages"]["kpi_run"]["paired_ratios_to_naive"] = ratios
        self.result["stages"]["kpi_run"]["failed_pairs"] = failed_pairs
        self.result["stages"]["kpi_run"]["paired_ratio_to_naive_median"] = statistics.median(ratios)
        # issue 19: kpi run alone against the peer, pair by pair
        self.result["stages"]["kpi_run"]["pairs_run_seconds"] = [
            p[0]["wall_seconds"] for p in projects
        ]
        self.result["stages"]["kpi_run"]["paired_run_ratios_to_naive"] = run_ratios
        self.result["stages"]["kpi_run"]["paired_run_ratio_to_naive_median"] = statistics.median(
            run_ratios
        )

    def stage_project(self) -> None:
        stage = self._fresh_run()
        log = self.warehouse.with_name(self.warehouse.stem + ".run.log")
        if log.is_file():
            text = log.read_text(encoding="utf-8", errors="replace")
            stage["dbt_full_reparse"] = "Unable to do partial parsing" in text
            stage["dbt_failures"] = len(re.findall(r"^\d+ of \d+ (?:FAIL|ERROR)", text, re.M))
        self.result["stages"]["kpi_run"] = stage
        self.result["stages"]["freeze"] = _public(
            self.measure("freeze", self._kpi("freeze", "--year", "2025"))
        )
        self.check_same_values()

    def _breakdown(self, m: dict[str, Any], steps: dict[str, Any]) -> dict[str, Any]:
        if not steps or not steps.get("windows"):
            return {}
        sampler: TreeSampler = m["_sampler"]
        out: dict[str, Any] = {}
        for category in ("ingest", "checks", "dbt", "other_steps"):
            windows = [w for w in steps["windows"] if w["category"] == category]
            if not windows:
                continue
            out[category] = {
                "seconds": round(sum(w["end"] - w["start"] for w in windows), 2),
                "steps": len(windows),
                "peak_tree_mib": round(
                    max(sampler.peak_between(w["start"], w["end"] + 0.2) for w in windows) / 1024,
                    1,
                ),
            }
        stepped = sum(v["seconds"] for v in out.values())
        run_span = steps["last_event"] - steps["first_event"]
        out["dagster_before_first_step"] = round(steps["first_step"] - steps["first_event"], 2)
        out["dagster_between_steps"] = round(
            run_span - stepped - out["dagster_before_first_step"], 2
        )
        outside = m["wall_seconds"] - run_span
        stdout = (self.logs / f"{m['label']}.out").read_text(encoding="utf-8", errors="replace")
        published = re.search(r"tables, ([\d.]+) s\]", stdout)
        if published:
            out["publish"] = float(published[1])
            outside -= out["publish"]
        out["process_outside_run"] = round(outside, 2)
        out["event_counts"] = steps.get("event_counts", {})
        return out

    def stage_fixed(self) -> None:
        """``kpi run`` on the same project (the scale's dbt copy, a fresh warehouse and Dagster
        home) with a campaign folder that holds no delivery: what a run costs whatever the
        data (Python imports, Dagster, dbt's per-node work on empty tables, GX)."""
        saved = self.sources, self.project
        self.sources = self.root / "empty_campaign"
        (self.sources / "2025").mkdir(parents=True, exist_ok=True)
        self.project = self.root / "project_empty"
        try:
            self.result["stages"]["fixed"] = self._fresh_run("_empty")
        finally:
            self.sources, self.project = saved

    def stage_redelivery(self) -> None:
        """After a full run: ``kpi run`` again with nothing changed (it must say « rien à
        faire » and stop), then ``eau_reseau`` delivered again with one cell changed and
        ``kpi run`` (it selects the changed source and its downstream itself,
        warehouse/inputs.py), then ``kpi run --select eau_reseau`` with no file changed (what
        a selected run costs whatever the data). With ``--repeat N``, N re-deliveries (the cell
        changed back and forth): the ratio is the median re-delivery over the median full run of
        the pairs (issue 19: « pairs, medians »), not one run over another."""
        if "kpi_run" not in self.result["stages"]:
            self.stage_project()
        # the freeze published since the run: the next run is a full one (untimed), after
        # which the record of the last run is this project's
        self.measure("redelivery_settle", self._kpi("run"))
        nothing = self.measure("nothing_changed", self._kpi("run"))
        path = next(self.sources.glob("2025/water/eau_reseau_2025.*"))
        original = self.logs / f"original_{path.name}"
        shutil.copy2(path, original)
        runs = []
        try:
            for i in range(max(self.repeat, 1)):
                changed = redeliver(path)
                label = "redelivery" + (f"_{i + 1}" if self.repeat > 1 else "")
                runs.append(self.measure(label, self._kpi("run")))
            runs.sort(key=lambda run: run["wall_seconds"])
            m = runs[(len(runs) - 1) // 2]  # the median run (the lower one of an even count)
            # the same selection again, no file changed: what this run costs whatever the data
            # (imports, Dagster, the raw check's Great Expectations, dbt's start, publication)
            floor = self.measure("redelivery_unchanged", self._kpi("run", "--select", "eau_reseau"))
        finally:
            shutil.copy2(original, path)  # the generated campaign stays as generated
        stage = _public(m)
        stage["changed"] = changed
        stage["runs_wall_seconds"] = [run["wall_seconds"] for run in runs]
        stage["selected_automatically"] = all(
            "seules les livraisons de eau_reseau"
            in (self.logs / f"{run['label']}.err").read_text(encoding="utf-8", errors="replace")
            for run in runs
        )
        stage["unchanged_run_seconds"] = floor["wall_seconds"]
        said = (self.logs / "nothing_changed.out").read_text(encoding="utf-8", errors="replace")
        stage["nothing_changed"] = {
            "wall_seconds": nothing["wall_seconds"],
            "exit_code": nothing["exit_code"],
            "said_nothing_to_do": "rien à faire" in said,
            "peak_tree_mib": nothing["peak_tree_mib"],
        }
        full_run = self.result["stages"]["kpi_run"]
        full = statistics.median(full_run.get("pairs_run_seconds") or [full_run["wall_seconds"]])
        stage["full_run_seconds"] = full
        stage["ratio_to_full_run"] = round(m["wall_seconds"] / full, 3)
        # what changed: the values that differ from the peer's (computed on the original file)
        stage["values_changed"] = self.check_same_values(record=False)
        self.result["stages"]["redelivery"] = stage

    def stage_queries(self) -> None:
        database = published_database(self.warehouse)
        if database is None:
            self.result["stages"]["queries"] = {"error": "aucune base avec marts"}
            return
        m = self.measure("queries", self._me("_queries", str(database), str(QUERY_RUNS)))
        stage = _public(m)
        stage["database"] = str(database)
        self.result["stages"]["queries"] = stage

    def check_same_values(self, record: bool = True) -> list[list[Any]] | None:
        """The naive peer must compute the project's numbers (else the race is unfair).
        Returns the differing values (indicator, commune, project, peer)."""
        database = published_database(self.warehouse)
        peer = self.root / "naive_calamine_values.csv"
        if not peer.is_file():
            peer = self.root / "naive_values.csv"
        if database is None or not peer.is_file():
            return None
        import duckdb
        import pandas as pd

        with duckdb.connect(str(database), read_only=True) as con:
            project = con.execute(
                "select indicator_id, year, code_insee, value from marts.fct_indicator_values"
            ).df()
        naive = pd.read_csv(peer, dtype={"code_insee": str})
        both = project.merge(naive, on=["indicator_id", "year", "code_insee"], how="outer")
        tolerance = 1e-6 * both["value_x"].abs().clip(lower=1)
        equal = (both["value_x"] - both["value_y"]).abs() <= tolerance
        differing = both[~equal]
        if record:
            self.result["same_values"] = {
                "project_values": int(both["value_x"].notna().sum()),
                "peer_values": int(both["value_y"].notna().sum()),
                "equal": int(equal.sum()),
                "peer": peer.name,
            }
        return [
            [r.indicator_id, None if pd.isna(r.code_insee) else r.code_insee, r.value_x, r.value_y]
            for r in differing.head(20).itertuples()
        ]

    def save(self) -> Path:
        RESULTS.mkdir(exist_ok=True)
        self.result["machine"] = machine()
        self.result["measured_at"] = dt.datetime.now().isoformat(timespec="seconds")
        for stage in self.result["stages"].values():
            if isinstance(stage, dict):
                stage["bench_run"] = self.bench_run
        path = RESULTS / f"sf{self.sf}.json"
        previous = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        merged = {**previous, **self.result}
        merged["stages"] = {**previous.get("stages", {}), **self.result["stages"]}
        path.write_text(json.dumps(merged, indent=1, ensure_ascii=False), encoding="utf-8")
        return path
