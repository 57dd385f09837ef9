"""Run one expectation suite against the warehouse and keep its outcome.

``run_suite(con, name)`` reads the suite from the GX file project, builds its DataFrame
(``datasets.py``) from the connection, validates it with an ephemeral GX context (pandas
datasource, batch from the DataFrame) and returns a :class:`CheckOutcome` with French
failure messages. ``record_outcomes`` writes outcomes to ``audit.check_results``, where the
freeze looks for blocking failures, and the GX result of each suite to
``audit.check_evidence``, from which the freeze writes the release's evidence
(``evidence.py``).

Personal data (contract ``sensitivity: personal``): GX is asked for counts only
(``SUMMARY`` with no partial unexpected list), messages name no row and no value, the stored
result keeps counts only, and a last scrub masks anything shaped like a pseudonym.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from dagster_project.quality import gx_worker
from dagster_project.quality.datasets import MissingTable, build_dataset
from dagster_project.quality.evidence import (
    GX_ASSET,
    GX_BATCH_DEFINITION,
    GX_DATASOURCE,
    MASK,
    PSEUDONYM_SHAPE,
    evidence_result,
    record_evidence,
    suite_digest,
)
from dagster_project.quality.suites import YEAR_COLUMN, expectation_ids, load_suite
from dagster_project.warehouse.schema import ensure

EXAMPLES = 3
_COUNT_KEYS = (
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "missing_count",
    "missing_percent",
    "unexpected_percent_nonmissing",
)
_PUBLIC_KEYS = (*_COUNT_KEYS, "observed_value", "partial_unexpected_list", "details")


@dataclass
class CheckOutcome:
    """What a suite found: one row of audit.check_results, one Dagster asset check result."""

    name: str
    passed: bool
    blocking: bool
    severity: str  # "ERROR" (blocking) or "WARN"
    statistics: dict[str, Any]
    failures: list[str]
    result_json: str
    asset: str = ""
    description_fr: str = ""
    # For the release's evidence (audit.check_evidence): the suite's SHA-256 and GX's whole
    # result, cleaned (empty when the data could not be prepared).
    suite_sha256: str = ""
    evidence_json: str = field(default="", repr=False)

    @property
    def summary_fr(self) -> str:
        if self.passed:
            n = self.statistics.get("evaluated_expectations", 0)
            rows = self.statistics.get("rows", 0)
            return f"{n} attente(s) satisfaite(s) sur {rows} ligne(s)."
        return " ; ".join(self.failures)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# GX plumbing
# --------------------------------------------------------------------------------------------

_GX: dict[str, Any] = {}


def _batch_definition():
    """An ephemeral GX context with one pandas dataframe asset (created once per process)."""
    if "batch_definition" not in _GX:
        from dagster_project.lib.progress import progress

        progress("chargement de Great Expectations (une fois par processus)…")
        import great_expectations as gx

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = {"globally": False}
        source = context.data_sources.add_pandas(GX_DATASOURCE)
        asset = source.add_dataframe_asset(GX_ASSET)
        _GX["context"] = context
        _GX["batch_definition"] = asset.add_batch_definition_whole_dataframe(GX_BATCH_DEFINITION)
    return _GX["batch_definition"]


def _without_meta(suite: dict) -> tuple[dict, dict[str, Any]]:
    """The suite with its expectations stripped of their ``meta``, and those metas by
    expectation id (empty, suite unchanged, when an expectation has no id or shares one)."""
    if expectation_ids(suite) is None:
        return suite, {}
    expectations = suite.get("expectations") or []
    metas = {e["id"]: e["meta"] for e in expectations if e.get("meta") is not None}
    bare = [{k: v for k, v in e.items() if k != "meta"} for e in expectations]
    return {**suite, "expectations": bare}, metas


def _with_meta(config: dict, meta: Any) -> dict:
    """``config`` (an ``expectation_config`` of GX's result) with ``meta`` where GX writes it:
    after ``kwargs``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key != "meta":
            out[key] = value
        if key == "kwargs":
            out["meta"] = meta
    if "meta" not in out:
        out["meta"] = meta
    return out


def _validate(df: pd.DataFrame, suite: dict, personal: bool) -> dict:
    """GX's result of ``suite`` on ``df``, as JSON (``to_json_dict``).

    The same result as ``batch_definition.get_batch(...).validate(suite)``
    (tests/unit/quality/test_validation.py compares the two), without two costs of that path:

    - while it plans the metrics, GX rebuilds each expectation's configuration from its model
      about 75 times (``Expectation.configuration``: ``_get_runtime_kwargs`` and
      ``get_metric_kwargs`` for every metric), copying and checking its ``meta`` each time. The
      meta (``description_fr``, ``blocking``) only annotates the expectation: GX is given the
      expectations without it, and it is put back into each result's ``expectation_config``
      (by expectation id, where GX writes it). About a tenth of the suites' time;
    - ``get_batch`` loads the frame as a batch (GX's batch markers hash the whole frame) that
      ``Batch.validate`` does not use: it builds a validator on the batch definition and
      parameters, which loads the frame again. That validator (GX's
      ``v1_validator.Validator``, also behind ``ValidationDefinition.run``) is built here
      directly; that test fails if a GX upgrade makes its result differ.
    """
    import great_expectations as gx
    from great_expectations.validator.v1_validator import Validator

    bare, metas = _without_meta(suite)
    gx_suite = gx.ExpectationSuite(**bare)
    result_format = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": 0 if personal else 20,
    }
    validator = Validator(
        batch_definition=_batch_definition(),
        batch_parameters={"dataframe": df},
        result_format=result_format,
    )
    raw = validator.validate_expectation_suite(gx_suite).to_json_dict()
    if metas:
        for item in raw.get("results") or []:
            config = item.get("expectation_config")
            if isinstance(config, dict) and config.get("id") in metas:
                item["expectation_config"] = _with_meta(config, metas[config["id"]])
    return raw


