"""The collection portal, slow tests: `kpi portal` served by uvicorn on localhost.

- Under load: 20 uploads at once through the API — no error, no file lost, every verdict
  right.
- In a real browser (issue 17, point 8): headless Chromium, driven through chromedriver's
  W3C WebDriver API (tests/support/webdriver.py), walks through a department's delivery on a
  copy of the built demo campaign — log in, download the template, upload a bad workbook and
  read the table of problems, upload a good one, follow it until its figure is in the
  published copy — then the steering department's campaign page. Screenshots in the test's
  temporary folder (``captures/``). Skipped when chromium or chromedriver is absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import openpyxl
import pytest
from support.demo import DEMO_TODAY
from support.settings import SETTINGS_VARS
from support.webdriver import Browser, WebDriverError, chromedriver_path, chromium_path, free_port

from dagster_project.cli.ui import stop_group
from dagster_project.portal.app import create_app
from dagster_project.portal.core import PortalConfig
from dagster_project.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.slow

DEMO = PROJECT_ROOT / "sources" / "2025"
UPLOADS = 20
DEADLINE_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    import uvicorn

    sources = tmp_path / "sources"
    (sources / "2025").mkdir(parents=True)
    shutil.copy(DEMO / "campagne.yml", sources / "2025" / "campagne.yml")
    settings = Settings(
        sources_dir=sources,
        warehouse=tmp_path / "warehouse.duckdb",
        releases_dir=tmp_path / "releases",
        today="2026-01-31",
    )
    app = create_app(PortalConfig(settings, pipeline="capteur"))
    portal = app.state.portal
    portal.store.create_account(
        "water", "department", "un mot de passe solide", departments=("water",)
    )
    token = portal.store.create_token("water")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}", token, sources, portal
    server.should_exit = True
    thread.join(timeout=10)


def _post(url: str, token: str, path: Path) -> tuple[int, dict, float]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="fichier"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE_SECONDS) as response:
            return response.status, json.loads(response.read()), time.perf_counter() - started
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), time.perf_counter() - started


def test_twenty_concurrent_uploads(served, tmp_path):
    base, token, sources, portal = served
    good = tmp_path / "bon.xlsx"
    shutil.copy(DEMO / "water" / "eau_udi_2025.xlsx", good)
    bad = tmp_path / "mauvais.xlsx"
    wb = openpyxl.load_workbook(good)
    wb["UDI"]["C3"] = "Lens"
    wb.save(bad)
    files = [good if i % 2 == 0 else bad for i in range(UPLOADS)]
    url = f"{base}/api/v1/livraisons/2025/water/eau_udi"
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=UPLOADS) as pool:
        results = list(pool.map(lambda p: _post(url, token, p), files))
    wall = time.perf_counter() - started
    assert wall < DEADLINE_SECONDS
    statuses = [status for status, _body, _s in results]
    assert statuses == [200 if p is good else 422 for p in files], statuses
    for (_status, body, _s), path in zip(results, files, strict=True):
        assert body["accepte"] is (path is good)
        if path is bad:
            assert any(g["lignes"] == "3" and g["colonne"] == "Commune" for g in body["problemes"])
    delivered = sorted((sources / "2025" / "water").glob("eau_udi_2025_portail_*.xlsx"))
    assert len(delivered) == UPLOADS // 2  # no file lost, no rejected file in sources/
    assert all(p.read_bytes() == good.read_bytes() for p in delivered)
    assert not [p for p in (sources / "2025" / "water").iterdir() if p.name.startswith(".")]
    uploads = portal.store.uploads()
    assert len(uploads) == UPLOADS and len({u["upload_id"] for u in uploads}) == UPLOADS
    latencies = sorted(s for _st, _b, s in results)
    verdicts = sorted(u["verdict_seconds"] for u in uploads)
    print(
        f"\n{UPLOADS} dépôts simultanés en {wall:.2f} s ; réponse médiane "
        f"{statistics.median(latencies):.2f} s, max {latencies[-1]:.2f} s ; contrôle médian "
        f"{statistics.median(verdicts):.3f} s, max {verdicts[-1]:.3f} s"
    )


# --- in a real browser: a department's delivery, from login to the published figure ----------

DEPARTMENT, SOURCE, YEAR = "culture", "indicateurs_declares", 2025
INDICATOR = "petits_bonheurs_edition_dates"  # row 3 of the culture's declared workbook: 9
NEW_FIGURE = 10.0  # what the good workbook says instead
PAGE_TIMEOUT = 30  # a page, a verdict
PUBLISH_TIMEOUT = 300  # `kpi run --select indicateurs_declares` (about a minute here)


def _kpi(*args: str, env: dict, stdin: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "kpi"), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"kpi {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done


def _published_figure(warehouse: Path) -> tuple[float, str] | None:
    """(value, delivery ids) of the indicator's 2025 figure in the published copy, read-only;
    None while the copy cannot be opened (being replaced by the publication)."""
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return None
    try:
        return con.execute(
            "select value, delivery_ids from marts.fct_indicator_values "
            "where indicator_id = ? and year = ? and code_insee is null",
            [INDICATOR, YEAR],
        ).fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()


def _journal(state: Path) -> list[str]:
    path = state / "portail.sqlite"
    if not path.exists():
        return []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "select at, login, action, coalesce(source_id, ''), coalesce(detail, '') "
            "from journal order by id"
        ).fetchall()
    finally:
        con.close()
    return [" | ".join(str(v) for v in row) for row in rows]


def _wait_for_portal(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"kpi portal exited ({process.returncode}):\n{log.read_text()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(base + "/connexion", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"kpi portal not answering after 60 s:\n{log.read_text()}")


def _workbooks(delivered: Path, folder: Path) -> tuple[Path, Path]:
    """The demo's workbook with a figure that is not a number (bad), and re-delivered with
    the indicator's figure changed (good)."""
    folder.mkdir()
    bad, good = folder / "indicateurs_culture_errone.xlsx", folder / "indicateurs_culture.xlsx"
    for path, value in ((bad, "beaucoup"), (good, int(NEW_FIGURE))):
        wb = openpyxl.load_workbook(delivered)
        ws = wb["Indicateurs"]
        assert (ws["A3"].value, ws["C3"].value) == (INDICATOR, 9)
        ws["C3"] = value
        wb.save(path)
    return bad, good


