"""Evidence for auditors: the expectation suites run on the release's warehouse, kept as
Great Expectations Data Docs (``data_docs/``) and JSON results (``validation/``).

The suites of ``dagster_project.validation`` are validated again, on the same DataFrames as the
pipeline's checks (``build_dataset``), inside a throw-away GX file project whose Data Docs site
is the release's ``data_docs/`` folder. The results are stored under a fixed run identifier
(the release id, and the time of the year's last delivery), so the same warehouse gives the
same files. Then the generated pages are made to work offline and stay stable:

- every CDN address is replaced by the relative path of a file copied from ``node_modules``
  into ``data_docs/static/vendor/`` (``vendor.py``); ``integrity``/``crossorigin`` go (a
  local file needs neither), an address nobody mapped stops the export;
- GX's tracking logo (a remote image with the date and the context id) becomes the local logo,
  its newsletter footer and links to its web site are removed;
- the random ids GX gives to collapsible blocks are renumbered.

Personal data (suites with ``sensitivity: personal``, the HR sources) is validated with no
example list, and the stored results keep counts only: no value, no row, no pseudonym.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.exports.common import table_exists
from dagster_project.exports.vendor import CDN_FILES, VendorFile, check_installed, copy_vendor_files

SITE = "data_docs"
RESULTS = "validation"
BATCH_IDENTIFIER = "entrepot"
DATA_CONTEXT_ID = "00000000-0000-4000-8000-000000000000"  # fixed: it shows up in pages
GX_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"

# Counts only for personal data (no observed value: it may be an age, a date...)
_PERSONAL_KEYS = (
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
    "missing_count",
    "missing_percent",
)
_TABLE_LEVEL = ("expect_table_row_count", "expect_table_column_count", "expect_column_to_exist")
_PSEUDONYM = re.compile(r"\b[0-9a-fA-F]{16}\b")
_MASK = "[masqué]"
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_TAG = re.compile(r"<(a|link|script|img)\b[^>]*>", re.IGNORECASE)
_ATTR_URL = re.compile(r"""\s(src|href)\s*=\s*(["'])(https?:)?//([^"']*)\2""", re.IGNORECASE)
_SRI = re.compile(r"""\s(integrity|crossorigin)(\s*=\s*(["'])[^"']*\3)?""", re.IGNORECASE)
_NEWSLETTER = re.compile(r"<footer>\s*<p>\s*Stay current.*?</footer>", re.DOTALL)
_CSS_REMOTE = re.compile(r"""url\(\s*(['"]?)(https?:)?//[^'")]*\1\s*\)""", re.IGNORECASE)
_LOCAL_STATIC = re.compile(r"""\s(src|href)\s*=\s*(["'])((?:\.\./|\./)*static/[^"'?#]*)\2""")


class ExternalReference(RuntimeError):
    """A generated page loads something from the network that no rule rewrites."""


def _gx_config(site: Path) -> str:
    return f"""config_version: 4.0
plugins_directory: plugins/
stores:
  expectations_store:
    class_name: ExpectationsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: expectations/
  validation_results_store:
    class_name: ValidationResultsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: validations/
  checkpoint_store:
    class_name: CheckpointStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      suppress_store_backend_id: true
      base_directory: checkpoints/
  validation_definition_store:
    class_name: ValidationDefinitionStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: validation_definitions/
expectations_store_name: expectations_store
validation_results_store_name: validation_results_store
checkpoint_store_name: checkpoint_store
data_docs_sites:
  publication:
    class_name: SiteBuilder
    show_how_to_buttons: false
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: {json.dumps(str(site))}
    site_index_builder:
      class_name: DefaultSiteIndexBuilder
analytics_enabled: false
data_context_id: {DATA_CONTEXT_ID}
progress_bars:
  globally: false
"""


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


def scrub(value: Any) -> Any:
    """Mask anything shaped like a pseudonym in the strings of a JSON value (not in numbers:
    the 16 decimals of a percentage look like one)."""
    if isinstance(value, str):
        return _PSEUDONYM.sub(_MASK, value)
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    return value


def _content_fingerprint(df) -> str:
    """MD5 of the rows whatever their order (a release is the same bytes in any warehouse)."""
    import hashlib

    import pandas as pd

    hashes = sorted(pd.util.hash_pandas_object(df, index=False).tolist())
    return hashlib.md5(repr(hashes).encode(), usedforsecurity=False).hexdigest()


def _clean_result(raw: dict, personal: bool, load_time: str, ids: dict[str, str]) -> dict:
    """A GX validation result (JSON dict) without time of day, paths, or personal values;
    ``ids`` maps the ids GX gave the expectations to the suite's stable ones."""
    out = json.loads(json.dumps(raw, default=str))
    meta = out.setdefault("meta", {})
    markers = meta.get("batch_markers") or {}
    if "ge_load_time" in markers:
        markers["ge_load_time"] = load_time
    if personal:
        markers.pop("pandas_data_fingerprint", None)
    for item in out.get("results", []):
        config = item.get("expectation_config") or {}
        if config.get("id") in ids:
            config["id"] = ids[config["id"]]
        kind = str(config.get("type") or "")
        result = item.get("result") or {}
        if personal:
            kept = {k: result[k] for k in _PERSONAL_KEYS if k in result}
            if kind.startswith(_TABLE_LEVEL) and "observed_value" in result:
                kept["observed_value"] = result["observed_value"]  # a row or column count
            item["result"] = kept
        exception = item.get("exception_info") or {}
        if isinstance(exception, dict) and "exception_traceback" in exception:
            exception["exception_traceback"] = None
            if personal and exception.get("raised_exception"):
                exception["exception_message"] = "erreur d'évaluation"
    return scrub(out) if personal else out


def _run_outcomes(con: duckdb.DuckDBPyConnection) -> tuple[str | None, dict[str, bool]]:
    """Run id of the last recorded checks and whether each suite passed in it."""
    if not table_exists(con, "audit.check_results"):
        return None, {}
    row = con.execute(
        "select run_id from audit.check_results group by run_id "
        "order by max(checked_at) desc, run_id limit 1"
    ).fetchone()
    if not row:
        return None, {}
    outcomes = dict(
        con.execute(
            "select check_name, bool_and(passed) from audit.check_results where run_id = ? "
            "group by check_name",
            [row[0]],
        ).fetchall()
    )
    return row[0], outcomes


def _dump(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n",
        encoding="utf-8",
    )
    return path


# --------------------------------------------------------------------------------------------
# Offline pages
# --------------------------------------------------------------------------------------------


def _relative(target: str, page: Path, site: Path) -> str:
    return Path(os.path.relpath(site / target, page.parent)).as_posix()


def _rewrite_page(page: Path, site: Path, used: set[VendorFile]) -> None:
    html = page.read_text(encoding="utf-8")
    html = _NEWSLETTER.sub("", html)

    def fix_tag(match: re.Match) -> str:
        tag = match.group(0)
        name = match.group(1).lower()

        def fix_attr(attr: re.Match) -> str:
            scheme = attr.group(3) or "https:"
            url = f"{scheme}//{attr.group(4)}"
            quote = attr.group(2)
            if url in CDN_FILES:
                item = VendorFile(*CDN_FILES[url])
                used.add(item)
                return f" {attr.group(1)}={quote}{_relative(item.relative, page, site)}{quote}"
            if url.startswith(GX_ASSETS):
                image = url[len(GX_ASSETS) :].split("?", 1)[0]
                local = f"static/images/{image}"
                if (site / local).is_file():
                    return f" {attr.group(1)}={quote}{_relative(local, page, site)}{quote}"
                return ""
            if name == "a":
                return ""  # a link to a web site: the text stays, without the link
            raise ExternalReference(f"{page.relative_to(site)} : adresse externe {url}")

        tag = _ATTR_URL.sub(fix_attr, tag)
        return _SRI.sub("", tag) if name in ("link", "script") else tag

    html = _TAG.sub(fix_tag, html)
    html = _CSS_REMOTE.sub("none", html)  # styles inlined in <style> blocks

    def fix_static(attr: re.Match) -> str:
        # GX counts the folders of validation pages wrong for the favicon: point at the file
        if (page.parent / attr.group(3)).resolve().is_file():
            return attr.group(0)
        target = attr.group(3)[attr.group(3).index("static/") :]
        quote = attr.group(2)
        return f" {attr.group(1)}={quote}{_relative(target, page, site)}{quote}"

    html = _LOCAL_STATIC.sub(fix_static, html)
    numbers: dict[str, str] = {}
    html = _UUID4.sub(lambda m: numbers.setdefault(m.group(0), f"n{len(numbers) + 1}"), html)
    page.write_text(html, encoding="utf-8")


def _rewrite_styles(site: Path) -> None:
    for css in sorted((site / "static").rglob("*.css")):
        if "vendor" in css.relative_to(site).parts:
            continue
        text = css.read_text(encoding="utf-8")
        fixed = _CSS_REMOTE.sub("none", text)
        if fixed != text:
            css.write_text(fixed, encoding="utf-8")


def _prune_images(site: Path) -> None:
    """Drop the images of GX's static folder that no page or style uses (2.5 MB of gifs)."""
    images = site / "static" / "images"
    if not images.is_dir():
        return
    texts = [p.read_text(encoding="utf-8") for p in site.rglob("*.html")]
    texts += [p.read_text(encoding="utf-8") for p in (site / "static").rglob("*.css")]
    everything = "\n".join(texts)
    for image in sorted(images.iterdir()):
        if image.is_file() and f"images/{image.name}" not in everything:
            image.unlink()


def external_references(site: Path) -> list[str]:
    """Addresses a page or style of the site would load from the network (empty when offline)."""
    found = []
    for page in sorted(site.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        for tag in _TAG.finditer(html):
            for attr in _ATTR_URL.finditer(tag.group(0)):
                found.append(f"{page.relative_to(site)}: {attr.group(0).strip()}")
        for match in _CSS_REMOTE.finditer(html):
            found.append(f"{page.relative_to(site)}: {match.group(0)}")
    for css in sorted(site.rglob("*.css")):
        if "vendor" in css.relative_to(site).parts:
            continue
        for match in _CSS_REMOTE.finditer(css.read_text(encoding="utf-8")):
            found.append(f"{css.relative_to(site)}: {match.group(0)}")
    return found


def make_offline(site: Path, modules: Path | None = None) -> list[Path]:
    """Rewrite the pages of a built site to local files; returns the vendored files."""
    used: set[VendorFile] = set()
    for page in sorted(site.rglob("*.html")):
        _rewrite_page(page, site, used)
    _rewrite_styles(site)
    _prune_images(site)
    vendored = copy_vendor_files(site, sorted(used, key=lambda f: (f.package, f.path)), modules)
    left = external_references(site)
    if left:
        raise ExternalReference("adresses externes restantes : " + " ; ".join(left[:5]))
    return vendored


# --------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------


def write_data_docs(
    con: duckdb.DuckDBPyConnection,
    release_id: str,
    folder: Path,
    run_time: dt.datetime,
    suites: list[str] | None = None,
) -> list[Path]:
    """Validate the suites, write ``validation/*.json`` and the offline ``data_docs/`` site."""
    modules = check_installed()  # before the 3 s GX import: say early what is missing
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from dagster_project.validation import all_suites
    from dagster_project.validation.datasets import MissingTable, build_dataset
    from dagster_project.validation.suites import load_suite

    site = folder / SITE
    results_dir = folder / RESULTS
    names = list(suites) if suites is not None else all_suites()
    run_id = RunIdentifier(run_name=release_id, run_time=run_time)
    load_time = run_time.strftime("%Y%m%dT%H%M%S.%fZ")
    _last_run, run_outcomes = _run_outcomes(con)  # its run id stays out of release files
    schema = ExpectationSuiteValidationResultSchema()
    written: list[Path] = []
    summary: list[dict] = []
    project = Path(tempfile.mkdtemp(prefix="kpi-gx-"))
    try:
        (project / "gx").mkdir()
        (project / "gx" / "great_expectations.yml").write_text(_gx_config(site), encoding="utf-8")
        context = gx.get_context(mode="file", project_root_dir=str(project))
        asset = context.data_sources.add_pandas("entrepot").add_dataframe_asset("donnees")
        batch_definition = asset.add_batch_definition_whole_dataframe("table_entiere")
        for name in names:
            suite = load_suite(name)
            meta = suite.get("meta") or {}
            personal = meta.get("sensitivity") == "personal"
            gx_suite = context.suites.add(gx.ExpectationSuite(**suite))
            # GX gives the expectations new random ids: map them back to the suite's own
            ids = {
                str(added.id): str(original.get("id") or f"{name}/{index}")
                for index, (added, original) in enumerate(
                    zip(gx_suite.expectations, suite.get("expectations") or [], strict=False)
                )
            }
            entry = {
                "suite": name,
                "asset": "/".join(meta.get("asset") or []),
                "blocking": bool(meta.get("blocking", True)),
                "severity": meta.get("severity"),
                "personal": personal,
                "passed_in_run": run_outcomes.get(name),
            }
            try:
                df = build_dataset(con, meta["dataset"])
            except MissingTable as exc:
                entry.update(success=None, skipped=f"table {exc.table} absente de l'entrepôt")
            except Exception as exc:  # columns missing: the pipeline's check failed too
                detail = "" if personal else f" ({type(exc).__name__}: {exc})"
                entry.update(success=None, skipped=f"préparation impossible{detail}")
            else:
                batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
                result_format = {
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": 0 if personal else 20,
                }
                raw = batch.validate(gx_suite, result_format=result_format).to_json_dict()
                clean = _clean_result(raw, personal, load_time, ids)
                markers = clean.get("meta", {}).get("batch_markers") or {}
                if "pandas_data_fingerprint" in markers:  # GX's depends on the row order
                    markers["pandas_data_fingerprint"] = _content_fingerprint(df)
                key = ValidationResultIdentifier(
                    expectation_suite_identifier=ExpectationSuiteIdentifier(name=name),
                    run_id=run_id,
                    batch_identifier=BATCH_IDENTIFIER,
                )
                context.validation_results_store.set(key, schema.load(clean))
                written.append(_dump(results_dir / f"{name}.json", clean))
                entry.update(
                    success=bool(clean.get("success")),
                    rows=len(df),
                    statistics=clean.get("statistics") or {},
                )
            summary.append(entry)
        if site.exists():
            shutil.rmtree(site)
        context.build_data_docs(site_names=["publication"])
    finally:
        shutil.rmtree(project, ignore_errors=True)
    make_offline(site, modules)
    written.append(
        _dump(
            results_dir / "index.json",
            {
                "release_id": release_id,
                "run_name": release_id,
                "run_time": run_time.isoformat(),
                "note": (
                    "Suites de contrôle rejouées sur l'entrepôt au moment du gel ; "
                    "passed_in_run : résultat de la même suite lors de la dernière exécution "
                    "du traitement (audit.check_results). Données personnelles : "
                    "décomptes seulement."
                ),
                "suites": summary,
            },
        )
    )
    written += [p for p in site.rglob("*") if p.is_file()]
    return sorted(set(written))
