"""The collection campaign: campaign file, status, warehouse table, export, reminders."""

from __future__ import annotations

import datetime as dt
import hashlib
import socketserver
import threading
from pathlib import Path

import duckdb
import openpyxl
import pytest
from support.campaigns import CAMPAIGN_2025, write_campaign

from dagster_project.campaign.mail import read_reminder, send_reminders
from dagster_project.campaign.plan import CampaignError, load_campaign, uncovered
from dagster_project.campaign.reminders import write_reminders
from dagster_project.campaign.status import campaign_status, summarize, write_status_table
from dagster_project.campaign.status_report import export_status_xlsx, format_status
from dagster_project.ingest.store import ensure_ingest_tables
from dagster_project.settings import PROJECT_ROOT

TODAY = dt.date(2026, 2, 20)


@pytest.fixture
def sources(tmp_path):
    root = tmp_path / "sources"
    write_campaign(root, CAMPAIGN_2025)
    return root


@pytest.fixture
def con():
    connection = duckdb.connect(":memory:")
    ensure_ingest_tables(connection)
    yield connection
    connection.close()


def add_delivery(
    con,
    department: str,
    source_id: str,
    file_name: str,
    received_at: dt.datetime,
    outcome: str = "accepted",
    problems: int = 0,
    in_force: bool | None = None,
    year: int = 2025,
) -> str:
    delivery_id = f"{source_id}-{year}-{department}-{file_name}"
    report = f"/partage/sources/{year}/{department}/{file_name}.rejet.csv" if problems else None
    con.execute(
        "insert into ingest.deliveries (delivery_id, campaign_year, department, source_id, "
        "file_path, file_name, file_sha256, file_size, received_at, processed_at, outcome, "
        "row_count, problem_count, warning_count, sheet, report_path, depends_on, in_force) "
        "values (?, ?, ?, ?, ?, ?, ?, 1000, ?, ?, ?, ?, ?, 0, 'Données', ?, '', ?)",
        [
            delivery_id,
            year,
            department,
            source_id,
            f"/partage/sources/{year}/{department}/{file_name}",
            file_name,
            "ab" * 32,
            received_at,
            received_at + dt.timedelta(minutes=5),
            outcome,
            0 if outcome == "rejected" else 120,
            problems,
            report,
            outcome == "accepted" if in_force is None else in_force,
        ],
    )
    for n in range(problems):
        con.execute(
            "insert into ingest.delivery_problems values (?, 'error', 'Données', ?, ?, ?, ?)",
            [delivery_id, n + 2, "volume_produit_m3", f"-{n}", f"motif numéro {n + 1}"],
        )
    if problems:  # warnings never reach a reminder
        con.execute(
            "insert into ingest.delivery_problems values (?, 'warning', 'Données', null, "
            "'colonne_inconnue', null, 'colonne ignorée')",
            [delivery_id],
        )
    return delivery_id


@pytest.fixture
def deliveries(con):
    add_delivery(con, "water", "eau_udi", "eau_udi_2025.xlsx", dt.datetime(2026, 1, 20, 9, 30))
    add_delivery(
        con,
        "water",
        "eau_volumes",
        "eau_volumes_2025.xlsx",
        dt.datetime(2026, 2, 10, 14, 0),
        outcome="rejected",
        problems=12,
    )
    add_delivery(
        con,
        "housing",
        "logements_sociaux",
        "logements_sociaux_2025.xlsx",
        dt.datetime(2026, 2, 10, 11, 0),
    )
    add_delivery(
        con,
        "housing",
        "logements_sociaux",
        "logements_sociaux_2025_v2.xlsx",
        dt.datetime(2026, 2, 18, 16, 45),
        outcome="rejected",
        problems=2,
    )
    add_delivery(
        con,
        "economy",
        "indicateurs_declares",
        "indicateurs_declares_2025.xlsx",
        dt.datetime(2026, 1, 5, 8, 0),
    )
    # another year: never mixed in
    add_delivery(
        con,
        "waste",
        "dechets_collecte",
        "dechets_collecte_2024.xlsx",
        dt.datetime(2025, 1, 9),
        year=2024,
    )
    return con


