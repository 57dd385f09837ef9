"""Evidence for auditors: the expectation suites run on the release's warehouse, kept as
Great Expectations Data Docs (``data_docs/``) and JSON results (``validation/``).

The results are those the pipeline's checks recorded (``audit.check_evidence``, see
``dagster_project.quality.evidence``): the datasets are not rebuilt and nothing is
validated again, except a suite without a usable recorded result (a warehouse checked before
results were recorded, a suite changed since its check, data that could not be prepared
then), which is validated again here exactly as its check does (``run_suite``).
They are stored in a throw-away GX file project whose Data Docs site is the release's
``data_docs/`` folder, under a fixed run identifier (the release id, and the time of the
year's last delivery), so the same warehouse gives the same files. Then the generated pages
are made to work offline and stay stable:

- every CDN address is replaced by the relative path of a file copied from ``node_modules``
  into ``data_docs/static/vendor/`` (``vendor.py``); ``integrity``/``crossorigin`` go (a
  local file needs neither), an address nobody mapped stops the export;
- GX's tracking logo (a remote image with the date and the context id) becomes the local logo,
  its newsletter footer and links to its web site are removed;
- the random ids GX gives to collapsible blocks are renumbered.

Personal data (suites with ``sensitivity: personal``, the HR sources) is validated with no
example list, and the kept results hold counts only: no value, no row, no pseudonym (already
when recorded, and again here).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.quality.evidence import (
    clean_result,
    recorded_evidence,
    scrub,
    suite_digest,
)
from dagster_project.release.exports.vendor import (
    CDN_FILES,
    VendorFile,
    check_installed,
    copy_vendor_files,
)

__all__ = ["ExternalReference", "external_references", "make_offline", "scrub", "write_data_docs"]

SITE = "data_docs"
RESULTS = "validation"
BATCH_IDENTIFIER = "entrepot"
DATA_CONTEXT_ID = "00000000-0000-4000-8000-000000000000"  # fixed: it shows up in pages
GX_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"

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


def _run_outcomes(con: duckdb.DuckDBPyConnection) -> tuple[str | None, dict[str, bool]]:
    """Run id of the last pipeline run and whether each suite passed in the results that hold
    for it (``release.gate.run_checks``: its own and, for a run limited to some sources, the
    other suites' latest), as the freeze judges them."""
    from dagster_project.release.gate import latest_run_id, run_checks

    run_id = latest_run_id(con)
    if run_id is None:
        return None, {}
    outcomes: dict[str, bool] = {}
    for check in run_checks(con, run_id):
        outcomes[check["check"]] = outcomes.get(check["check"], True) and check["passed"]
    return run_id, outcomes


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


def _suite_entry(name: str, meta: dict, personal: bool, passed_in_run: bool | None) -> dict:
    return {
        "suite": name,
        "asset": "/".join(meta.get("asset") or []),
        "blocking": bool(meta.get("blocking", True)),
        "severity": meta.get("severity"),
        "personal": personal,
        "passed_in_run": passed_in_run,
    }


def _validate_now(con: duckdb.DuckDBPyConnection, name: str) -> tuple[dict | None, int, str]:
    """Validate a suite on the warehouse as its check does, for a suite without a usable
    recorded result: (cleaned GX result or None, rows, why there is none)."""
    from dagster_project.quality import run_suite

    outcome = run_suite(con, name)
    if not outcome.evidence_json:  # the data could not be prepared
        return None, 0, outcome.failures[0] if outcome.failures else "préparation impossible"
    return json.loads(outcome.evidence_json), int(outcome.statistics.get("rows", 0)), ""


def gather_data_docs(
    con: duckdb.DuckDBPyConnection, suites: list[str] | None = None
) -> list[dict[str, Any]]:
    """What the Data Docs show, read from the warehouse: for each suite, the suite, its
    summary entry and the GX result the checks recorded (``audit.check_evidence``); a suite
    without a usable recorded result is validated again here. Plain JSON data: the rendering
    (``render_data_docs``) needs no warehouse and can run in another process."""
    from dagster_project.quality import all_suites
    from dagster_project.quality.suites import load_suite

    names = list(suites) if suites is not None else all_suites()
    _last_run, run_outcomes = _run_outcomes(con)  # its run id stays out of release files
    recorded = recorded_evidence(con, names)
    items: list[dict[str, Any]] = []
    for name in names:
        suite = load_suite(name)
        meta = suite.get("meta") or {}
        personal = meta.get("sensitivity") == "personal"
        entry = _suite_entry(name, meta, personal, run_outcomes.get(name))
        evidence = recorded.get(name)
        if (
            evidence is not None
            and evidence.result is not None
            and evidence.suite_sha256 == suite_digest(suite)
        ):
            raw, rows, skipped = evidence.result, evidence.rows or 0, ""
            entry["validated_in"] = "run"
        else:
            raw, rows, skipped = _validate_now(con, name)
            entry["validated_in"] = "freeze"
        items.append(
            {
                "suite": suite,
                "personal": personal,
                "entry": entry,
                "raw": raw,
                "rows": rows,
                "skipped": skipped,
            }
        )
    return items


def render_data_docs(
    items: list[dict[str, Any]],
    release_id: str,
    folder: Path,
    run_time: dt.datetime,
    modules: Path | None = None,
) -> list[Path]:
    """Write ``validation/*.json`` and the offline ``data_docs/`` site from gathered results."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    site = folder / SITE
    results_dir = folder / RESULTS
    run_id = RunIdentifier(run_name=release_id, run_time=run_time)
    load_time = run_time.strftime("%Y%m%dT%H%M%S.%fZ")
    schema = ExpectationSuiteValidationResultSchema()
    written: list[Path] = []
    summary: list[dict] = []
    project = Path(tempfile.mkdtemp(prefix="kpi-gx-"))
    try:
        (project / "gx").mkdir()
        (project / "gx" / "great_expectations.yml").write_text(_gx_config(site), encoding="utf-8")
        context = gx.get_context(mode="file", project_root_dir=str(project))
        for item in items:
            entry = dict(item["entry"])
            name = entry["suite"]
            # for the suite's page (the results carry the suite's own expectation ids: the
            # checks validate the suite as loaded, not this copy, to which GX gives new ids)
            context.suites.add(gx.ExpectationSuite(**copy.deepcopy(item["suite"])))
            raw = item["raw"]
            if raw is None:
                entry.update(success=None, skipped=item["skipped"])
            else:
                clean = clean_result(raw, item["personal"], load_time)
                key = ValidationResultIdentifier(
                    expectation_suite_identifier=ExpectationSuiteIdentifier(name=name),
                    run_id=run_id,
                    batch_identifier=BATCH_IDENTIFIER,
                )
                context.validation_results_store.set(key, schema.load(clean))
                written.append(_dump(results_dir / f"{name}.json", clean))
                entry.update(
                    success=bool(clean.get("success")),
                    rows=item["rows"],
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
                    "Résultats des suites de contrôle : ceux du dernier contrôle de chaque "
                    "suite pendant le traitement (validated_in : run, audit.check_evidence), "
                    "sinon la suite est rejouée sur l'entrepôt au moment du gel "
                    "(validated_in : freeze ; par exemple si elle a changé depuis) ; "
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


def write_data_docs(
    con: duckdb.DuckDBPyConnection,
    release_id: str,
    folder: Path,
    run_time: dt.datetime,
    suites: list[str] | None = None,
) -> list[Path]:
    """Write ``validation/*.json`` and the offline ``data_docs/`` site from the results the
    checks recorded (``audit.check_evidence``); a suite without one is validated again."""
    modules = check_installed()  # before the 3 s GX import: say early what is missing
    items = gather_data_docs(con, suites)
    return render_data_docs(items, release_id, Path(folder), run_time, modules)


WRITTEN = "written.json"  # in the child's work folder: the files it wrote


class DataDocsProcess:
    """``render_data_docs`` in a child process, so that GX's import (5-8 s) and the site's
    rendering happen on the other core while the caller writes the workbook and the report
    (``write_release_exports``). Same function, same files; ``wait()`` raises if it failed.
    The child dies with its parent (Linux ``PR_SET_PDEATHSIG``): a killed freeze leaves no
    process writing into its abandoned folder."""

    def __init__(
        self,
        items: list[dict[str, Any]],
        release_id: str,
        folder: Path,
        run_time: dt.datetime,
        modules: Path | None,
    ):
        self._dir = Path(tempfile.mkdtemp(prefix="kpi-data-docs-"))
        payload = {
            "items": items,
            "release_id": release_id,
            "folder": str(folder),
            "run_time": run_time.isoformat(),
            "modules": str(modules) if modules is not None else None,
            "parent": os.getpid(),
        }
        (self._dir / "payload.json").write_text(json.dumps(payload), encoding="utf-8")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "dagster_project.release.exports.data_docs", str(self._dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def wait(self) -> list[Path]:
        try:
            output, _ = self._process.communicate()
            if self._process.returncode != 0:
                raise RuntimeError(
                    "les Data Docs n'ont pas pu être écrites (processus "
                    f"{self._process.returncode}) :\n"
                    + output.decode("utf-8", errors="replace")[-4000:]
                )
            written = json.loads((self._dir / WRITTEN).read_text(encoding="utf-8"))
            return [Path(p) for p in written]
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self._process.kill()
        self._process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _main(argv: list[str]) -> int:
    work = Path(argv[0])
    payload = json.loads((work / "payload.json").read_text(encoding="utf-8"))
    _die_with_parent(payload["parent"])
    written = render_data_docs(
        payload["items"],
        payload["release_id"],
        Path(payload["folder"]),
        dt.datetime.fromisoformat(payload["run_time"]),
        Path(payload["modules"]) if payload["modules"] else None,
    )
    (work / WRITTEN).write_text(json.dumps([str(p) for p in written]), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
