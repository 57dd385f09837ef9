"""The collection portal (issue 17), fast: Starlette's TestClient, no warehouse built.

A campaign folder with the demo's 2025 campaign file and one valid workbook (``eau_udi``:
no reference to another source, so it is judged without a published copy); the pipeline
runner is replaced by a recorder (no ``kpi run``)."""

from __future__ import annotations

import html
import re
import shutil
import time
from pathlib import Path

import openpyxl
import pytest

from dagster_project.portal import security
from dagster_project.portal.accounts import AccountError, check_password, hash_password
from dagster_project.portal.app import create_app
from dagster_project.portal.core import PortalConfig
from dagster_project.portal.store import MAX_FAILURES_PER_LOGIN, PortalStore
from dagster_project.settings import PROJECT_ROOT, Settings

starlette_testclient = pytest.importorskip("starlette.testclient")
TestClient = starlette_testclient.TestClient

DEMO = PROJECT_ROOT / "sources" / "2025"
PASSWORD = "un mot de passe solide"
OPEN_DAY = "2026-01-31"
CLOSED_DAY = "2027-01-01"
SCRIPT = "<script>alert('x')</script>"


class Recorder:
    def __init__(self):
        self.requested: list[str] = []

    def __call__(self, source_id: str) -> None:
        self.requested.append(source_id)


@pytest.fixture
def site(tmp_path):
    sources = tmp_path / "sources"
    (sources / "2025").mkdir(parents=True)
    shutil.copy(DEMO / "campagne.yml", sources / "2025" / "campagne.yml")
    good = tmp_path / "eau_udi_bon.xlsx"
    shutil.copy(DEMO / "water" / "eau_udi_2025.xlsx", good)
    bad = tmp_path / "eau_udi_mauvais.xlsx"
    wb = openpyxl.load_workbook(good)
    wb["UDI"]["C3"] = SCRIPT
    wb["UDI"]["C4"] = "Lens"
    wb.save(bad)
    return tmp_path, sources, good, bad


def make_client(tmp_path, sources, today=OPEN_DAY, **config):
    settings = Settings(
        sources_dir=sources,
        warehouse=tmp_path / "warehouse.duckdb",
        releases_dir=tmp_path / "releases",
        today=today,
    )
    app = create_app(PortalConfig(settings, pipeline="capteur", **config))
    portal = app.state.portal
    recorder = Recorder()
    portal.runner.request = recorder
    store = portal.store
    if store.account("water") is None:
        store.create_account("water", "department", PASSWORD, departments=("water",))
        store.create_account("waste", "department", PASSWORD, departments=("waste",))
        store.create_account("pilotage", "steering", PASSWORD)
        store.create_account("audit", "auditor", PASSWORD)
    client = TestClient(app, follow_redirects=False)
    client.kpi = portal
    client.recorder = recorder
    return client


def login(client, login="water", password=PASSWORD):
    page = client.get("/connexion")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/connexion", data={"identifiant": login, "mot_de_passe": password, "csrf": token}
    )


def csrf_of(client, path="/direction/2025/water/eau_udi") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def upload(client, path: Path, name=None, csrf=None, target="/direction/2025/water/eau_udi"):
    token = csrf if csrf is not None else csrf_of(client, target)
    with open(path, "rb") as handle:
        return client.post(
            f"{target}/depot",
            data={"csrf": token},
            files={"fichier": (name or path.name, handle, "application/octet-stream")},
        )


def delivered(sources: Path) -> list[str]:
    return sorted(
        p.name for p in (sources / "2025").rglob("*") if p.is_file() and p.suffix != ".yml"
    )


# --- accounts, passwords, sessions ------------------------------------------------------------