def by_key(rows):
    return {(r.department, r.source_id): r for r in rows}


# --- campaign file ---------------------------------------------------------------------------


def test_load_campaign_reads_entries_and_defaults(sources):
    campaign = load_campaign(sources, 2025)
    assert campaign.year == 2025
    assert campaign.opening_date == dt.date(2025, 11, 17)
    assert campaign.steering.email == "pilotage@bethunebruay.fr"
    udi = campaign.entry("water", "eau_udi")
    assert udi.due_date == dt.date(2026, 1, 31)  # campaign default
    assert udi.required is True
    assert udi.owner.contact == "Sophie Delattre"
    assert campaign.entry("waste", "dechets_collecte").due_date == dt.date(2026, 2, 15)
    assert campaign.entry("hr", "rh_effectifs").due_date == dt.date(2026, 3, 15)  # JJ/MM/AAAA
    assert campaign.entry("culture", "indicateurs_declares").required is False
    assert campaign.entry("water", "eau_qualite") is None


def _error(sources, text, year=2025, **kwargs) -> CampaignError:
    write_campaign(sources, text, year)
    with pytest.raises(CampaignError) as info:
        load_campaign(sources, year, **kwargs)
    return info.value


def test_unknown_source_is_named_with_a_suggestion(sources):
    error = _error(sources, CAMPAIGN_2025.replace("eau_volumes:", "eau_volume:"))
    assert error.problems == [
        "direction « water », source « eau_volume » : source inconnue, aucun contrat "
        "sources/contracts/eau_volume.yml (vouliez-vous dire « eau_volumes » ?)"
    ]


def test_source_of_another_department_is_refused(sources):
    text = CAMPAIGN_2025.replace(
        "      dechets_collecte:", "      dechets_collecte:\n      eau_reseau:"
    )
    error = _error(sources, text)
    assert len(error.problems) == 1
    assert "source « eau_reseau »" in error.problems[0]
    assert (
        "livrée par la direction « water » (Direction du Petit Cycle de l'Eau), pas par « waste »"
        in error.problems[0]
    )


def test_declared_figures_need_declared_indicators(sources, tmp_path):
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text(
        "indicator_id,department,computation\n"
        "a,water,derived\nb,waste,derived\nc,housing,derived\nd,hr,derived\ne,culture,derived\n",
        encoding="utf-8",
    )
    error = _error(sources, CAMPAIGN_2025, catalogue_path=catalogue)
    assert error.problems == [
        "direction « culture », source « indicateurs_declares » : la direction « culture » ne "
        "porte aucun indicateur déclaré du catalogue, elle n'a rien à livrer dans "
        "« indicateurs_declares »"
    ]


def test_every_problem_is_listed_in_french(sources):
    text = (
        CAMPAIGN_2025.replace("campaign_year: 2025", "campaign_year: 2024")
        .replace("due_date: 2026-02-28", "due_date: 2026-02-31")
        .replace("helene.dufour@bethunebruay.fr", "helene.dufour")
        .replace("  culture:", "  cultur:")
        .replace("        required: false", "        required: peut-être")
    )
    error = _error(sources, text)
    message = str(error)
    assert "5 erreurs" in message
    assert "l'année de campagne « 2024 » ne correspond pas au dossier sources/2025/" in message
    assert "date invalide « 2026-02-31 » pour « due_date »" in message
    assert "adresse électronique invalide « helene.dufour »" in message
    assert "direction « cultur » inconnue" in message and "« culture »" in message
    assert "« required » doit valoir true ou false, pas « peut-être »" in message


