"""Next year's campaign in one command (dagster_project/campaign/rollover.py, `kpi
next-campaign`), and templates of year N whose examples are in year N
(dagster_project/campaign/templates/wording.py)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import openpyxl
import pytest

from dagster_project.campaign.dates import add_years, non_working_reason
from dagster_project.campaign.plan import CampaignError, campaign_path, load_campaign
from dagster_project.campaign.rollover import (
    RolloverError,
    format_rollover,
    roll_campaign,
    roll_campaign_text,
    shift_free_text,
)
from dagster_project.campaign.templates.layout import DATA_SHEET, NOTICE_SHEET
from dagster_project.campaign.templates.wording import examples_for_year, type_label_fr
from dagster_project.campaign.templates.workbook import write_templates
from dagster_project.cli import main
from dagster_project.contracts.model import default_contracts
from dagster_project.settings import PROJECT_ROOT

REAL_SOURCES = PROJECT_ROOT / "sources"

# a small campaign of 2027, whose following year (2028) has a 29 February
CAMPAIGN_2027 = """\
# Campagne 2027 : essai (la collecte existe depuis 2019).
campaign_year: 2027
opening_date: 2027-11-15
default_due_date: 2028-01-31   # fin janvier 2028
comment_fr: "Rapport 2027 publié en 2028 #1"
departments:
  water:
    direction_fr: Direction du Petit Cycle de l'Eau
    contact: Sophie Delattre
    email: sophie.delattre@bethunebruay.fr
    sources:
      eau_udi:
        due_date: 2028-02-29
      eau_volumes:
        due_date: '29/02/2028'
        comment_fr: >-
          Volumes de 2027, à livrer avant le 29/02/2028.
  waste:
    direction_fr: Direction Déchets et Économie Circulaire
    contact: David Vandenbussche
    email: david.vandenbussche@bethunebruay.fr
    due_date: 28/02/2028
    sources:
      dechets_collecte:
"""


def _write(sources: Path, year: int, text: str) -> Path:
    path = campaign_path(sources, year)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def real_2025(tmp_path) -> Path:
    """A sources folder holding a copy of the project's sources/2025/campagne.yml."""
    target = campaign_path(tmp_path, 2025)
    target.parent.mkdir(parents=True)
    shutil.copyfile(campaign_path(REAL_SOURCES, 2025), target)
    return tmp_path


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    """`kpi` exports its settings to the environment: keep that inside the test."""
    for key, value in {
        "KPI_SOURCES": tmp_path,
        "KPI_WAREHOUSE": tmp_path / "warehouse.duckdb",
        "KPI_BUILD_WAREHOUSE": tmp_path / "build.duckdb",
        "KPI_RELEASES": tmp_path / "releases",
        "KPI_DBT_TARGET": "duckdb",
        "KPI_TODAY": "2026-12-05",
    }.items():
        monkeypatch.setenv(key, str(value))


# --- the project's real campaign file -------------------------------------------------------


def test_real_campaign_rolls_into_a_valid_next_year(real_2025):
    before = load_campaign(REAL_SOURCES, 2025)
    result = roll_campaign(real_2025, 2025)
    assert result.target == campaign_path(real_2025, 2026) and result.target.is_file()
    assert not result.overwritten
    after = load_campaign(real_2025, 2026)  # the same validation as any campaign file
    assert after.year == 2026
    assert after.opening_date == add_years(before.opening_date) == dt.date(2026, 11, 17)
    assert after.default_due_date == add_years(before.default_due_date) == dt.date(2027, 1, 31)
    assert after.steering == before.steering
    assert len(after.entries) == len(before.entries) == 47
    for old, new in zip(before.entries, after.entries, strict=True):
        assert (new.department, new.source_id) == (old.department, old.source_id)
        assert new.due_date == add_years(old.due_date)  # every date one year later
        assert new.owner == old.owner  # direction, contact, e-mail kept
        assert new.required == old.required
        assert new.comment_fr == shift_free_text(old.comment_fr, 2025)
    assert after.comment_fr == (
        "Collecte des données 2026 pour le rapport d'activité publié en 2027."
    )