# --------------------------------------------------------------------------------------------
# French messages
# --------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10] if getattr(value, "hour", 0) == 0 else value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if hasattr(value, "item"):
        return value.item()
    return value


class _Row(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _row_text(df: pd.DataFrame, index: Any, template: str | None, columns: list[str]) -> str:
    try:
        record = df.loc[index]
    except (KeyError, TypeError):
        return f"ligne {index}"
    values = _Row()
    for key, value in record.items():
        plain = _plain(value)
        if key == "code_insee" and plain is None:
            plain = "agglomération"
        values[key] = "∅" if plain is None else plain
    text = ""
    if template:
        try:
            text = template.format_map(values)
        except (ValueError, TypeError):
            text = " ".join(str(values.get(k, "?")) for k in re.findall(r"{(\w+)", template))
    shown = [c for c in columns if c and "{" + c not in (template or "")]
    if shown:
        detail = ", ".join(f"{c} = {values.get(c, '?')}" for c in shown)
        text = f"{text} : {detail}" if text else detail
    return text or f"ligne {index}"


def _columns_of(kwargs: dict) -> list[str]:
    if "column" in kwargs:
        return [kwargs["column"]]
    if "column_A" in kwargs:
        return [kwargs["column_A"], kwargs["column_B"]]
    return []


def _describe_failure(item: dict, df: pd.DataFrame, template: str | None, personal: bool) -> str:
    config = item.get("expectation_config") or {}
    kwargs = config.get("kwargs") or {}
    rule = (config.get("meta") or {}).get("description_fr") or config.get("type", "attente")
    rule = rule.rstrip(".")
    result = item.get("result") or {}
    exception = item.get("exception_info") or {}
    if exception.get("raised_exception"):
        if personal:
            return f"{rule} : contrôle impossible (erreur d'évaluation)"
        message = str(exception.get("exception_message") or "").splitlines()[:1]
        return f"{rule} : contrôle impossible ({message[0] if message else 'erreur'})"
    if config.get("type") == "expect_column_to_exist":
        return f"{rule} : colonne absente"
    if "unexpected_count" in result:
        count = result.get("unexpected_count") or 0
        total = result.get("element_count") or 0
        text = f"{rule} : {count} ligne(s) en écart sur {total}"
        if personal:
            return text
        indexes = list(result.get("partial_unexpected_index_list") or [])
        seen: list[Any] = []
        for index in indexes:
            if index not in seen:
                seen.append(index)
        if config.get("type") == "expect_compound_columns_to_be_unique":
            columns = [c for c in kwargs.get("column_list") or [] if c != YEAR_COLUMN]
        else:
            columns = _columns_of(kwargs)
        examples = [_row_text(df, i, template, columns) for i in seen[:EXAMPLES]]
        if examples:
            more = f" … (+{count - len(examples)})" if count > len(examples) else ""
            text += " — ex. " + " ; ".join(examples) + more
        return text
    if personal:
        return f"{rule} : non satisfaite"
    observed = result.get("observed_value")
    return f"{rule} : non satisfaite" + (f" (observé : {observed})" if observed is not None else "")


# --------------------------------------------------------------------------------------------
# Stored results
# --------------------------------------------------------------------------------------------


def scrub(text: str) -> str:
    """Mask anything shaped like a pseudonym."""
    return PSEUDONYM_SHAPE.sub(MASK, text)


def scrub_strings(value: Any) -> Any:
    """Mask pseudonym-shaped text in the strings of a JSON-like structure (numbers untouched)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_strings(v) for v in value]
    return value


def _stored_result(suite: dict, raw: dict | None, personal: bool, extra: dict) -> dict:
    results = []
    for item in (raw or {}).get("results", []):
        config = item.get("expectation_config") or {}
        kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
        result = item.get("result") or {}
        keys = _COUNT_KEYS if personal else _PUBLIC_KEYS
        kept = {k: result[k] for k in keys if k in result}
        if "partial_unexpected_list" in kept:
            kept["partial_unexpected_list"] = kept["partial_unexpected_list"][:EXAMPLES]
        entry = {
            "type": config.get("type"),
            "kwargs": kwargs,
            "success": item.get("success"),
            "blocking": (config.get("meta") or {}).get("blocking"),
            "description_fr": (config.get("meta") or {}).get("description_fr"),
            "result": kept,
        }
        exception = item.get("exception_info") or {}
        if exception.get("raised_exception"):
            entry["exception"] = (
                "erreur d'évaluation"
                if personal
                else str(exception.get("exception_message") or "")[:300]
            )
        results.append(entry)
    return {
        "suite": suite["name"],
        "success": (raw or {}).get("success", False),
        "statistics": (raw or {}).get("statistics", {}),
        "results": results,
        **extra,
    }


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _asset_text(meta: dict) -> str:
    asset = meta.get("asset")
    return "/".join(asset) if isinstance(asset, list) else str(asset or meta.get("table") or "")


def run_suite(
    con: duckdb.DuckDBPyConnection,
    suite_name: str,
    project_dir: Path | None = None,
    in_halves: bool = False,
) -> CheckOutcome:
    """Validate the warehouse data of one suite (a read-only connection is enough);
    ``in_halves``: the worker and this process may validate half of it each at once
    (``gx_worker.validate``), when no other suite is being validated meanwhile."""
    started = time.perf_counter()
    suite = load_suite(suite_name, project_dir)
    meta = suite.get("meta") or {}
    personal = meta.get("sensitivity") == "personal"
    blocking = bool(meta.get("blocking", True))
    severity = meta.get("severity") or ("ERROR" if blocking else "WARN")
    common = {
        "name": suite_name,
        "blocking": blocking,
        "severity": severity,
        "asset": _asset_text(meta),
        "description_fr": meta.get("description_fr", ""),
        "suite_sha256": suite_digest(suite),
    }
    try:
        df = build_dataset(con, meta["dataset"])
    except MissingTable as exc:
        message = f"table {exc.table} absente de l'entrepôt"
    except Exception as exc:  # a table without the columns the preparation needs
        detail = "" if personal else f" ({type(exc).__name__}: {exc})"
        message = f"préparation des données impossible{detail}"
    else:
        message = None
    if message is not None:
        stored = _stored_result(suite, None, personal, {"error": message})
        return CheckOutcome(
            passed=False,
            statistics={"rows": 0, "evaluated_expectations": 0, "seconds": 0.0},
            failures=[message],
            result_json=json.dumps(stored, ensure_ascii=False),
            **common,
        )
    raw = gx_worker.validate(df, suite, personal, in_halves=in_halves)
    failures = [
        _describe_failure(item, df, meta.get("example_fr"), personal)
        for item in raw.get("results", [])
        if not item.get("success")
    ]
    failures.sort()
    statistics = {
        **{k: v for k, v in (raw.get("statistics") or {}).items()},
        "rows": len(df),
        "seconds": round(time.perf_counter() - started, 3),
    }
    result = _stored_result(suite, raw, personal, {"rows": len(df)})
    if personal:
        failures = [scrub(f) for f in failures]
        result = scrub_strings(json.loads(json.dumps(result, default=str)))
    stored = json.dumps(result, ensure_ascii=False, default=str)
    evidence = json.dumps(evidence_result(raw, df, personal), ensure_ascii=False, default=str)
    return CheckOutcome(
        passed=bool(raw.get("success")),
        statistics=statistics,
        failures=failures,
        result_json=stored,
        evidence_json=evidence,
        **common,
    )


# Two suites at once only on tables up to this size: two frames in memory instead of one (a
# raw table of 100 agglomerations holds millions of rows: bench/README.md, peak memory)
TWO_AT_ONCE_MAX_ROWS = 200_000


def _small_tables(con, suite_names: list[str], project_dir: Path | None) -> bool:
    """Whether every table the suites read holds at most ``TWO_AT_ONCE_MAX_ROWS`` rows
    (DuckDB's estimate, from its catalogue)."""
    sizes = {
        f"{schema}.{name}": rows
        for schema, name, rows in con.execute(
            "select schema_name, table_name, estimated_size from duckdb_tables() "
            "where database_name = current_database()"
        ).fetchall()
    }
    for name in suite_names:
        table = ((load_suite(name, project_dir).get("meta") or {}).get("dataset") or {}).get(
            "table"
        )
        if table is None or sizes.get(table, 0) > TWO_AT_ONCE_MAX_ROWS:
            return False
    return True


def run_suites(
    con: duckdb.DuckDBPyConnection, suite_names: list[str], project_dir: Path | None = None
) -> Iterator[tuple[str, CheckOutcome]]:
    """(name, outcome) of each suite, in order. Two suites at a time when two can be validated
    at once (``gx_worker.two_at_once``: one by the worker, one in this process), each prepared
    on its own cursor of ``con``; otherwise one after the other, each in two halves at once
    when it can (``gx_worker.validate``: a single suite, as in a run of one changed source).
    Two suites at a time are not also split: measured slower on a full run's 15 raw suites,
    no faster on the marts' three (bench/README.md)."""
    if (
        len(suite_names) < 2
        or not gx_worker.two_at_once()
        or not _small_tables(con, suite_names, project_dir)
    ):
        for name in suite_names:  # one at a time: each in two halves at once when it can
            yield name, run_suite(con, name, project_dir, in_halves=True)
        return
    from concurrent.futures import ThreadPoolExecutor

    cursors: list[duckdb.DuckDBPyConnection] = []
    mine = threading.local()

    def one(name: str) -> CheckOutcome:
        if getattr(mine, "cursor", None) is None:
            mine.cursor = con.cursor()
            cursors.append(mine.cursor)
        return run_suite(mine.cursor, name, project_dir)

    try:
        with ThreadPoolExecutor(2, thread_name_prefix="kpi-checks") as pool:
            futures = [pool.submit(one, name) for name in suite_names]
            try:
                for name, future in zip(suite_names, futures, strict=True):
                    yield name, future.result()
            finally:
                for future in futures:
                    future.cancel()
    finally:
        for cursor in cursors:
            cursor.close()


def record_outcomes(
    con: duckdb.DuckDBPyConnection, run_id: str, outcomes: list[CheckOutcome]
) -> None:
    """Write outcomes to audit.check_results (one row per suite; a rerun replaces its row),
    and their GX results to audit.check_evidence (the latest of each suite)."""
    ensure(con, "audit.check_results")
    for outcome in outcomes:
        con.execute(
            "delete from audit.check_results where run_id = ? and check_name = ?",
            [run_id, outcome.name],
        )
        con.execute(
            "insert into audit.check_results (run_id, check_name, asset, passed, blocking, "
            "severity, description_fr, details_json) values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                outcome.name,
                outcome.asset,
                outcome.passed,
                outcome.blocking,
                outcome.severity,
                outcome.summary_fr,
                outcome.result_json,
            ],
        )
    record_evidence(con, run_id, outcomes)


@dataclass
class ValidationRun:
    outcomes: list[CheckOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def blocking_failures(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if o.blocking and not o.passed]

    @property
    def warnings(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if not o.blocking and not o.passed]
