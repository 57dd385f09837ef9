"""The collection portal under load (slow): `kpi portal` served by uvicorn on localhost, 20
uploads at once through the API — no error, no file lost, every verdict right.

(The real-browser walk-through of issue 17, point 8, is still to be written: see
docs/portal.md, « Tests ».)"""

from __future__ import annotations

import json
import shutil
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openpyxl
import pytest

from dagster_project.portal.app import PortalConfig, create_app
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