def test_passwords_are_slow_salted_hashes(tmp_path):
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second and first.startswith("scrypt$32768$8$1$")
    assert check_password(PASSWORD, first) and not check_password("autre chose !!", first)
    store = PortalStore(tmp_path / "p.sqlite")
    store.create_account("water", "department", PASSWORD, departments=("water",))
    raw = (tmp_path / "p.sqlite").read_bytes()
    assert PASSWORD.encode() not in raw
    with pytest.raises(AccountError, match="trop court"):
        store.create_account("x", "auditor", "court")
    with pytest.raises(AccountError, match="existe déjà"):
        store.create_account("water", "department", PASSWORD, departments=("water",))


def test_login_sets_signed_httponly_samesite_cookie_and_logout_ends_it(site):
    tmp_path, sources, _good, _bad = site
    client = make_client(tmp_path, sources)
    response = login(client)
    assert response.status_code == 303 and response.headers["location"] == "/direction"
    cookie = response.headers["set-cookie"]
    assert "kpi_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Max-Age=28800" in cookie
    page = client.get("/direction")
    assert page.status_code == 200 and "Mes livraisons" in page.text
    assert "<title>Mes livraisons — Portail de collecte des indicateurs</title>" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    # a tampered cookie is refused
    value = client.cookies.get(security.SESSION_COOKIE)
    client.cookies.set(security.SESSION_COOKIE, value[:-2] + "00")
    assert client.get("/direction").headers["location"] == "/connexion"
    client.cookies.set(security.SESSION_COOKIE, value)
    token = csrf_of(client, "/direction")
    assert client.post("/deconnexion", data={"csrf": token}).status_code == 303
    client.cookies.set(security.SESSION_COOKIE, value)  # the old cookie no longer opens anything
    assert client.get("/direction").headers["location"].startswith("/connexion")
    journal = [e["action"] for e in client.kpi.store.journal()]
    assert "connexion" in journal and "déconnexion" in journal


def test_wrong_password_message_is_tied_to_its_field_and_attempts_are_rate_limited(site):
    tmp_path, sources, _good, _bad = site
    client = make_client(tmp_path, sources)
    response = login(client, password="mauvais mot de passe")
    assert response.status_code == 400
    assert 'aria-describedby="mot_de_passe-erreur"' in response.text
    assert "Identifiant ou mot de passe incorrect." in response.text
    for _ in range(MAX_FAILURES_PER_LOGIN - 1):
        login(client, password="mauvais mot de passe")
    refused = login(client)  # even the right password, until the window passes
    assert refused.status_code == 429 and "Trop d&#39;essais de connexion" in refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert security.SESSION_COOKIE not in client.cookies


def test_login_without_its_csrf_token_is_refused(site):
    tmp_path, sources, _good, _bad = site
    client = make_client(tmp_path, sources)
    client.get("/connexion")
    response = client.post(
        "/connexion", data={"identifiant": "water", "mot_de_passe": PASSWORD, "csrf": "faux"}
    )
    assert response.status_code == 403 and security.SESSION_COOKIE not in client.cookies


def test_expired_session_is_refused_and_changes_nothing(site):
    tmp_path, sources, good, _bad = site
    # 3 s: the page after the login must come within the session's life on a busy machine
    client = make_client(tmp_path, sources, session_seconds=3)
    login(client)
    token = csrf_of(client)
    cookie = client.cookies.get(security.SESSION_COOKIE)
    time.sleep(3.2)
    # (a browser drops the cookie at its Max-Age; one replayed after it is refused as well)
    assert client.get("/direction").headers["location"].startswith("/connexion")
    client.cookies.set(security.SESSION_COOKIE, cookie)
    assert client.get("/direction").headers["location"] == "/connexion?expiree=1"
    response = upload(client, good, csrf=token)
    assert response.status_code == 401 and "session a expiré" in response.text
    assert delivered(sources) == [] and client.kpi.store.uploads() == []


# --- department pages and uploads ---------------------------------------------------------------