def test_structure_errors(sources):
    assert "aucun fichier de campagne pour 2031" in str(_missing(sources, 2031))
    error = _error(
        sources, CAMPAIGN_2025.replace("      eau_udi:\n", "      eau_udi:\n      eau_udi:\n")
    )
    assert "clé « eau_udi » écrite deux fois (lignes 13 et 14)" in str(error)
    error = _error(sources, CAMPAIGN_2025.replace("    contact: Sophie Delattre\n", ""))
    assert error.problems == [
        "direction « water », source « eau_udi » : responsable incomplet, il manque contact",
        "direction « water », source « eau_volumes » : responsable incomplet, il manque contact",
    ]
    error = _error(
        sources,
        CAMPAIGN_2025.replace(
            "        due_date: 2026-02-15\n  waste", "        due: 2026-02-15\n  waste"
        ),
    )
    assert "direction « water », source « eau_volumes » : clé inconnue « due »" in error.problems[0]
    error = _error(sources, CAMPAIGN_2025.replace("due_date: 2026-02-28", "due_date: 2025-10-01"))
    assert error.problems == [
        "direction « housing », source « logements_sociaux » : l'échéance 01/10/2025 précède "
        "l'ouverture de la campagne (17/11/2025)"
    ]
    error = _error(sources, "campaign_year: 2025\n")
    assert "clé obligatoire manquante « opening_date »" in error.problems


def _missing(sources, year):
    with pytest.raises(CampaignError) as info:
        load_campaign(sources, year)
    return info.value


@pytest.mark.parametrize("year", [2023, 2024, 2025])
def test_demo_campaign_files_cover_the_kit(year):
    campaign = load_campaign(PROJECT_ROOT / "sources", year)
    assert uncovered(campaign) == []
    assert all(
        dt.date(year + 1, 1, 1) <= e.due_date <= dt.date(year + 1, 3, 31) for e in campaign.entries
    )
    assert 1 <= sum(not e.required for e in campaign.entries) <= 3
    assert all(e.owner.email.endswith("@bethunebruay.fr") for e in campaign.entries)


# --- status ----------------------------------------------------------------------------------


def test_status_rows(sources, deliveries):
    rows = campaign_status(deliveries, sources, 2025, TODAY)
    status = by_key(rows)
    assert set(status) == {
        ("water", "eau_udi"),
        ("water", "eau_volumes"),
        ("waste", "dechets_collecte"),
        ("housing", "logements_sociaux"),
        ("hr", "rh_effectifs"),
        ("culture", "indicateurs_declares"),
        ("economy", "indicateurs_declares"),
    }

    udi = status["water", "eau_udi"]
    assert (udi.received, udi.latest_outcome, udi.in_force_file, udi.days_late) == (
        True,
        "accepted",
        "eau_udi_2025.xlsx",
        0,
    )
    assert udi.status_fr == "reçu, accepté"
    assert udi.latest_sha256 == "ab" * 32

    volumes = status["water", "eau_volumes"]  # rejected, nothing in force: late too
    assert volumes.latest_outcome == "rejected" and volumes.problem_count == 12
    assert volumes.in_force_file is None
    assert volumes.days_late == 5
    assert volumes.status_fr == "rejeté (12 problèmes), en retard de 5 jours"
    assert volumes.report_path.endswith("eau_volumes_2025.xlsx.rejet.csv")

    collecte = status["waste", "dechets_collecte"]  # nothing received (2024 file not counted)
    assert not collecte.received and collecte.days_late == 5
    assert collecte.status_fr == "en retard de 5 jours"

    social = status["housing", "logements_sociaux"]  # re-delivery rejected, first one in force
    assert social.latest_file == "logements_sociaux_2025_v2.xlsx"
    assert social.latest_outcome == "rejected" and social.problem_count == 2
    assert social.in_force_file == "logements_sociaux_2025.xlsx"
    assert social.days_late == 0
    assert social.status_fr == "rejeté (2 problèmes), la livraison du 10/02/2026 reste en vigueur"

    effectifs = status["hr", "rh_effectifs"]
    assert effectifs.days_late == 0 and effectifs.status_fr == "attendu avant le 15/03/2026"

    culture = status["culture", "indicateurs_declares"]  # not required: never late
    assert culture.days_late == 0 and culture.status_fr == "facultatif, non reçu"

    economy = status["economy", "indicateurs_declares"]
    assert not economy.expected and economy.status_fr == "reçu, accepté (hors campagne)"
    assert economy.title_fr == "Indicateurs déclarés"

    summary = summarize(rows)
    assert (summary.expected, summary.received, summary.accepted) == (5, 3, 2)
    assert (summary.late, summary.rejected, summary.optional, summary.unexpected) == (2, 2, 1, 1)
    assert summary.text_fr() == (
        "Campagne 2025 : livraisons 3 reçues sur 5 attendues (2 acceptées), 2 en retard, "
        "2 rejetées ; 1 facultative, 1 hors campagne."
    )


