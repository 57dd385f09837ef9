"""The collection portal's steering and auditors' pages (issue 17, points 4-6) against a real
built warehouse: a copy of the demo campaign after `kpi run --today 2026-01-31`, the portal
built in process (Starlette's TestClient), every page calling the real `kpi` commands in
child processes (`kpi remind`, `kpi review`, `kpi freeze`, `kpi verify`, `kpi diff`,
`kpi trace`), as the portal does.

One story, in order (each step needs the one before):

1. the steering department (« pilotage ») sees the whole campaign (every expected source, the
   filters, the SVG chart), has nothing to remind yet, marks a value « anomalie » with a
   comment (listed on the page and by `kpi review list --json`): the freeze's gate refuses
   (and a freeze sent anyway is refused and journaled), then qualifies the value, and
   freezes RA-2025-v1;
2. an auditor finds RA-2025-v1, its manifest, `kpi verify`'s « intègre », and the HTML
   report, the Data Docs and the French checks page ``controles.html`` (and what they link
   to) served by the portal;
3. meanwhile the departments deliver: culture corrects the reviewed figure (9 → 10), waste
   re-delivers a workbook with a word for a number (rejected), sport withdraws its file
   (its due date moved to 15/01/2026 in this copy of the campaign: late); one
   `kpi run --select indicateurs_declares`;
4. the steering department sees the late and the rejected source through the filters and
   the chart, previews the two reminders (French text, the rejection report and the blank
   template attached; the preview writes nothing, not even in the reminders' journal), asks
   to send them without an SMTP server (refused, nothing written nor sent), sees
   the changed reviewed value in the gate, is refused a second version without a reason and
   freezes RA-2025-v2 with one;
5. the auditor compares v1 and v2 (the corrected figure, the sport values withdrawn), traces
   the figure to its file, sheet and row in each version, and reads the journal: every
   action above is there, as in PortalStore.journal() and, for those before the run, in the
   published copy's audit.portal_journal.

1.5 to 2.5 minutes on the development machine (2 cores, shared with other tests: two freezes
of 11 to 21 s, `kpi run --select` of 31 to 40 s, about thirty `kpi` commands of 1 to 7 s),
plus about a minute to build the session's demo warehouse when no other test did.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import duckdb
import openpyxl
import pytest
from support.demo import DEMO_TODAY
from support.settings import SETTINGS_VARS

from dagster_project.campaign.plan import load_campaign
from dagster_project.portal.app import create_app
from dagster_project.portal.core import PortalConfig
from dagster_project.settings import PROJECT_ROOT, Settings

TestClient = pytest.importorskip("starlette.testclient").TestClient

YEAR = 2025
PASSWORD = "un mot de passe solide"
INDICATOR = "petits_bonheurs_edition_dates"  # culture's declared workbook, sheet Indicateurs, row 3
OLD_FIGURE, NEW_FIGURE = 9, 10
COMMUNE_INDICATOR, COMMUNE = "water_network_length", "62023"  # eau_reseau, sheet Réseaux
LATE_DUE = "2026-01-15"  # sport's due date in this copy of the campaign: 16 days late
KPI = str(Path(sys.executable).parent / "kpi")


# --- reading the pages -------------------------------------------------------------------------


class _Page(HTMLParser):
    """A page: its HTML, its text (entities decoded, <pre> kept as is), the links it holds
    (href and src) and its tables by id or caption: {key: [[cell text, ...], ...]} (body rows
    only)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.html = ""
        self.parts: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[str] = []
        self._table: dict | None = None
        self._cell: list[str] | None = None
        self._in: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("a", "link") and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("script", "img") and attrs.get("src"):
            self.links.append(attrs["src"])
        if tag == "table":
            self._table = {"id": attrs.get("id"), "caption": "", "rows": [], "body": False}
        elif self._table is not None:
            if tag == "tbody":
                self._table["body"] = True
            elif tag == "tr" and self._table["body"]:
                self._table["rows"].append([])
            elif tag in ("td", "th") and self._table["body"] and self._table["rows"]:
                self._cell = []
            elif tag == "caption":
                self._in.append("caption")
        if tag in ("br", "p", "tr", "li", "h1", "h2", "pre", "div", "section"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table["rows"][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "caption" and self._in:
            self._in.pop()
        elif tag == "table" and self._table is not None:
            key = self._table["id"] or self._table["caption"].strip()
            self.tables[key] = self._table["rows"]
            self._table = None

    def handle_data(self, data):
        self.parts.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in and self._table is not None:
            self._table["caption"] += data

    @property
    def text(self) -> str:
        return "".join(self.parts)


def page(response, status: int = 200) -> _Page:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url}: HTTP {response.status_code}\n"
        + response.text[-3000:]
    )
    parsed = _Page()
    parsed.html = response.text
    parsed.feed(response.text)
    parsed.close()
    return parsed