def test_department_sees_only_its_sources_and_downloads_its_template(site):
    tmp_path, sources, _good, _bad = site
    client = make_client(tmp_path, sources)
    login(client)
    page = client.get("/direction")
    assert "/direction/2025/water/eau_udi" in page.text
    assert "/direction/2025/waste/" not in page.text
    source = client.get("/direction/2025/water/eau_udi")
    assert "Échéance" in source.text and "31/01/2026" in source.text
    template = client.get("/direction/2025/water/eau_udi/modele")
    assert template.status_code == 200 and template.content[:2] == b"PK"
    assert "eau_udi_2025.xlsx" in template.headers["content-disposition"]


@pytest.mark.parametrize(
    "path",
    [
        "/direction/2025/waste/dechets_collecte",
        "/direction/2024/water/eau_udi",
        "/direction/2025/water/dechets_collecte",
        "/direction/2025/waste/dechets_collecte/modele",
    ],
)
def test_another_departments_source_or_year_is_forbidden(site, path):
    tmp_path, sources, _good, _bad = site
    client = make_client(tmp_path, sources)
    login(client)
    assert client.get(path).status_code == 403


def test_upload_to_another_department_is_forbidden_and_writes_nothing(site):
    tmp_path, sources, good, _bad = site
    client = make_client(tmp_path, sources)
    login(client)
    token = csrf_of(client)
    response = upload(client, good, csrf=token, target="/direction/2025/waste/dechets_collecte")
    assert response.status_code == 403
    assert delivered(sources) == [] and client.recorder.requested == []


def test_accepted_upload_is_written_atomically_under_a_name_the_kit_accepts(site):
    tmp_path, sources, good, _bad = site
    client = make_client(tmp_path, sources)
    login(client)
    response = upload(client, good, name="export du 12-01.xlsx")
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert "Fichier accepté" in page.text
    files = delivered(sources)
    assert len(files) == 1 and re.fullmatch(r"eau_udi_2025_portail_[\d-]+\.xlsx", files[0])
    assert (sources / "2025" / "water" / files[0]).read_bytes() == good.read_bytes()
    assert not [p for p in (sources / "2025" / "water").iterdir() if p.name.startswith(".")]
    assert client.recorder.requested == ["eau_udi"]
    (row,) = client.kpi.store.uploads()
    assert row["outcome"] == "accepted" and row["verdict_seconds"] < 2
    assert row["login"] == "water" and row["original_name"] == "export du 12-01.xlsx"
    actions = [e["action"] for e in client.kpi.store.journal()]
    assert "dépôt accepté" in actions


def test_rejected_upload_shows_problems_escaped_and_is_kept_aside(site):
    tmp_path, sources, _good, bad = site
    client = make_client(tmp_path, sources)
    login(client)
    response = upload(client, bad)
    page = client.get(response.headers["location"])
    assert "Fichier rejeté" in page.text
    assert '<table id="problemes">' in page.text
    assert SCRIPT not in page.text and "&lt;script&gt;" in page.text
    assert "commune" in page.text.lower()
    # grouped as in the rejection report: one line per kind of problem, with its rows
    rows = re.findall(r"<tr><td>UDI</td><td>([^<]*)</td><td>([^<]*)</td>", page.text)
    assert ("3, 4", "Commune") in rows and ("", "Commune") in rows
    assert delivered(sources) == [] and client.recorder.requested == []
    (row,) = client.kpi.store.uploads()
    kept = Path(row["stored_path"])
    assert kept.is_file() and client.kpi.state in kept.parents
    report = client.get(f"/depots/{row['upload_id']}/rapport")
    assert report.status_code == 200 and "Motif du rejet" in report.content.decode("utf-8-sig")
    # another department cannot see it
    other = make_client(tmp_path, sources)
    login(other, "waste")
    assert other.get(f"/depots/{row['upload_id']}").status_code == 403
    assert other.get(f"/depots/{row['upload_id']}/rapport").status_code in (403, 404)


def test_upload_without_or_with_a_wrong_csrf_token_is_refused(site):
    tmp_path, sources, good, _bad = site
    client = make_client(tmp_path, sources)
    login(client)
    for token in ("", "faux-jeton"):
        response = upload(client, good, csrf=token)
        assert response.status_code == 403 and "CSRF" in response.text
    assert delivered(sources) == [] and client.kpi.store.uploads() == []


