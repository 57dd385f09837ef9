"""The Great Expectations result of each suite, kept when its check runs, for the release's
evidence.

``kpi freeze`` writes each suite's result into the release (``validation/<suite>.json``) and
renders the Data Docs from them (``dagster_project.release.exports.data_docs``). It used to validate
every suite again, which meant rebuilding every dataset (the in-force rows of each raw table:
4 M rows into pandas at 100 times the agglomeration). The check already has that result, on
the same data, a moment after it was loaded: ``record_outcomes`` keeps it here, in
``audit.check_evidence``, and the freeze reads it.

- One row per suite, the latest check of the suite (a later check replaces it): the run id,
  the SHA-256 of the suite it was validated against (the freeze validates again when the
  suite changed since), the number of rows, and the result as GX's JSON. A check whose
  data could not be prepared (table missing...) keeps a row without result: the freeze then
  tries again, so the release says why.
- The result is cleaned as the release files are: no traceback; for personal data
  (``sensitivity: personal``) counts only, and anything shaped like a pseudonym masked.
  GX's batch fingerprint depends on the row order: it is replaced by one of the content.
  The time of the check (``ge_load_time``) is replaced by the release's fixed time at the
  freeze.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import duckdb

from dagster_project.lib.hashing import sha256_text
from dagster_project.warehouse.schema import ensure

# Counts only for personal data (no observed value: it may be an age, a date...)
PERSONAL_KEYS = (
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
    "missing_count",
    "missing_percent",
)
_TABLE_LEVEL = ("expect_table_row_count", "expect_table_column_count", "expect_column_to_exist")
# Anything shaped like a pseudonym (16 hex) is masked in what is kept for personal data (a last
# guard: their results hold counts only); the checks' messages use the same (runner.py).
PSEUDONYM_SHAPE = re.compile(r"\b[0-9a-fA-F]{16}\b")
MASK = "[masqué]"
_FINGERPRINT = "pandas_data_fingerprint"
# Names of the GX pandas datasource, asset and batch definition: they appear in results
# (``batch_id``, ``active_batch_definition``), the same at check time and at the freeze.
GX_DATASOURCE = "entrepot"
GX_ASSET = "donnees"
GX_BATCH_DEFINITION = "table_entiere"


def scrub(value: Any) -> Any:
    """Mask anything shaped like a pseudonym in the strings of a JSON value (not in numbers:
    the 16 decimals of a percentage look like one)."""
    if isinstance(value, str):
        return PSEUDONYM_SHAPE.sub(MASK, value)
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    return value


def suite_digest(suite: dict) -> str:
    """SHA-256 of a suite as loaded (``quality.suites.load_suite``)."""
    text = json.dumps(suite, ensure_ascii=False, sort_keys=True, default=str)
    return sha256_text(text)


def content_fingerprint(df) -> str:
    """MD5 of the rows whatever their order (a release is the same bytes in any warehouse):
    the MD5 of ``repr(sorted(row hashes))``, computed by chunks."""
    import numpy as np
    import pandas as pd

    hashes = np.sort(pd.util.hash_pandas_object(df, index=False).to_numpy())
    digest = hashlib.md5(b"[", usedforsecurity=False)
    step = 1 << 16
    for start in range(0, len(hashes), step):
        text = ", ".join(map(str, hashes[start : start + step].tolist()))
        digest.update((", " + text if start else text).encode())
    digest.update(b"]")
    return digest.hexdigest()


def clean_result(raw: dict, personal: bool, load_time: str | None = None) -> dict:
    """A GX validation result (JSON dict) without traceback nor personal values; with
    ``load_time``, the batch's load time replaced by it. Cleaning a cleaned result changes
    nothing."""
    out = json.loads(json.dumps(raw, default=str))
    meta = out.setdefault("meta", {})
    markers = meta.get("batch_markers") or {}
    if load_time is not None and "ge_load_time" in markers:
        markers["ge_load_time"] = load_time
    if personal:
        markers.pop(_FINGERPRINT, None)
    for item in out.get("results", []):
        config = item.get("expectation_config") or {}
        kind = str(config.get("type") or "")
        result = item.get("result") or {}
        if personal:
            kept = {k: result[k] for k in PERSONAL_KEYS if k in result}
            if kind.startswith(_TABLE_LEVEL) and "observed_value" in result:
                kept["observed_value"] = result["observed_value"]  # a row or column count
            item["result"] = kept
        exception = item.get("exception_info") or {}
        if isinstance(exception, dict) and "exception_traceback" in exception:
            exception["exception_traceback"] = None
            if personal and exception.get("raised_exception"):
                exception["exception_message"] = "erreur d'évaluation"
    return scrub(out) if personal else out


def evidence_result(raw: dict, df, personal: bool) -> dict:
    """What is kept of a check's GX result (``raw``, validated on ``df``)."""
    clean = clean_result(raw, personal)
    markers = clean.get("meta", {}).get("batch_markers") or {}
    if _FINGERPRINT in markers:  # GX's depends on the row order
        markers[_FINGERPRINT] = content_fingerprint(df)
    return clean


@dataclass
class Evidence:
    """The latest recorded result of a suite (``result`` is None when the data could not be
    prepared)."""

    check_name: str
    run_id: str
    suite_sha256: str
    rows: int | None
    result: dict | None


def record_evidence(con: duckdb.DuckDBPyConnection, run_id: str, outcomes: list) -> None:
    """Keep each outcome's GX result (``CheckOutcome.evidence_json``) as its suite's latest."""
    ensure(con, "audit.check_evidence")
    for outcome in outcomes:
        if not outcome.suite_sha256:
            continue
        con.execute("delete from audit.check_evidence where check_name = ?", [outcome.name])
        con.execute(
            "insert into audit.check_evidence (check_name, run_id, suite_sha256, rows, "
            "result_json) values (?, ?, ?, ?, ?)",
            [
                outcome.name,
                run_id,
                outcome.suite_sha256,
                outcome.statistics.get("rows"),
                outcome.evidence_json or None,
            ],
        )


def recorded_evidence(
    con: duckdb.DuckDBPyConnection, names: list[str] | None = None
) -> dict[str, Evidence]:
    """The latest recorded result of each suite (of ``names``), by suite name."""
    from dagster_project.warehouse.relations import table_exists

    if not table_exists(con, "audit.check_evidence"):
        return {}
    rows = con.execute(
        "select check_name, run_id, suite_sha256, rows, result_json from audit.check_evidence "
        "qualify row_number() over (partition by check_name order by checked_at desc, "
        "run_id desc) = 1"
    ).fetchall()
    found = {}
    for name, run_id, digest, count, text in rows:
        if names is not None and name not in names:
            continue
        result = json.loads(text) if text else None
        found[name] = Evidence(name, run_id, digest, count, result)
    return found