def test_lateness_follows_the_clock(sources, con):
    on_due = by_key(campaign_status(con, sources, 2025, dt.date(2026, 1, 31)))
    assert on_due["water", "eau_udi"].days_late == 0
    assert on_due["water", "eau_udi"].status_fr == "attendu avant le 31/01/2026"
    assert on_due["culture", "indicateurs_declares"].status_fr == (
        "facultatif, attendu avant le 31/01/2026"
    )
    next_day = by_key(campaign_status(con, sources, 2025, dt.date(2026, 2, 1)))
    assert next_day["water", "eau_udi"].status_fr == "en retard de 1 jour"


def test_deposited_file_not_processed_yet(sources, con):
    folder = sources / "2025" / "waste"
    folder.mkdir(parents=True)
    (folder / "dechets_collecte_2025.xlsx").write_bytes(b"pas encore lu")
    (folder / "notes_reunion.xlsx").write_bytes(b"")  # matches no contract: ignored
    row = by_key(campaign_status(con, sources, 2025, TODAY))["waste", "dechets_collecte"]
    assert row.pending_file == "dechets_collecte_2025.xlsx"
    assert row.status_fr.startswith("déposé le ")
    assert row.status_fr.endswith(", en attente de traitement")
    assert row.days_late == 0  # the owner has delivered: processing is the steering's job
    reminders = write_reminders(con, sources, 2025, TODAY, sources.parent / "relances")
    assert [p.name for p in reminders] == ["relance_2025_sophie.delattre_at_bethunebruay.fr.eml"]


def test_touched_copy_of_a_processed_file_is_not_pending(sources, con):
    folder = sources / "2025" / "water"
    folder.mkdir(parents=True)
    content = b"contenu deja traite"
    (folder / "eau_udi_2025_copie.xlsx").write_bytes(content)
    delivery_id = add_delivery(
        con, "water", "eau_udi", "eau_udi_2025.xlsx", dt.datetime(2026, 1, 20, 9, 30)
    )
    con.execute(
        "update ingest.deliveries set file_sha256 = ? where delivery_id = ?",
        [hashlib.sha256(content).hexdigest(), delivery_id],
    )
    row = by_key(campaign_status(con, sources, 2025, TODAY))["water", "eau_udi"]
    assert row.pending_file is None and row.status_fr == "reçu, accepté"


def test_status_without_ingest_tables(sources):
    empty = duckdb.connect(":memory:")
    rows = campaign_status(empty, sources, 2025, TODAY)
    assert len(rows) == 6 and not any(r.received for r in rows)


def test_write_status_table_replaces_the_year(sources, deliveries):
    rows = campaign_status(deliveries, sources, 2025, TODAY)
    stamp = dt.datetime(2026, 2, 20, 7, 0)
    assert write_status_table(deliveries, 2025, rows, computed_at=stamp) == 7
    deliveries.execute(
        "insert into campaign.status (year, department, source_id) values (2024, 'water', 'eau_udi')"
    )
    assert write_status_table(deliveries, 2025, rows, computed_at=stamp) == 7
    counts = dict(
        deliveries.execute("select year, count(*) from campaign.status group by 1").fetchall()
    )
    assert counts == {2024: 1, 2025: 7}
    row = deliveries.execute(
        "select owner, email, due_date, required, received, latest_file, latest_outcome, "
        "problem_count, report_path, in_force_file, days_late, status_fr, computed_at "
        "from campaign.status where year = 2025 and source_id = 'eau_volumes'"
    ).fetchone()
    assert row == (
        "Sophie Delattre",
        "sophie.delattre@bethunebruay.fr",
        dt.date(2026, 2, 15),
        True,
        True,
        "eau_volumes_2025.xlsx",
        "rejected",
        12,
        "/partage/sources/2025/water/eau_volumes_2025.xlsx.rejet.csv",
        None,
        5,
        "rejeté (12 problèmes), en retard de 5 jours",
        stamp,
    )