@pytest.mark.parametrize(
    "name", ["../../../etc/passwd.xlsx", "..\\..\\x.xlsx", "/etc/cron.d/x.xlsx", "a\x00b.xlsx"]
)
def test_path_tricks_in_the_file_name_never_reach_a_path(site, name):
    tmp_path, sources, good, _bad = site
    client = make_client(tmp_path, sources)
    login(client)
    response = upload(client, good, name=name)
    assert response.status_code == 303
    files = delivered(sources)
    assert len(files) == 1 and files[0].startswith("eau_udi_2025_portail_")
    assert not (tmp_path / "x.xlsx").exists()
    assert {p.parent for p in (sources / "2025").rglob("*.xlsx")} == {sources / "2025" / "water"}


def test_a_file_that_is_not_a_workbook_is_refused_in_french(site, tmp_path):
    site_root, sources, _good, _bad = site
    client = make_client(site_root, sources)
    login(client)
    pdf = tmp_path / "rapport.pdf"
    pdf.write_bytes(b"%PDF-1.4 ...")
    response = upload(client, pdf)
    assert response.status_code == 415 and "pas un classeur" in response.text
    assert 'aria-invalid="true"' in response.text
    fake = tmp_path / "faux.xlsx"
    fake.write_bytes(b"ceci n'est pas un classeur")
    page = client.get(upload(client, fake).headers["location"])
    assert "Fichier rejeté" in page.text
    assert delivered(sources) == []


def test_a_file_over_the_readers_limit_is_refused_with_413(site, tmp_path):
    site_root, sources, _good, _bad = site
    client = make_client(site_root, sources, max_upload_bytes=100_000)
    login(client)
    big = tmp_path / "gros.xlsx"
    big.write_bytes(b"PK" + b"0" * 300_000)
    response = upload(client, big)
    assert response.status_code == 413 and "trop volumineux" in response.text
    assert delivered(sources) == [] and client.kpi.store.uploads() == []


def test_upload_while_the_campaign_is_closed_is_refused(site):
    tmp_path, sources, good, _bad = site
    client = make_client(tmp_path, sources, today=CLOSED_DAY)
    login(client)
    token = csrf_of(client)
    response = upload(client, good, csrf=token)
    assert response.status_code == 409 and "fermée" in response.text
    assert delivered(sources) == []


# --- API ----------------------------------------------------------------------------------------


def test_api_upload_with_a_token_answers_json(site):
    tmp_path, sources, good, bad = site
    client = make_client(tmp_path, sources)
    token = client.kpi.store.create_token("water", "export nocturne")
    url = "/api/v1/livraisons/2025/water/eau_udi"
    headers = {"authorization": f"Bearer {token}"}
    with open(bad, "rb") as handle:
        rejected = client.post(url, headers=headers, files={"fichier": ("x.xlsx", handle)})
    assert rejected.status_code == 422
    body = rejected.json()
    assert body["verdict"] == "rejeté" and body["nombre_problemes"] == 3
    assert {p["lignes"] for p in body["problemes"]} == {"", "3, 4"}
    assert any(SCRIPT in p["valeur"] for p in body["problemes"])  # JSON: data, not markup
    with open(good, "rb") as handle:
        accepted = client.post(url, headers=headers, files={"fichier": ("x.xlsx", handle)})
    assert accepted.status_code == 200 and accepted.json()["accepte"] is True
    follow = client.get(accepted.json()["suivi"], headers=headers)
    assert follow.status_code == 200 and follow.json()["suivi"]["verdict"] == "accepté"
    # another department's source, a wrong token, a revoked token
    with open(good, "rb") as handle:
        other = client.post(
            "/api/v1/livraisons/2025/waste/dechets_collecte",
            headers=headers,
            files={"fichier": ("x.xlsx", handle)},
        )
    assert other.status_code == 403
    with open(good, "rb") as handle:
        wrong = client.post(
            url, headers={"authorization": "Bearer kpi_0_x"}, files={"fichier": ("x", handle)}
        )
    assert wrong.status_code == 401
    client.kpi.store.revoke_token(token)
    with open(good, "rb") as handle:
        revoked = client.post(url, headers=headers, files={"fichier": ("x.xlsx", handle)})
    assert revoked.status_code == 401
    assert len(delivered(sources)) == 1
    assert [u["via"] for u in client.kpi.store.uploads()] == ["api", "api"]