def test_real_campaign_keeps_comments_and_layout(real_2025):
    source = campaign_path(real_2025, 2025).read_text(encoding="utf-8")
    rolled = roll_campaign(real_2025, 2025)
    written = rolled.target.read_text(encoding="utf-8")
    assert written == rolled.rollover.text
    old_lines, new_lines = source.splitlines(), written.splitlines()
    assert len(new_lines) == len(old_lines)
    date_lines = {c.line for c in rolled.rollover.dates} | {rolled.rollover.year_line}
    text_lines = {t.line for t in rolled.rollover.texts}
    assert text_lines == {
        number
        for number, line in enumerate(old_lines, start=1)
        if ("#" in line or "comment_fr" in line) and shift_free_text(line, 2025) != line
    }
    assert {1, 2, 6} <= text_lines  # the two comments, the top comment_fr
    for number, (old, new) in enumerate(zip(old_lines, new_lines, strict=True), start=1):
        if old.lstrip().startswith("#"):
            assert new == shift_free_text(old, 2025)  # comments kept, their years moved
        elif number not in date_lines | text_lines:
            assert new == old, number  # everything else byte for byte
    assert new_lines[0] == "# Campagne 2026 du rapport d'activité : qui livre quoi, pour quand."
    assert "un dossier sources/2026/<direction>/." in new_lines[1]
    due_dates = len(re.findall(r"^\s+due_date:", source, re.M))
    assert len(rolled.rollover.dates) == 2 + due_dates  # opening, default, every due_date


def test_report_says_what_was_written_and_what_to_check(real_2025):
    text = format_rollover(roll_campaign(real_2025, 2025))
    assert "Campagne 2026 préparée" in text and "Ouverture : 17/11/2025 → 17/11/2026" in text
    assert "47 livraisons attendues" in text and "repris tels quels" in text
    assert "À vérifier par la Direction du Pilotage Stratégique" in text
    assert "les échéances" in text and "les responsables" in text
    # 31/01/2027 and 28/02/2027 are Sundays: named, with how many deliveries fall on them
    assert "31/01/2027 (dimanche)" in text and "28/02/2027 (dimanche)" in text
    assert "ligne 6 : comment_fr: Collecte des données 2026" in text
    assert "kpi templates --year 2026" in text


# --- dates, formats, free text ----------------------------------------------------------------


def test_29_february_and_date_formats(tmp_path):
    _write(tmp_path, 2027, CAMPAIGN_2027)
    result = roll_campaign(tmp_path, 2027)
    campaign = load_campaign(tmp_path, 2028)
    due = {e.source_id: e.due_date for e in campaign.entries}
    assert due == {
        "eau_udi": dt.date(2029, 2, 28),  # 2029 has no 29 February
        "eau_volumes": dt.date(2029, 2, 28),
        "dechets_collecte": dt.date(2029, 2, 28),  # 28 February stays 28, not 29
    }
    text = result.target.read_text(encoding="utf-8")
    assert "        due_date: 2029-02-28\n" in text  # each date in the format it had
    assert "        due_date: '28/02/2029'\n" in text  # quotes kept
    assert "    due_date: 28/02/2029\n" in text
    assert "default_due_date: 2029-01-31   # fin janvier 2029\n" in text  # comment after a date
    assert "# Campagne 2028 : essai (la collecte existe depuis 2019).\n" in text
    assert 'comment_fr: "Rapport 2028 publié en 2029 #1"\n' in text  # a « # » in a string
    assert "Volumes de 2028, à livrer avant le 28/02/2029." in text  # folded block
    clamped = [c for c in result.rollover.dates if c.clamped]
    assert [(c.where, c.after) for c in clamped] == [
        ("direction « water », source « eau_udi »", dt.date(2029, 2, 28)),
        ("direction « water », source « eau_volumes »", dt.date(2029, 2, 28)),
    ]
    report = format_rollover(result)
    assert "le 29/02/2028 devient le 28/02/2029 (2029 n'a pas de 29 février)" in report