def test_format_status(sources, deliveries):
    text = format_status(
        campaign_status(deliveries, sources, 2025, TODAY), [Path("sources/2025/water/x.xlsx")]
    )
    lines = text.splitlines()
    assert lines[0].split() == ["Direction", "Source", "Échéance", "Responsable", "Statut"]
    assert any(
        line.startswith("water") and "eau_volumes" in line and "! rejeté (12 problèmes)" in line
        for line in lines
    )
    assert "sources/2025/water/x.xlsx" in text
    assert lines[-1].startswith("Campagne 2025 : livraisons 3 reçues sur 5 attendues")


def test_export_xlsx(sources, deliveries, tmp_path):
    rows = campaign_status(deliveries, sources, 2025, TODAY)
    path = export_status_xlsx(rows, tmp_path / "export" / "campagne_2025.xlsx")
    book = openpyxl.load_workbook(path)
    sheet = book["Campagne 2025"]
    headers = [c.value for c in sheet[1]]
    assert headers[:8] == [
        "Année",
        "Direction",
        "Code direction",
        "Source",
        "Intitulé",
        "Responsable",
        "Courriel",
        "Échéance",
    ]
    assert {
        "Reçu le",
        "Résultat",
        "Problèmes",
        "Fichier en vigueur",
        "Jours de retard",
        "Statut",
    } <= set(headers)
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref.startswith("A1:")
    assert sheet.max_row == 1 + len(rows)
    records = [
        dict(zip(headers, (c.value for c in r), strict=True)) for r in sheet.iter_rows(min_row=2)
    ]
    late = next(r for r in records if r["Source"] == "dechets_collecte")
    assert late["Jours de retard"] == 5 and late["Échéance"].date() == dt.date(2026, 2, 15)
    late_row = 2 + records.index(late)
    assert sheet.cell(late_row, 1).fill.fgColor.rgb.endswith("F8CBAD")
    ok_row = 2 + next(i for i, r in enumerate(records) if r["Source"] == "eau_udi")
    assert not sheet.cell(ok_row, 1).fill.fgColor.rgb.endswith("F8CBAD")
    assert "Résumé" in book.sheetnames


# --- reminders -------------------------------------------------------------------------------


