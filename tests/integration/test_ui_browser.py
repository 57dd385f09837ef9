"""`kpi ui`: the Dagster web interface, opened in headless Chromium.

The slow test starts `kpi ui` on a free local port (its own process group, a fresh
DAGSTER_HOME and warehouse/sources paths in the test's folder), waits for the server, checks
through the GraphQL API and the rendered page that the ingestion assets and the marts are
listed, takes a screenshot of the asset graph, then stops the server as Ctrl-C would and
checks that no process is left. It is skipped when Chromium is not installed (`.ci/run`
installs Debian's `chromium`). The command's options and the way it stops a process group
are tested in tests/unit/cli/test_ui.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.servers import descendants, free_port, running

from dagster_project.cli.ui import group_alive
from dagster_project.settings import PROJECT_ROOT

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
SERVER_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 90
EXPECTED_ASSETS = ("raw/eau_volumes", "marts/fct_indicator_values", "marts/p2_indicators")


def _chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (localhost)
        return response.read()


def _wait_for_server(base: str, process: subprocess.Popen, log: Path) -> dict:
    deadline = time.monotonic() + SERVER_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"kpi ui exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            return json.loads(_get(f"{base}/server_info"))
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            time.sleep(1.0)
    pytest.fail(f"no answer from {base}/server_info in {SERVER_TIMEOUT_SECONDS} s")


def _graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (localhost)
        payload = json.loads(response.read())
    assert "errors" not in payload, payload
    return payload["data"]


def _chromium_run(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """One headless Chromium call in its own process group, removed afterwards."""
    profile.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=120)
    finally:
        if group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])


def _page_text(dom: str) -> str:
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


def test_ui_shows_the_asset_graph_in_a_browser(tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it)")

    sources = tmp_path / "sources"
    shutil.copytree(PROJECT_ROOT / "sources" / "2025", sources / "2025")
    home = tmp_path / "dagster_home"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        KPI_SOURCES=str(sources),
        KPI_WAREHOUSE=str(tmp_path / "warehouse.duckdb"),
        KPI_RELEASES=str(tmp_path / "releases"),
        DAGSTER_HOME=str(home),
        DAGSTER_DISABLE_TELEMETRY="1",
    )
    log = tmp_path / "kpi_ui.log"
    command = [
        sys.executable,
        "-c",
        "import sys; from dagster_project.cli import main; sys.exit(main())",
        "ui",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    with log.open("wb") as log_handle:
        server = subprocess.Popen(
            command,
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal would give it
        )
    processes: set[int] = set()
    try:
        info = _wait_for_server(base, server, log)
        assert info["dagster_webserver_version"]
        assert "telemetry:\n  enabled: false" in (home / "dagster.yaml").read_text()

        # the asset list, through the API the page itself uses
        nodes = _graphql(base, "{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
        groups = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in nodes}
        for key in EXPECTED_ASSETS:
            assert key in groups, key
        assert groups["raw/eau_volumes"] == "ingestion"
        assert groups["campaign/status"] == "campaign"

        # the asset catalogue as the browser renders it (tall window: the list is virtual)
        dump = _chromium_run(
            chromium,
            tmp_path / "chromium-catalog",
            "--window-size=1600,9000",
            "--virtual-time-budget=30000",
            "--dump-dom",
            f"{base}/assets",
        )
        page = _page_text(dump.stdout.decode("utf-8", "replace"))
        for key in EXPECTED_ASSETS:
            schema, name = key.split("/")
            assert re.search(rf"{schema}\s*/\s*{name}", page), f"{key} not on the page"

        # automation page: the sensor and the schedule are there to be switched on
        dump = _chromium_run(
            chromium,
            tmp_path / "chromium-automation",
            "--window-size=1600,3000",
            "--virtual-time-budget=20000",
            "--dump-dom",
            f"{base}/automation",
        )
        page = _page_text(dump.stdout.decode("utf-8", "replace"))
        assert "new_deliveries" in page and "campaign_status_daily" in page

        # a picture of the asset graph
        screenshot = tmp_path / "asset_graph.png"
        _chromium_run(
            chromium,
            tmp_path / "chromium-graph",
            "--window-size=1600,1000",
            "--virtual-time-budget=20000",
            f"--screenshot={screenshot}",
            f"{base}/asset-groups",
        )
        assert screenshot.exists(), "no screenshot written"
        assert _png_size(screenshot) == (1600, 1000)
        assert screenshot.stat().st_size > 20_000, "screenshot looks blank"
        processes = descendants(server.pid)
        assert processes, "kpi ui started no dagster process"
    finally:
        processes |= descendants(server.pid)
        started = time.monotonic()
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C in the terminal running `kpi ui`
        try:
            server.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            for pid in {server.pid, *processes}:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
            server.wait()
            pytest.fail(f"kpi ui did not stop in {STOP_TIMEOUT_SECONDS} s after Ctrl-C")
        stopped = time.monotonic() - started
    print(f"\n[kpi ui] stopped {stopped:.1f} s after Ctrl-C; screenshot {screenshot}")
    assert server.returncode == 0, log.read_text()[-3000:]
    deadline = time.monotonic() + 10
    while any(running(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in processes if running(p)], "processes left after kpi ui stopped"
    with pytest.raises(OSError):
        _get(f"{base}/server_info", timeout=2)