# --- steering and auditors ---------------------------------------------------------------------


def test_steering_sees_the_campaign_with_filters_and_a_chart(site):
    tmp_path, sources, good, _bad = site
    client = make_client(tmp_path, sources)
    login(client)
    upload(client, good)
    steering = make_client(tmp_path, sources)
    login(steering, "pilotage")
    page = steering.get("/pilotage")
    assert page.status_code == 200 and "<svg" in page.text and "Campagne 2025" in page.text
    assert page.text.count("<tr") > 40
    late = steering.get("/pilotage?filtre=retard")
    assert "filtre « en retard »" in late.text
    assert "eau_udi_2025_portail_" in page.text or "en attente de traitement" in page.text
    # departments and auditors cannot open it; steering cannot deliver
    assert client.get("/pilotage").status_code == 403
    auditor = make_client(tmp_path, sources)
    login(auditor, "audit")
    assert auditor.get("/pilotage").status_code == 403
    assert auditor.get("/audit").status_code == 200
    journal = auditor.get("/audit/journal")
    assert "dépôt accepté" in journal.text and "water" in journal.text
    assert steering.get("/direction/2025/water/eau_udi").status_code == 403


def test_release_files_never_leave_the_release_folder(site):
    tmp_path, sources, _good, _bad = site
    client = make_client(tmp_path, sources)
    login(client, "audit")
    (tmp_path / "releases" / "RA-2025-v1").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("non")
    assert client.get("/audit/fichiers/RA-2025-v1/../../secret.txt").status_code == 404
    assert client.get("/audit/fichiers/RA-2025-v1/%2e%2e/%2e%2e/secret.txt").status_code == 404
    assert client.get("/audit/publications/RA-2025-v9").status_code == 404
    assert client.get("/audit/publications/..%2Fsecret.txt").status_code == 404


def test_html_in_a_cell_is_escaped_on_the_steering_pages_too(site):
    tmp_path, sources, _good, bad = site
    client = make_client(tmp_path, sources)
    login(client)
    upload(client, bad, name=f"{SCRIPT}.xlsx")
    steering = make_client(tmp_path, sources)
    login(steering, "pilotage")
    (row,) = steering.kpi.store.uploads()
    page = steering.get(f"/depots/{row['upload_id']}")
    assert page.status_code == 200 and SCRIPT not in page.text and "&lt;script&gt;" in page.text
    journal = steering.get("/audit/journal")
    assert SCRIPT not in journal.text


# --- the reminders' preview, the pages' shared handling ----------------------------------------

LATE_DAY = "2026-03-31"  # every required source is late: a reminder for each owner


def test_the_reminders_preview_writes_nothing_and_a_refused_send_neither(site, monkeypatch):
    """Opening the reminders' page shows the e-mails `kpi remind` would write today, without
    writing them nor a line of their journal (journal_des_relances.csv): only a send does."""
    monkeypatch.delenv("KPI_SMTP_HOST", raising=False)
    tmp_path, sources, _good, _bad = site
    steering = make_client(tmp_path, sources, today=LATE_DAY)
    login(steering, "pilotage")
    page = steering.get("/pilotage/relances")
    assert page.status_code == 200
    reminders_dir = steering.kpi.state / "relances"
    assert not list(tmp_path.rglob("journal_des_relances.csv"))
    assert not list(tmp_path.rglob("*.eml"))
    assert not reminders_dir.exists(), sorted(reminders_dir.rglob("*"))
    text = html.unescape(page.text)
    assert "relance(s) en aperçu pour le 31/03/2026 : rien n'a été écrit ni envoyé" in text
    assert "À : Marc Hennebelle <marc.hennebelle@bethunebruay.fr>" in text
    assert "Envoyer ces " in text
    # « send » without a mail server: refused by `kpi remind --send` before writing anything
    sent = steering.post(
        "/pilotage/relances?annee=2025", data={"csrf": csrf_of(steering, "/pilotage/relances")}
    )
    assert "--send demande un serveur de messagerie (KPI_SMTP_HOST" in html.unescape(sent.text)
    assert not reminders_dir.exists()
    assert not list(tmp_path.rglob("journal_des_relances.csv"))