def test_reminders_one_per_owner_with_something_late_or_rejected(sources, deliveries, tmp_path):
    out = tmp_path / "relances"
    earlier = out / "2026-02-10"
    earlier.mkdir(parents=True)
    (earlier / "relance_2025_ancien_at_bethunebruay.fr.eml").write_text("gardé", encoding="utf-8")
    (out / "relance_2024_autre.eml").write_text("autre année", encoding="utf-8")
    paths = write_reminders(deliveries, sources, 2025, TODAY, out)
    assert sorted(p.name for p in paths) == [
        "relance_2025_david.vandenbussche_at_bethunebruay.fr.eml",
        "relance_2025_helene.dufour_at_bethunebruay.fr.eml",
        "relance_2025_sophie.delattre_at_bethunebruay.fr.eml",
    ]
    # each day's reminders in a folder of their own; earlier ones are kept
    assert {p.parent for p in paths} == {out / TODAY.isoformat()}
    assert (earlier / "relance_2025_ancien_at_bethunebruay.fr.eml").exists()
    assert (out / "relance_2024_autre.eml").exists()
    journal = (out / "journal_des_relances.csv").read_bytes()
    assert journal.startswith(b"\xef\xbb\xbf")  # French Excel
    lines = journal.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Écrite le;Destinataire;Adresse;Objet;Fichier")
    assert len(lines) == 4 and all(";;" not in line.split(";", 2)[2][:3] for line in lines[1:])
    assert any(
        "sophie.delattre@bethunebruay.fr" in line and "eau_volumes" in line for line in lines
    )
    messages = {p.name.split("_")[2]: read_reminder(p) for p in paths}
    sophie = messages["sophie.delattre"]
    assert sophie["Subject"] == "Campagne 2025 du rapport d'activité : livraisons attendues"
    assert sophie["From"].addresses[0].addr_spec == "pilotage@bethunebruay.fr"
    assert sophie["From"].addresses[0].display_name == "Direction du Pilotage Stratégique"
    assert sophie["To"].addresses[0].addr_spec == "sophie.delattre@bethunebruay.fr"
    assert sophie.get_body(("plain",)).get_content_charset() == "utf-8"
    body = sophie.get_body(("plain",)).get_content()
    assert "Bonjour Sophie Delattre," in body
    assert "eau_volumes_2025.xlsx reçu le 10/02/2026 a été rejeté (12 problèmes)" in body
    assert "échéance du 15/02/2026 dépassée de 5 jours" in body
    assert "Motifs du rejet (10 premiers sur 12) :" in body
    assert (
        "1. Feuille « Données », ligne 2, colonne « volume_produit_m3 », valeur « -0 » : "
        "motif numéro 1" in body
    )
    assert "motif numéro 10" in body and "motif numéro 11" not in body
    assert "colonne ignorée" not in body  # warnings are not reasons
    assert "Rapport complet joint à ce message : eau_volumes_2025.xlsx.rejet.csv" in body
    assert "/partage" not in body and str(sources) not in body  # no server path
    assert "eau_udi" not in body  # accepted, nothing to say
    attached = {part.get_filename() for part in sophie.iter_attachments()}
    assert "eau_volumes_2025.xlsx" in attached  # the blank template of the rejected source

    david = messages["david.vandenbussche"].get_body(("plain",)).get_content()
    assert "Livraisons en retard" in david
    assert "(dechets_collecte)" in david and "attendue le 15/02/2026, en retard de 5 jours" in david
    assert "Livraisons rejetées" not in david

    helene = messages["helene.dufour"].get_body(("plain",)).get_content()
    assert "logements_sociaux_2025_v2.xlsx reçu le 18/02/2026 a été rejeté (2 problèmes)" in helene
    assert (
        "La livraison précédente (logements_sociaux_2025.xlsx, reçue le 10/02/2026) reste en vigueur"
        in helene
    )
    assert "Motifs du rejet :" in helene and "motif numéro 2" in helene


def test_reminder_sender_is_configurable(sources, deliveries, tmp_path):
    paths = write_reminders(
        deliveries, sources, 2025, TODAY, tmp_path, sender="relances@bethunebruay.fr"
    )
    assert all(
        read_reminder(p)["From"].addresses[0].addr_spec == "relances@bethunebruay.fr" for p in paths
    )


def test_nobody_is_reminded_when_everything_is_in(sources, con, tmp_path):
    for department, source_id in [
        ("water", "eau_udi"),
        ("water", "eau_volumes"),
        ("waste", "dechets_collecte"),
        ("housing", "logements_sociaux"),
    ]:
        add_delivery(con, department, source_id, f"{source_id}_2025.xlsx", dt.datetime(2026, 1, 10))
    assert write_reminders(con, sources, 2025, TODAY, tmp_path / "relances") == []


