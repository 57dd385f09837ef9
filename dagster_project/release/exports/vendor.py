"""Static files of the Data Docs, taken from the npm packages instead of the CDNs.

Great Expectations' Data Docs templates load Bootstrap, jQuery, Popper, Bootstrap Table,
the datepicker, Font Awesome and Vega from CDNs: without internet the pages render unstyled.
``package.json`` (exact versions) and ``package-lock.json`` pin the same libraries on the npm
registry; ``npm ci`` (``make setup``) installs them in ``node_modules/``. Each release copies
the few files the pages use into ``data_docs/static/vendor/<package>/<path>`` and the HTML is
rewritten to point there (``data_docs.py``).

``CDN_FILES`` maps every CDN address found in GX 1.24's templates to a package and a file of
that package. An address missing from the map makes the export fail (a GX upgrade that adds a
library must add it here), so a release never ships a page that needs the network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from dagster_project.settings import PROJECT_ROOT

PACKAGE_JSON = PROJECT_ROOT / "package.json"
VENDOR_PREFIX = "static/vendor"

# CDN address (as written in GX's templates) -> (npm package, file inside the package).
# Differences with the CDN, on purpose:
# - popper.js: GX loads 1.12.9, which bootstrap 4.3.1 does not accept (peer dependency
#   ^1.14.7); the lock pins 1.16.1, the last 1.x, same API.
# - bootstrap-table filter-control CSS: GX mixes 1.19.0 and 1.19.1; the 1.19.1 files serve both.
# - vega@5, vega-lite@5, vega-embed@6: the CDN serves the newest release of the major version;
#   the lock pins one (see package.json).
CDN_FILES: dict[str, tuple[str, str]] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap",
        "dist/css/bootstrap.min.css",
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap",
        "dist/js/bootstrap.min.js",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table",
        "dist/bootstrap-table.min.css",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table",
        "dist/bootstrap-table.min.js",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "bootstrap-table",
        "dist/extensions/filter-control/bootstrap-table-filter-control.css",
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "bootstrap-table",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker",
        "dist/css/bootstrap-datepicker.min.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker",
        "dist/js/bootstrap-datepicker.min.js",
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "@forevolve/bootstrap-dark",
        "dist/css/bootstrap-prefers-dark.css",
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": ("jquery", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js",
        "dist/umd/popper.min.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "@fortawesome/fontawesome-free",
        "css/all.min.css",
    ),
    "https://cdn.jsdelivr.net/npm/vega@5": ("vega", "build/vega.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": ("vega-lite", "build/vega-lite.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": ("vega-embed", "build/vega-embed.min.js"),
}

_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")
_LICENSE = re.compile(r"^(licen[cs]e|copying)(\.(md|txt))?$", re.IGNORECASE)


class VendorMissing(RuntimeError):
    """The npm packages are not installed (or not at the pinned versions)."""


@dataclass(frozen=True)
class VendorFile:
    package: str
    path: str  # inside the package

    @property
    def relative(self) -> str:
        """Where the file goes, relative to the Data Docs root."""
        return f"{VENDOR_PREFIX}/{self.package}/{self.path}"


def node_modules_dir() -> Path:
    """``node_modules`` of the project, or the folder named by ``KPI_NODE_MODULES``."""
    return Path(os.environ.get("KPI_NODE_MODULES") or PROJECT_ROOT / "node_modules")


def pinned_versions() -> dict[str, str]:
    return dict(json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))["dependencies"])


def check_installed(modules: Path | None = None) -> Path:
    """The node_modules folder, once every package of CDN_FILES is there at its pinned version."""
    modules = modules or node_modules_dir()
    pins = pinned_versions()
    problems = []
    for package in sorted({p for p, _ in CDN_FILES.values()}):
        manifest = modules / package / "package.json"
        if not manifest.exists():
            problems.append(f"{package} absent")
            continue
        version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
        if version != pins.get(package):
            problems.append(f"{package} {version} au lieu de {pins.get(package)}")
    if problems:
        raise VendorMissing(
            "fichiers statiques des Data Docs indisponibles dans "
            f"{modules} ({'; '.join(problems)}) : lancez `make setup` (npm ci)"
        )
    return modules


def _css_dependencies(source: Path, package_root: Path) -> list[Path]:
    """Files a stylesheet loads with url(...) (fonts), inside its own package."""
    found = []
    for _, ref in _CSS_URL.findall(source.read_text(encoding="utf-8", errors="replace")):
        ref = ref.split("?", 1)[0].split("#", 1)[0]
        if not ref or ref.startswith(("data:", "http:", "https:", "//")):
            continue
        target = (source.parent / ref).resolve()
        if target.is_file() and target.is_relative_to(package_root.resolve()):
            found.append(target)
    return found


def copy_vendor_files(
    site: Path, files: list[VendorFile], modules: Path | None = None
) -> list[Path]:
    """Copy the files (plus the fonts their CSS needs and each package's licence) into the site."""
    modules = check_installed(modules)
    written: list[Path] = []
    packages = sorted({f.package for f in files})
    queue: list[tuple[str, Path]] = []
    for item in sorted(set(files), key=lambda f: (f.package, f.path)):
        source = modules / item.package / item.path
        if not source.is_file():
            raise VendorMissing(f"{item.package}/{item.path} absent de {modules}")
        queue.append((item.package, source))
    for package in packages:
        root = modules / package
        queue += [(package, p) for p in sorted(root.iterdir()) if _LICENSE.match(p.name)]
    seen: set[Path] = set()
    while queue:
        package, source = queue.pop(0)
        resolved = source.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        root = (modules / package).resolve()
        target = site / VENDOR_PREFIX / package / resolved.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(resolved, target)
        written.append(target)
        if resolved.suffix == ".css":
            queue += [(package, dep) for dep in _css_dependencies(resolved, root)]
    return sorted(written)