class FakeKpi:
    """Stands for ``runner.kpi_command``: records each command, answers (0, a marker)."""

    def __init__(self):
        self.commands: list[tuple[str, ...]] = []

    def __call__(self, settings, *args: str) -> tuple[int, str]:
        self.commands.append(args)
        return 0, f"sortie de kpi {args[0]}"


def test_pages_check_the_account_and_the_csrf_token_then_run_kpi_through_one_helper(
    site, monkeypatch
):
    from dagster_project.portal import audit, department, steering, web

    fake = FakeKpi()
    monkeypatch.setattr(web, "kpi_command", fake)
    tmp_path, sources, _good, _bad = site
    # every page of an account is served by `web.signed_in`, with the roles it is open to
    for module, expected in ((steering, {("steering",)}), (audit, {("auditor", "steering")})):
        assert {route.endpoint.roles for route in module.routes()} == expected
    assert {route.endpoint.roles for route in department.routes()} == {
        ("department",),
        ("department", "steering"),
    }
    pilot = make_client(tmp_path, sources)
    login(pilot, "pilotage")
    gate = pilot.get("/pilotage/gel")
    assert gate.status_code == 200 and "sortie de kpi freeze" in gate.text
    review = pilot.get("/pilotage/revue")
    assert review.status_code == 200 and "sortie de kpi review" in review.text
    diff = pilot.get("/audit/diff?ancienne=RA-2025-v1&nouvelle=RA-2025-v2")
    assert diff.status_code == 200 and "sortie de kpi diff" in diff.text
    trace = pilot.get("/audit/trace?indicateur=water_network_length&annee=2025")
    assert trace.status_code == 200 and "sortie de kpi trace" in trace.text
    assert fake.commands == [
        ("freeze", "--year", "2025", "--dry-run"),
        ("review", "list", "--year", "2025"),
        ("diff", "RA-2025-v1", "RA-2025-v2"),
        ("trace", "water_network_length", "--year", "2025"),
    ]
    # a form without its token is refused before any command runs
    fake.commands.clear()
    for path, data in (
        ("/pilotage/gel?annee=2025", {"confirmation": "oui"}),
        ("/pilotage/revue?annee=2025", {"indicateur": "x", "statut": "ok"}),
        ("/pilotage/relances?annee=2025", {}),
    ):
        refused = pilot.post(path, data={**data, "csrf": "faux"})
        assert refused.status_code == 403, path
        assert "Jeton de sécurité (CSRF) absent ou invalide." in refused.text
    assert fake.commands == []
    # another role, or no session
    water = make_client(tmp_path, sources)
    login(water)
    assert water.get("/pilotage/gel").status_code == 403
    assert water.get("/audit/diff").status_code == 403
    assert water.post("/pilotage/gel", data={"csrf": csrf_of(water)}).status_code == 403
    nobody = make_client(tmp_path, sources)
    assert nobody.get("/audit/trace").status_code == 303
    assert nobody.post("/pilotage/gel", data={}).status_code == 401
    assert fake.commands == []
    # the department's upload keeps its own refusal
    refused = upload(water, _good, csrf="faux")
    assert refused.status_code == 403
    assert "absent ou invalide : rien n'a été enregistré." in html.unescape(refused.text)