class _FakeSMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: records (sender, recipients, data)."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 faux-serveur ESMTP")
        envelope = {"from": None, "to": []}
        while True:
            line = self.rfile.readline().decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                return
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 faux-serveur")
            elif verb == "MAIL":
                envelope = {"from": line.split(":", 1)[1].strip(), "to": []}
                self.reply("250 OK")
            elif verb == "RCPT":
                envelope["to"].append(line.split(":", 1)[1].strip())
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 fin par <CRLF>.<CRLF>")
                data = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk)
                self.server.received.append((envelope["from"], envelope["to"], b"".join(data)))
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 au revoir")
                return
            else:
                self.reply("250 OK")


def test_send_reminders_through_smtp(sources, deliveries, tmp_path):
    paths = write_reminders(deliveries, sources, 2025, TODAY, tmp_path)
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _FakeSMTPHandler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sent = send_reminders(paths, "127.0.0.1", server.server_address[1], timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert len(sent) == 3 and len(server.received) == 3
    recipients = sorted(to[0] for _, to, _ in server.received)
    assert recipients == [
        "<david.vandenbussche@bethunebruay.fr>",
        "<helene.dufour@bethunebruay.fr>",
        "<sophie.delattre@bethunebruay.fr>",
    ]
    assert all(sender == "<pilotage@bethunebruay.fr>" for sender, _, _ in server.received)
    assert all(
        b"Subject: Campagne 2025 du rapport =?utf-8?" in data for _, _, data in server.received
    )


def test_send_reminders_does_nothing_without_files():
    assert send_reminders([], "smtp.invalid", 25) == []


def test_kpi_remind_writes_and_sends_only_with_send(sources, tmp_path, capsys, monkeypatch):
    from support.settings import SETTINGS_VARS

    from dagster_project.cli import main

    monkeypatch.delenv("KPI_SMTP_HOST", raising=False)
    for name in SETTINGS_VARS:  # the command exports its settings: restored after the test
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    warehouse = tmp_path / "warehouse.duckdb"
    common = ["--year", "2025", "--sources", str(sources), "--warehouse", str(warehouse)]
    common += ["--today", TODAY.isoformat()]
    assert main(["remind", *common, "--send"]) == 1
    err = capsys.readouterr().err
    assert "--send demande un serveur de messagerie (KPI_SMTP_HOST" in err
    assert not (tmp_path / "relances").exists()

    assert main(["remind", *common]) == 0  # nothing delivered: every owner is late
    out = capsys.readouterr().out
    assert "Rien n'a été envoyé" in out and "--send" in out
    written = sorted((tmp_path / "relances" / "2025" / TODAY.isoformat()).glob("*.eml"))
    assert written
    journal = (tmp_path / "relances" / "2025" / "journal_des_relances.csv").read_text(
        encoding="utf-8-sig"
    )
    assert len(journal.splitlines()) == 1 + len(written)
    assert all(line.endswith(";") for line in journal.splitlines()[1:])  # not sent


def test_a_reminder_groups_the_same_reason_on_many_rows(sources, con, tmp_path):
    """Last year's file: the same reason on 1 800 rows is one line with its row range."""
    delivery = add_delivery(
        con,
        "water",
        "eau_volumes",
        "eau_volumes_2025.xlsx",
        dt.datetime(2026, 2, 10, 14, 0),
        outcome="rejected",
        problems=0,
    )
    con.execute(
        "update ingest.deliveries set problem_count = 1800 where delivery_id = ?", [delivery]
    )
    con.executemany(
        "insert into ingest.delivery_problems values (?, 'error', 'Volumes', ?, 'mois', ?, "
        "'date hors de l''année de la campagne 2025')",
        [[delivery, n + 2, f"2024-{n % 12 + 1:02d}"] for n in range(1800)],
    )
    [path] = [
        p
        for p in write_reminders(con, sources, 2025, TODAY, tmp_path / "relances")
        if "sophie" in p.name
    ]
    body = read_reminder(path).get_body(("plain",)).get_content()
    assert body.count("date hors de l'année de la campagne 2025") == 1
    assert (
        "1. Feuille « Volumes », lignes 2 à 1\u00a0801 (1\u00a0800 lignes), colonne « mois »"
        in body
    )