def csrf_of(client) -> str:
    """The session's CSRF token, from a page that runs no command (the journal)."""
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/audit/journal").text).group(1)


def login(client, account: str) -> None:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/connexion").text).group(1)
    done = client.post(
        "/connexion", data={"identifiant": account, "mot_de_passe": PASSWORD, "csrf": token}
    )
    assert done.status_code == 303, done.text[-2000:]


def journal_actions(portal, account: str | None = None) -> list[str]:
    """The actions of the portal's journal (PortalStore.journal()), oldest first; only the
    ``account``'s when given."""
    return [
        e["action"]
        for e in reversed(portal.store.journal(limit=1000))
        if account is None or e["login"] == account
    ]


def kpi(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([KPI, *args], capture_output=True, text=True, timeout=300)


# --- the test ----------------------------------------------------------------------------------


def test_steering_and_auditor_pages_on_the_built_demo(demo_warehouse, tmp_path, monkeypatch):
    assert demo_warehouse.returncode == 0, demo_warehouse.stdout + demo_warehouse.stderr
    started = time.perf_counter()
    demo = demo_warehouse.copy(tmp_path / "campagne")
    year_dir = demo.sources / str(YEAR)
    # who delivers what, when: the demo's campaign file, sport's due date moved before today
    campaign_text = (PROJECT_ROOT / "sources" / str(YEAR) / "campagne.yml").read_text("utf-8")
    sport = "    email: jerome.dubois@bethunebruay.fr\n    sources:\n"
    assert campaign_text.count(sport) == 1
    (year_dir / "campagne.yml").write_text(
        campaign_text.replace(
            sport, sport.replace("    sources:", f"    due_date: {LATE_DUE}\n    sources:")
        ),
        encoding="utf-8",
    )
    campaign = load_campaign(demo.sources, YEAR)
    expected = {(e.department, e.source_id) for e in campaign.entries}
    required = sum(1 for e in campaign.entries if e.required)

    # the `kpi` commands the pages run: this copy's Dagster home, no settings inherited, no
    # mail server
    monkeypatch.setenv("DAGSTER_HOME", str(demo.dagster_home))
    for name in (*SETTINGS_VARS, "KPI_SMTP_HOST", "KPI_SMTP_PORT", "KPI_SMTP_USER"):
        monkeypatch.delenv(name, raising=False)
    where = ["--warehouse", str(demo.warehouse)]

    settings = Settings(
        sources_dir=demo.sources,
        warehouse=demo.warehouse,
        releases_dir=demo.releases,
        today=DEMO_TODAY,
    )
    app = create_app(PortalConfig(settings, pipeline="capteur"))
    portal = app.state.portal
    portal.store.create_account("pilotage", "steering", PASSWORD, name="Pascale Lefebvre")
    portal.store.create_account("cac", "auditor", PASSWORD, name="Commissaire aux comptes")
    steering = TestClient(app, follow_redirects=False)
    auditor = TestClient(app, follow_redirects=False)
    login(steering, "pilotage")
    login(auditor, "cac")
    timings: dict[str, float] = {}

    # --- 1. steering: the campaign at a glance -------------------------------------------------
    overview = page(steering.get("/pilotage"))
    assert "Campagne 2025 : vue d'ensemble" in overview.text
    rows = overview.tables["campagne"]
    shown = {(r[0], r[1].split()[-1]) for r in rows}  # « Titre source_id »
    assert shown == expected and len(rows) == len(expected) == 47
    assert all(r[4] == "oui" and r[5] == "oui" and r[6] == "non" for r in rows), rows
    chart = overview.html
    assert '<svg role="img"' in chart and 'class="due"' in chart and 'class="got"' in chart
    assert f"{required} livraisons attendues acceptées sur {required}" in overview.text
    for key, label in (("retard", "en retard"), ("rejete", "rejeté"), ("attente", "en attente")):
        filtered = page(steering.get(f"/pilotage?annee={YEAR}&filtre={key}"))
        assert f"filtre « {label}" in filtered.text
        assert filtered.tables["campagne"] == [], (key, filtered.tables["campagne"])

    # nothing to remind on 31/01/2026: everything is in force, nothing due yet is missing
    reminders = page(steering.get("/pilotage/relances"))
    assert "0 relance(s) en aperçu pour le 31/01/2026 : rien n'a été écrit" in reminders.text
    assert "Aucune relance à envoyer aujourd'hui." in reminders.text

    # --- 2. steering: a value reviewed « anomalie »: the gate refuses the freeze -------------
    token = csrf_of(steering)
    missing = page(
        steering.post(
            f"/pilotage/revue?annee={YEAR}",
            data={"csrf": token, "indicateur": "", "statut": "", "commentaire": "x"},
        )
    )
    assert "Choisissez un statut." in missing.text
    assert "Saisissez l'identifiant de l'indicateur." in missing.text
    assert 'aria-invalid="true" aria-describedby="indicateur-erreur"' in missing.html
    comment = f"{OLD_FIGURE} éditions en 2025 ? La direction doit confirmer"
    reviewed = page(
        steering.post(
            f"/pilotage/revue?annee={YEAR}",
            data={
                "csrf": token,
                "indicateur": INDICATOR,
                "commune": "",
                "statut": "anomalie",
                "commentaire": comment,
            },
        )
    )
    assert f"{INDICATOR} (2025, agglomération) : « anomalie » enregistré par pilotage" in (
        reviewed.text
    )
    listed = [line for line in reviewed.text.splitlines() if INDICATOR in line]
    assert any(
        line.startswith("anomalie") and "pilotage" in line and comment in line for line in listed
    ), reviewed.text
    assert "1 valeur(s) listée(s)" in reviewed.text
    unknown = page(
        steering.post(
            f"/pilotage/revue?annee={YEAR}",
            data={"csrf": token, "indicateur": "pas_un_indicateur", "statut": "anomalie",
                  "commentaire": "?"},
        )
    )  # fmt: skip
    # the command's own refusal, beside the field
    assert "kpi review set : l'indicateur « pas_un_indicateur » n'a aucune valeur en 2025" in (
        unknown.text
    )
    assert 'id="indicateur-erreur"' in unknown.html
    in_warehouse = kpi("review", "list", "--year", str(YEAR), "--json", *where)
    assert in_warehouse.returncode == 0, in_warehouse.stderr
    (value,) = json.loads(in_warehouse.stdout)["values"]
    assert (value["indicator_id"], value["code_insee"], value["status_fr"]) == (
        INDICATOR,
        None,
        "anomalie",
    )
    assert (value["comment"], value["reviewer"], value["value"]) == (comment, "pilotage", 9.0)

    t = time.perf_counter()
    gate = page(steering.get("/pilotage/gel"))
    timings["gel à blanc"] = time.perf_counter() - t
    assert "Le gel serait refusé" in gate.text
    assert "1 valeur(s) de 2025 en statut « anomalie »" in gate.text and INDICATOR in gate.text
    assert 'name="confirmation"' not in gate.html  # no freeze form
    refused = page(  # a freeze sent anyway (a page opened before the review): refused
        steering.post(f"/pilotage/gel?annee={YEAR}", data={"csrf": token, "confirmation": "oui"})
    )
    assert "Résultat du gel" in refused.text and "gel refusé" in refused.text
    assert not demo.releases.exists() or not list(demo.releases.glob("RA-*"))

    # --- 3. steering: the value qualified, the year frozen ---------------------------------------
    qualified = f"{OLD_FIGURE} éditions : confirmé par la direction de la Culture"
    page(
        steering.post(
            f"/pilotage/revue?annee={YEAR}",
            data={
                "csrf": token,
                "indicateur": INDICATOR,
                "statut": "sans anomalie apparente",
                "commentaire": qualified,
            },
        )
    )
    gate = page(steering.get("/pilotage/gel"))
    assert "Le gel serait accepté." in gate.text
    assert "Avant le gel de 2025 :" in gate.text and "Valeurs non revues : " in gate.text
    assert "Simulation (--dry-run) : le gel serait accepté ; rien n'a été écrit." in gate.text
    unconfirmed = page(steering.post(f"/pilotage/gel?annee={YEAR}", data={"csrf": token}))
    assert "Cochez la case pour confirmer le gel." in unconfirmed.text
    t = time.perf_counter()
    frozen = page(
        steering.post(f"/pilotage/gel?annee={YEAR}", data={"csrf": token, "confirmation": "oui"})
    )
    timings["gel v1"] = time.perf_counter() - t
    assert "Publication RA-2025-v1 figée" in frozen.text, frozen.text
    assert (demo.releases / "RA-2025-v1" / "manifest.json").is_file()

    # --- 4. auditor: the release, its verification and its files ----------------------------------
    releases = page(auditor.get("/audit"))
    (v1,) = releases.tables["Publications (release.releases de la copie publiée)"]
    manifest = json.loads((demo.releases / "RA-2025-v1" / "manifest.json").read_text("utf-8"))
    assert v1[:3] == ["RA-2025-v1", "2025", "1"] and int(v1[3].replace("\u202f", "")) > 1000
    assert len(v1[4]) == 64  # the manifest's SHA-256
    release = page(auditor.get("/audit/publications/RA-2025-v1"))
    assert "Publication intacte." in release.text
    assert "1 publication(s) vérifiée(s), intègre(s) : RA-2025-v1" in release.text
    assert "intègres, conformes à ce qui a été publié" in release.text  # the published copy
    assert f'"release_id": "{manifest["release_id"]}"' in release.text
    files = [link for link in release.links if link.startswith("/audit/fichiers/RA-2025-v1/")]
    assert {link.rsplit("RA-2025-v1/", 1)[1] for link in files} == {
        "rapport/index.html",
        "data_docs/index.html",
        "controles.html",
        "manifest.json",
    }, release.links
    served, seen = 0, set()
    for link in files:
        response = auditor.get(link)
        assert response.status_code == 200, link
        assert (demo.releases / "RA-2025-v1" / link.split("RA-2025-v1/", 1)[1]).read_bytes() == (
            response.content
        )
        if not link.endswith(".html"):
            continue
        # what the page links to, inside the release: served too
        for target in page(response).links:
            if target.startswith(("#", "http:", "https:", "mailto:", "data:")):
                continue
            resolved = urljoin("http://testserver" + link, target.split("#")[0])
            if resolved in seen:
                continue
            seen.add(resolved)
            answer = auditor.get(resolved)
            assert answer.status_code == 200, f"{link} → {target}: HTTP {answer.status_code}"
            served += 1
    assert served > 20
    checks = auditor.get("/audit/fichiers/RA-2025-v1/controles.html")
    assert "Contrôles de la qualité" in page(checks).text
    assert checks.headers["content-type"].startswith("text/html")

    # --- 5. the departments deliver; one run ------------------------------------------------------
    for department, figure in (("culture", NEW_FIGURE), ("waste", "beaucoup")):
        wb = openpyxl.load_workbook(year_dir / department / f"indicateurs_declares_{YEAR}.xlsx")
        sheet = wb["Indicateurs"]
        if department == "culture":
            assert (sheet["A3"].value, sheet["C3"].value) == (INDICATOR, OLD_FIGURE)
        sheet["C3"] = figure  # row 3's « valeur »
        wb.save(year_dir / department / f"indicateurs_declares_{YEAR}_corrige.xlsx")
    (year_dir / "sport" / f"indicateurs_declares_{YEAR}.xlsx").unlink()  # withdrawn
    t = time.perf_counter()
    run = kpi(
        "run", "--sources", str(demo.sources), *where, "--today", DEMO_TODAY,
        "--select", "indicateurs_declares",
    )  # fmt: skip
    timings["kpi run --select"] = time.perf_counter() - t
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1 acceptée(s), 1 rejetée(s)" in run.stdout, run.stdout[-3000:]
    # the portal's journal so far (every entry) went into the published copy with the run
    con = duckdb.connect(str(demo.warehouse), read_only=True)
    try:
        copied = [
            r[0]
            for r in con.execute("select action from audit.portal_journal order by id").fetchall()
        ]
    finally:
        con.close()
    assert copied == journal_actions(portal) and "gel" in copied, copied

    # --- 6. steering: late, rejected, reminded ------------------------------------------------------
    overview = page(steering.get("/pilotage"))
    assert f"{required - 1} livraisons attendues acceptées sur {required}" in overview.text
    late = page(steering.get(f"/pilotage?annee={YEAR}&filtre=retard")).tables["campagne"]
    assert [(r[0], r[1].split()[-1], r[7], r[9]) for r in late] == [
        ("sport", "indicateurs_declares", "16 j", "en retard de 16 jours")
    ], late
    rejected = page(steering.get(f"/pilotage?annee={YEAR}&filtre=rejete")).tables["campagne"]
    assert [(r[0], r[6], r[8]) for r in rejected] == [
        ("waste", "oui", f"indicateurs_declares_{YEAR}.xlsx")  # the previous one stays in force
    ], rejected
    assert rejected[0][9].startswith("rejeté (1 problème)")

    reminders = page(steering.get("/pilotage/relances"))
    assert "2 relance(s) en aperçu pour le 31/01/2026 : rien n'a été écrit ni envoyé" in (
        reminders.text
    )
    assert "À : Jérôme Dubois <jerome.dubois@bethunebruay.fr>" in reminders.text
    assert "À : David Vandenbussche <david.vandenbussche@bethunebruay.fr>" in reminders.text
    assert "Objet : Campagne 2025 du rapport d'activité : livraisons attendues" in reminders.text
    assert "Bonjour Jérôme Dubois," in reminders.text
    assert "attendue le 15/01/2026, en retard de 16 jours" in reminders.text
    assert "Livraisons rejetées (fichier reçu mais refusé au contrôle)" in reminders.text
    assert "valeur « beaucoup » : n'est pas un nombre" in reminders.text
    assert (
        f"Pièces jointes : indicateurs_declares_{YEAR}_corrige.xlsx.rejet.csv, "
        f"indicateurs_declares_{YEAR}.xlsx"
    ) in reminders.text
    assert "Envoyer ces 2 relance(s)" in reminders.text
    # « send » without a mail server: refused by `kpi remind --send`, nothing sent
    assert steering.post(f"/pilotage/relances?annee={YEAR}", data={}).status_code == 403
    sent = page(steering.post(f"/pilotage/relances?annee={YEAR}", data={"csrf": token}))
    assert "--send demande un serveur de messagerie (KPI_SMTP_HOST" in sent.text
    assert "KPI_SMTP_PASSWORD) ; rien n'a été écrit ni envoyé" in sent.text
    assert '<div class="error" role="alert">' in sent.html
    # neither the previews nor the refused send wrote an e-mail or a line of the journal
    assert not (portal.state / "relances").exists(), sorted((portal.state / "relances").rglob("*"))

    # --- 7. steering: the changed value in the gate, a second version with a reason --------------
    gate = page(steering.get("/pilotage/gel"))
    assert "Le gel serait accepté." in gate.text
    assert "Valeurs modifiées depuis leur revue : 1" in gate.text
    assert re.search(rf"^  - .*{INDICATOR}", gate.text, re.M), gate.text
    no_reason = page(
        steering.post(f"/pilotage/gel?annee={YEAR}", data={"csrf": token, "confirmation": "oui"})
    )
    assert "RA-2025-v1 existe déjà" in no_reason.text and "exige un motif" in no_reason.text
    assert not (demo.releases / "RA-2025-v2").exists()
    reason = "Culture : nombre d'éditions corrigé ; sport : livraison retirée"
    t = time.perf_counter()
    frozen = page(
        steering.post(
            f"/pilotage/gel?annee={YEAR}",
            data={"csrf": token, "confirmation": "oui", "motif": reason},
        )
    )
    timings["gel v2"] = time.perf_counter() - t
    assert "Publication RA-2025-v2 figée" in frozen.text, frozen.text

    # --- 8. auditor: two versions, their differences, a figure traced ----------------------------
    listed = page(auditor.get("/audit")).tables[
        "Publications (release.releases de la copie publiée)"
    ]
    assert [r[0] for r in listed] == ["RA-2025-v1", "RA-2025-v2"]
    assert "Publication intacte." in page(auditor.get("/audit/publications/RA-2025-v2")).text
    choose = page(auditor.get("/audit/diff"))
    assert '<option value="RA-2025-v2">' in choose.html and "Comparer" in choose.text
    bad = page(auditor.get("/audit/diff?ancienne=RA-2025-v1&nouvelle=../../etc"))
    assert "Choisissez la publication d'arrivée." in bad.text
    diff = page(auditor.get("/audit/diff?ancienne=RA-2025-v1&nouvelle=RA-2025-v2")).text
    assert "Différences entre RA-2025-v1 et RA-2025-v2" in diff
    assert f"motif de RA-2025-v2 : {reason}" in diff
    assert "Valeurs modifiées : 1" in diff
    assert f"  - {INDICATOR} — agglomération : {OLD_FIGURE} → {NEW_FIGURE}" in diff, diff
    withdrawn = int(re.search(r"Valeurs retirées : (\d+)", diff).group(1))
    assert withdrawn > 0  # sport's declared figures

    for version, file_name, figure in (
        ("RA-2025-v1", f"indicateurs_declares_{YEAR}.xlsx", OLD_FIGURE),
        ("RA-2025-v2", f"indicateurs_declares_{YEAR}_corrige.xlsx", NEW_FIGURE),
    ):
        traced = page(
            auditor.get(f"/audit/trace?indicateur={INDICATOR}&annee={YEAR}&publication={version}")
        ).text
        assert f"Publication : {version}" in traced
        assert f"Valeur : {figure} " in traced
        assert f"  - {file_name} (indicateurs_declares, campagne 2025, Direction de la Culture" in (
            traced
        ), traced
        assert re.search(r"feuille « Indicateurs » : 1 ligne\(s\) — ligne\(s\) 3 ", traced), traced
    traced = page(
        auditor.get(f"/audit/trace?indicateur={COMMUNE_INDICATOR}&annee={YEAR}&commune={COMMUNE}")
    ).text
    assert "Publication : RA-2025-v2" in traced and f"Allouagne ({COMMUNE})" in traced
    assert f"eau_reseau_{YEAR}.xlsx (eau_reseau" in traced
    assert re.search(r"feuille « Réseaux », commune 62023 : 1 ligne\(s\) — ligne\(s\) \d", traced)
    wrong = page(auditor.get("/audit/trace?indicateur=X;rm&annee=25&commune=abc"))
    assert "Identifiant d'indicateur attendu" in wrong.text
    assert "Année sur quatre chiffres attendue." in wrong.text
    assert "Code INSEE sur cinq caractères attendu" in wrong.text
    assert "Résultat (" not in wrong.text  # nothing was run

    # --- 9. the journal: who did what, on the page and in the store -----------------------------
    steering_actions = journal_actions(portal, "pilotage")
    assert steering_actions == [
        "connexion",
        "valeur revue",  # « anomalie »
        "gel refusé",  # the anomaly
        "valeur revue",  # qualified
        "gel",  # RA-2025-v1
        "relances non envoyées",  # no SMTP server
        "gel refusé",  # no reason
        "gel",  # RA-2025-v2
    ], steering_actions
    assert journal_actions(portal, "cac") == [
        "connexion",
        "publication vérifiée",
        "publication vérifiée",
    ]
    entries = {e["id"]: e for e in portal.store.journal(limit=1000)}
    by_action: dict[str, list[dict]] = {}
    for e in sorted(entries.values(), key=lambda e: e["id"]):
        by_action.setdefault(e["action"], []).append(e)
    assert by_action["valeur revue"][0]["detail"] == (
        f"{INDICATOR} agglomération : anomalie — {comment}"
    )
    assert by_action["valeur revue"][0]["year"] == YEAR
    assert by_action["valeur revue"][0]["role"] == "steering"
    # what came of each freeze, not the last step it printed
    assert by_action["gel refusé"][0]["detail"] == (
        "kpi freeze : gel refusé : 1 valeur(s) de 2025 en statut « anomalie » :"
    )
    assert by_action["gel refusé"][1]["detail"].startswith("kpi freeze : RA-2025-v1 existe déjà")
    assert [e["detail"].split(" :")[0] for e in by_action["gel"]] == [
        "Publication RA-2025-v1 figée",
        "Publication RA-2025-v2 figée",
    ]
    assert "KPI_SMTP_HOST" in by_action["relances non envoyées"][0]["detail"]
    assert [e["detail"] for e in by_action["publication vérifiée"]] == [
        "RA-2025-v1 : code 0",
        "RA-2025-v2 : code 0",
    ]
    journal = page(auditor.get("/audit/journal")).tables["Journal"]
    assert len(journal) == len(entries)
    on_page = [(r[1], r[2]) for r in reversed(journal)]
    assert on_page == [
        (e["login"], e["action"]) for e in sorted(entries.values(), key=lambda e: e["id"])
    ]
    assert any(r[2] == "gel" and r[3] == "2025" for r in journal)
    assert any(r[2] == "valeur revue" and comment in r[6] for r in journal)
    assert steering.get("/audit/journal").status_code == 200  # steering reads it too

    elapsed = time.perf_counter() - started
    print(
        f"\npages du pilotage et des auditeurs sur la démo : {elapsed:.0f} s en tout ; "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
        + f" ; {served} fichiers liés servis"
    )
