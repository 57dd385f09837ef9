"""A release's report and Data Docs render offline in headless Chromium (screenshots; the
vendored scripts run, the stylesheets are local files). The release is
``support.exports.write_release``'s; skipped without /usr/bin/chromium.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from support.exports import write_release

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def release(tmp_path_factory, contracts):
    return write_release(tmp_path_factory.mktemp("exports"), contracts)


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium absent (/usr/bin/chromium) : apt-get install chromium"
)
def test_report_and_data_docs_render_offline_in_chromium(release, tmp_path):
    folder = release["folder"]
    shots = {
        "rapport.png": folder / "rapport" / "index.html",
        "priorite.png": folder / "rapport" / "priorite-2.html",
        "data_docs.png": folder / "data_docs" / "index.html",
    }
    for name, page in shots.items():
        target = tmp_path / name
        _chromium(
            tmp_path / "profile",
            f"--screenshot={target}",
            "--window-size=1280,900",
            page.as_uri(),
        )
        assert target.exists() and target.stat().st_size > 10_000, name
    # Data Docs: the vendored scripts ran (bootstrap-table wraps the index table, which needs
    # jQuery and Bootstrap Table from static/vendor) and the stylesheets are local files.
    index = folder / "data_docs" / "index.html"
    dom = _chromium(
        tmp_path / "profile", "--dump-dom", "--virtual-time-budget=3000", index.as_uri()
    )
    log = dom.stderr[-2000:]
    assert "bootstrap-table" in dom.stdout and "fixed-table-container" in dom.stdout, log
    sheets = re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', dom.stdout)
    assert any(s.endswith("bootstrap.min.css") for s in sheets)
    for sheet in sheets:
        assert not sheet.startswith(("http:", "https:", "//")), sheet
        assert (index.parent / sheet).resolve().is_file(), sheet