def test_free_text_moves_only_this_year_and_the_next():
    assert shift_free_text("Campagne 2025, rapport publié en 2026", 2025) == (
        "Campagne 2026, rapport publié en 2027"
    )
    assert shift_free_text("avant le 31/01/2026 (2026-01-31)", 2025) == (
        "avant le 31/01/2027 (2027-01-31)"
    )
    assert shift_free_text("depuis 2019, base 2010, objectif 2030", 2025) == (
        "depuis 2019, base 2010, objectif 2030"
    )
    assert shift_free_text("le 29/02/2028", 2027) == "le 28/02/2029"
    assert shift_free_text("code 120256, tél. 03 21 61 50 00", 2025) == (
        "code 120256, tél. 03 21 61 50 00"
    )
    assert add_years(dt.date(2028, 2, 29)) == dt.date(2029, 2, 28)
    assert add_years(dt.date(2027, 2, 28)) == dt.date(2028, 2, 28)


def test_non_working_days():
    assert non_working_reason(dt.date(2027, 1, 31)) == "dimanche"
    assert non_working_reason(dt.date(2027, 3, 29)) == "lundi, lundi de Pâques"
    assert non_working_reason(dt.date(2027, 2, 15)) is None


def test_other_campaign_year_is_left_for_validation(tmp_path):
    rolled = roll_campaign_text(
        CAMPAIGN_2027.replace("campaign_year: 2027", "campaign_year: 26"), 2027
    )
    assert "campaign_year: 26\n" in rolled.text


# --- refusals ---------------------------------------------------------------------------------


def test_existing_target_is_refused_unless_force(real_2025):
    target = _write(real_2025, 2026, "# à la main\n")
    with pytest.raises(RolloverError, match="existe déjà.*--force"):
        roll_campaign(real_2025, 2025)
    assert target.read_text(encoding="utf-8") == "# à la main\n"  # untouched
    result = roll_campaign(real_2025, 2025, force=True)
    assert result.overwritten
    assert load_campaign(real_2025, 2026).year == 2026


def test_invalid_result_is_refused_and_nothing_written(tmp_path):
    _write(tmp_path, 2027, CAMPAIGN_2027.replace("dechets_collecte:", "dechets_collect:"))
    with pytest.raises(CampaignError) as caught:
        roll_campaign(tmp_path, 2027)
    assert caught.value.path == campaign_path(tmp_path, 2028)
    assert "vouliez-vous dire « dechets_collecte »" in str(caught.value)
    assert not campaign_path(tmp_path, 2028).exists()
    assert not any(campaign_path(tmp_path, 2028).parent.glob("*"))  # no temporary file left


def test_missing_source_says_what_year_means(tmp_path):
    with pytest.raises(RolloverError, match="--year est l'année de la campagne existante"):
        roll_campaign(tmp_path, 2025)


# --- the command ------------------------------------------------------------------------------