@pytest.mark.slow
@pytest.mark.skipif(  # decided before the demo warehouse is built
    chromium_path() is None or chromedriver_path() is None,
    reason="chromium or chromedriver is not installed (apt-get install chromium "
    "chromium-driver; .ci/run does it)",
)
def test_department_walk_through_in_a_real_browser(demo_warehouse, tmp_path):
    assert demo_warehouse.returncode == 0, demo_warehouse.stdout + demo_warehouse.stderr
    demo = demo_warehouse.copy(tmp_path / "campagne")
    shutil.copy(DEMO / "campagne.yml", demo.sources / str(YEAR))  # who delivers what, when
    state = demo.warehouse.parent / ".portal"
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARS}
    env["DAGSTER_HOME"] = str(demo.dagster_home)
    where = ["--sources", str(demo.sources), "--warehouse", str(demo.warehouse)]
    delivered_dir = demo.sources / str(YEAR) / DEPARTMENT
    bad, good = _workbooks(delivered_dir / f"{SOURCE}_{YEAR}.xlsx", tmp_path / "classeurs")
    assert _published_figure(demo.warehouse)[0] == 9.0

    # accounts, through the command line: one per department of the campaign, and the steering
    created = _kpi(
        "portal", "account", "create", "--from-campaign", "--year", str(YEAR), *where, env=env
    )
    passwords = {  # « login<TAB>address<TAB>password », one line per department
        fields[0]: fields[2]
        for fields in (line.split("\t") for line in created.stdout.splitlines())
        if len(fields) == 3
    }
    assert DEPARTMENT in passwords, created.stdout
    steering_password = "pilotage-" + secrets.token_hex(8)
    _kpi(
        "portal", "account", "create", "pilotage", "--role", "steering",
        "--name", "Pascale Lefebvre", "--password-stdin", *where,
        env=env, stdin=steering_password + "\n",
    )  # fmt: skip

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "portail.log"
    with open(log, "wb") as out:
        portal = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "kpi"),
                "portal",
                "--host", "127.0.0.1",
                "--port", str(port),
                *where,
                "--today", DEMO_TODAY,
                "--pipeline", "kpi-run",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,
        )  # fmt: skip
    captures = tmp_path / "captures"
    shots: list[Path] = []
    browser: Browser | None = None

    def shot(name: str) -> None:
        shots.append(browser.screenshot(captures / f"{len(shots) + 1:02d}-{name}.png"))

    def login(account: str, password: str, home: str) -> None:
        browser.open(base + "/connexion")
        assert browser.title.startswith("Connexion")
        browser.type("#identifiant", account)
        browser.type("#mot_de_passe", password)
        browser.click("main form button[type=submit]")
        browser.wait_until(lambda: browser.url == base + home, PAGE_TIMEOUT, f"{account}: {home}")

    def upload(path: Path) -> str:
        """From the source page or an upload's page (« ← Retour à la source »): the verdict."""
        if not browser.find_all("#fichier"):
            browser.click(f'a[href="/direction/{YEAR}/{DEPARTMENT}/{SOURCE}"]')
            browser.wait_until(lambda: browser.find_all("#fichier"), PAGE_TIMEOUT, "upload form")
        browser.type("#fichier", str(path.resolve()))  # the file chooser takes a path
        browser.click('form[action$="/depot"] button[type=submit]')
        return browser.wait_until(
            lambda: "/depots/" in browser.url and browser.text("#verdict"),
            PAGE_TIMEOUT,
            f"verdict on {path.name}",
        )

    timings: dict[str, float] = {}
    try:
        _wait_for_portal(base, portal, log)
        browser = Browser.start(
            tmp_path / "telechargements", log=tmp_path / "chromedriver.log", window=(1680, 1300)
        )

        # 1. a department logs in and finds its source
        browser.open(base + "/connexion")
        shot("connexion")
        login(DEPARTMENT, passwords[DEPARTMENT], "/direction")
        assert browser.text("h1") == "Mes livraisons"
        assert f"{SOURCE}_{YEAR}.xlsx" in browser.text("main table")  # the one in force
        shot("mes-livraisons")
        browser.click(f'a[href="/direction/{YEAR}/{DEPARTMENT}/{SOURCE}"]')
        browser.wait_until(lambda: browser.find_all("#fichier"), PAGE_TIMEOUT, "source page")
        assert f"{SOURCE}_{YEAR}.xlsx" in browser.text("dl.facts")
        shot("source")

        # 2. it downloads its blank template: an .xlsx workbook in the download folder
        browser.click('a[href$="/modele"]')
        template = browser.wait_until(
            lambda: [
                p
                for p in browser.downloads.glob("*.xlsx")
                if not (p.parent / (p.name + ".crdownload")).exists() and p.stat().st_size
            ],
            PAGE_TIMEOUT,
            "template download",
        )[0]
        assert template.name == f"{SOURCE}_{YEAR}.xlsx"
        wb = openpyxl.load_workbook(template, read_only=True)
        assert {"Notice", "Données"} <= set(wb.sheetnames)
        sheet = wb["Données"]
        assert next(sheet.iter_rows(max_row=1, values_only=True))[:3] == (
            "indicator_id",
            "code_insee",
            "valeur",
        )
        assert INDICATOR in {r[0] for r in sheet.iter_rows(min_row=2, values_only=True)}
        wb.close()

        # 3. a bad workbook: rejected, the table of problems says where and why
        verdict = upload(bad)
        assert verdict.startswith("Fichier rejeté"), verdict
        problems = browser.rows("#problemes")
        assert len(problems) == 1, problems
        assert problems[0][:4] == ["Indicateurs", "3", "valeur", "beaucoup"], problems
        assert "n'est pas un nombre" in problems[0][4]
        assert browser.find_all('a[href$="/rapport"]')  # the report to download
        shot("depot-rejete")
        assert not list(delivered_dir.glob("*_portail_*")), "a rejected file entered sources/"

        # 4. the good one: accepted at once, then followed until its figure is published
        started = time.monotonic()
        verdict = upload(good)
        accepted = time.monotonic()
        timings["verdict"] = accepted - started
        assert verdict.startswith("Fichier accepté"), verdict
        stored = browser.text("#verdict .code")
        assert stored.startswith(f"{SOURCE}_{YEAR}_portail_") and stored.endswith(".xlsx")
        assert [p.name for p in delivered_dir.glob("*_portail_*")] == [stored]
        shot("depot-accepte")
        figure_at = page_at = None
        while figure_at is None or page_at is None:
            if time.monotonic() - accepted > PUBLISH_TIMEOUT:
                raise TimeoutError(
                    f"after {PUBLISH_TIMEOUT} s: figure published {figure_at is not None}, "
                    f"page says so {page_at is not None}"
                )
            if figure_at is None:
                figure = _published_figure(demo.warehouse)
                if figure is not None and figure[0] == NEW_FIGURE:
                    figure_at = time.monotonic()
            if page_at is None:
                with contextlib.suppress(WebDriverError):  # the page reloads when it is done
                    if "chiffres publiés" in browser.text("#suivi"):
                        page_at = time.monotonic()
            time.sleep(0.5)
        timings["figure"] = figure_at - accepted
        timings["page"] = page_at - accepted
        follow = browser.text("#suivi")
        assert "il est la livraison en vigueur" in follow, follow
        assert browser.find_all("#valeurs table tbody tr")  # values from this file
        shot("chiffres-publies")
        value, delivery_ids = _published_figure(demo.warehouse)
        assert value == NEW_FIGURE
        con = duckdb.connect(str(demo.warehouse), read_only=True)
        try:
            in_force = con.execute(
                "select file_name, delivery_id from ingest.deliveries where campaign_year = ? "
                "and department = ? and source_id = ? and in_force",
                [YEAR, DEPARTMENT, SOURCE],
            ).fetchall()
        finally:
            con.close()
        assert [name for name, _ in in_force] == [stored]
        assert in_force[0][1] in delivery_ids.split(",")

        # 5. the steering department sees the delivery on the campaign page
        browser.click("form.logout button[type=submit]")
        browser.wait_until(lambda: browser.url == base + "/connexion", PAGE_TIMEOUT, "logout")
        login("pilotage", steering_password, "/pilotage")
        shot("pilotage-campagne")
        rows = [r for r in browser.rows("#campagne") if r[0] == DEPARTMENT and SOURCE in r[1]]
        assert len(rows) == 1, rows
        assert rows[0][5] == "oui" and rows[0][8] == stored, rows  # accepted, in force
        recent = browser.text("main").count(f"{DEPARTMENT} / {SOURCE}")
        assert recent == 2, browser.text("main")  # the rejected and the accepted upload
        row = next(
            r
            for r in browser.find_all("#campagne tbody tr")
            if browser.text_of(r).startswith(f"{DEPARTMENT} ")
        )
        browser.scroll_to(row)
        shot("pilotage-culture")
    except (AssertionError, TimeoutError, WebDriverError) as exc:
        page = ""
        if browser is not None:
            with contextlib.suppress(Exception):
                shot("echec")
            with contextlib.suppress(Exception):
                page = f"{browser.url}\n{browser.text()}"
        pytest.fail(
            f"{type(exc).__name__}: {exc}\n--- page\n{page}\n--- kpi portal\n"
            f"{log.read_text(errors='replace')[-6000:]}\n--- journal\n"
            + "\n".join(_journal(state)[-30:]),
            pytrace=True,
        )
    finally:
        if browser is not None:
            browser.quit()
        stop_group(portal, timeout=20, grace=5)

    run = [line for line in _journal(state) if "exécution terminée" in line]
    print(
        f"\nparcours navigateur : verdict du bon fichier en {timings['verdict']:.2f} s ; "
        f"dépôt accepté → chiffre dans la copie publiée en {timings['figure']:.1f} s "
        f"(lecture DuckDB toutes les 0,5 s), → page « chiffres publiés » en "
        f"{timings['page']:.1f} s ; {run[-1] if run else 'exécution ?'} ; "
        f"{len(shots)} captures dans {captures}"
    )
    assert len(shots) == 8 and all(p.stat().st_size > 1000 for p in shots)