def test_kpi_next_campaign(real_2025, cli_env, capsys):
    args = ["next-campaign", "--year", "2025", "--sources", str(real_2025)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"Campagne 2026 préparée : {campaign_path(real_2025, 2026)} écrit" in out
    assert "À vérifier par la Direction du Pilotage Stratégique" in out
    assert "les échéances" in out and "les responsables" in out
    assert load_campaign(real_2025, 2026).year == 2026

    assert main(args) == 1  # no overwrite
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "kpi next-campaign : " in captured.err and "existe déjà" in captured.err

    assert main([*args, "--force"]) == 0
    assert "remplacé d'après" in capsys.readouterr().out

    assert main(["next-campaign", "--year", "2030", "--sources", str(real_2025)]) == 1
    assert "aucun fichier de campagne" in capsys.readouterr().err


def test_kpi_next_campaign_refuses_an_invalid_result(tmp_path, cli_env, capsys):
    _write(
        tmp_path,
        2027,
        CAMPAIGN_2027.replace("opening_date: 2027-11-15", "opening_date: 2028-03-01"),
    )
    assert main(["next-campaign", "--year", "2027", "--sources", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "la campagne 2028 obtenue n'est pas valide, rien n'a été écrit" in err
    assert "précède l'ouverture de la campagne (01/03/2029)" in err
    assert not campaign_path(tmp_path, 2028).exists()


# --- templates of year N: examples in year N -------------------------------------------------

YEAR = 2027
# every contract, once: the detailed sources of these four departments, declared figures of one
TEMPLATE_DEPARTMENTS = ["water", "waste", "housing", "hr", "culture"]
_YEAR_RE = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")


def _other_years(text: str, allowed: set[str]) -> list[str]:
    return [m[0] for m in _YEAR_RE.finditer(text) if m[0] != str(YEAR) and m[0] not in allowed]


def test_templates_of_a_year_give_examples_of_that_year(tmp_path):
    """Every year in the Notice, the header and the input help of a 2027 template is 2027, but:

    - the bounds of a contract rule (``date_range: {min_year: 2015}``: « à partir de 2015 »,
      ``DATE(2015,1,1)``) and the technical floor ``DATE(1900,1,1)`` of a date without rule;
    - « une prévision peut être datée de l'année suivante (ex. 01/01/2028) »: N + 1, meant.

    Not checked, because they are data rather than examples: the prefilled indicator ids and
    their cell comments, and the ``Indicateurs`` sheet (catalogue labels like « depuis
    décembre 2024 », the last figure « publié au rapport 2025 » with its period). A due date
    given by the campaign file falls in N + 1 (« Date limite : 31/01/2028 »).
    """
    contracts = default_contracts()
    paths = write_templates(YEAR, tmp_path, departments=TEMPLATE_DEPARTMENTS)
    assert {p.stem.rsplit("_", 1)[0] for p in paths} == set(contracts)
    problems = []
    for path in paths:
        contract = contracts[path.stem.rsplit("_", 1)[0]]
        rule_years = {
            str(c.effective_date_range["min_year"])
            for c in contract.columns
            if isinstance(c.effective_date_range, dict) and c.effective_date_range.get("min_year")
        }
        wb = openpyxl.load_workbook(path)
        texts = [
            str(cell)
            for row in wb[NOTICE_SHEET].iter_rows(values_only=True)
            for cell in row
            if cell is not None
        ]
        data = wb[DATA_SHEET]
        texts += [str(c.value) for c in data[1]]
        for dv in data.data_validations.dataValidation:
            texts += [t for t in (dv.prompt, dv.error, dv.formula1, dv.formula2) if t]
        texts.append(wb.properties.title)
        for text in texts:
            for year in _other_years(text, rule_years):
                if year == "1900" and text == "DATE(1900,1,1)":
                    continue
                if year == str(YEAR + 1) and f"l'année suivante (ex. 01/01/{YEAR + 1})" in text:
                    continue
                problems.append((path.name, year, text[:120]))
    assert problems == []

    notice = "\n".join(
        str(c)
        for row in openpyxl.load_workbook(tmp_path / "water" / f"eau_volumes_{YEAR}.xlsx")[
            NOTICE_SHEET
        ].iter_rows(values_only=True)
        for c in row
        if c is not None
    )
    assert f"(ex. janvier {YEAR}, {YEAR}-01 ou 01/{YEAR})" in notice
    assert f"mois (AAAA-MM ou « janvier {YEAR} »)" in notice
    assert f"« janvier {YEAR} »" in notice  # the kit rule on months


def test_examples_for_year():
    text = "à partir de 2015 (ex. 29/02/2024, 2025-01 ou janvier 2025) ; ex. 2026-01-31."
    assert examples_for_year(text, 2025) == text  # the contracts' own year: unchanged
    assert examples_for_year(text, 2026) == (
        "à partir de 2015 (ex. 28/02/2025, 2026-01 ou janvier 2026) ; ex. 2027-01-31."
    )
    assert type_label_fr("month", 2027) == "mois (AAAA-MM ou « janvier 2027 »)"
    assert type_label_fr("date", 2027) == "date (JJ/MM/AAAA)"
