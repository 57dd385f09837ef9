"""Nothing implausible is frozen unseen: the plausibility bound, the warning checks' values,
qualification in `kpi review`, what `kpi freeze` shows (and `--dry-run`), what the release
and its report say of a confirmed atypical value.

The small hand-built warehouse of support/warehouses.py (declared_budget 900 € in 2024). The
issue's scenario on the demo, through the `kpi` commands: tests/integration/test_plausibility.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json

import duckdb
import pytest
from support.french import fr
from support.warehouses import YEAR, build_warehouse, fake_exports

from dagster_project.cli import main
from dagster_project.quality import plausibility
from dagster_project.quality.plausibility import bound_reason, freeze_summary
from dagster_project.quality.review import STATUS_OK, set_review
from dagster_project.release import freeze as freeze_module
from dagster_project.release.freeze import freeze
from dagster_project.release.gate import FreezeRefused


@pytest.fixture(autouse=True)
def _fake_exports(monkeypatch):
    monkeypatch.setattr(freeze_module, "_write_exports", fake_exports)


@pytest.fixture
def path(tmp_path):
    return build_warehouse(tmp_path / "w.duckdb")


def _set(path, indicator: str, value: float, year: int = YEAR, code: str | None = None) -> None:
    con = duckdb.connect(str(path))
    con.execute(
        "update marts.fct_indicator_values set value = ? where indicator_id = ? and year = ? "
        "and code_insee is not distinct from ?",
        [value, indicator, year, code],
    )
    con.close()


# --- the bound ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "previous", "flagged"),
    [
        (15_000, 15, True),  # ×1000: the error of the issue
        (15, 15_000, True),  # ÷1000
        (140, 15, False),  # ×9.3: within ×10
        (160, 15, True),
        (-5, 12, True),  # sign change
        (15_000, 0, True),  # appears at the agglomeration
        (0, 15_000, True),  # vanishes
        (3, 0, False),  # 0 -> 3: too small to be news
        (None, 15, False),
        (15, None, False),
    ],
)
def test_bound_of_ten_year_over_year(value, previous, flagged):
    assert bool(bound_reason(value, previous)) is flagged


def test_a_commune_value_appearing_is_not_news_but_its_jump_is():
    assert bound_reason(2734, 0, zero_counts=False) is None
    assert bound_reason(524_202.84, 5_110.04, zero_counts=False).startswith("×103 en un an")


def test_an_indicator_can_set_its_own_bound(tmp_path, monkeypatch):
    catalogue = tmp_path / "indicator_catalogue.csv"
    catalogue.write_text("indicator_id\n", encoding="utf-8")
    (tmp_path / "indicator_catalogue_extensions.csv").write_text(
        "indicator_id,allow_negative,target_of,plausibility_factor,comment_fr\n"
        "water_network_capex,false,,200,travaux ponctuels\n"
        "unemployment_rate_change,true,,,négatif permis\n",
        encoding="utf-8",
    )
    assert plausibility.plausibility_factors(catalogue) == {"water_network_capex": 200.0}
    assert bound_reason(524_202.84, 5_110.04, 200) is None


def test_the_project_catalogue_bounds_are_positive_and_explained():
    factors = plausibility.plausibility_factors()
    assert factors == {"sanitation_network_capex": 200.0, "water_network_capex": 200.0}


# --- the freeze -----------------------------------------------------------------------------


def test_a_thousandfold_value_refuses_the_freeze_until_qualified(path, tmp_path):
    _set(path, "declared_budget", 900_000.0)  # 900 € in 2024, typed ×1000 in 2025
    con = duckdb.connect(str(path))
    try:
        with pytest.raises(FreezeRefused) as refused:
            freeze(con, YEAR, tmp_path / "releases")
        message = str(refused.value)
        assert "1 valeur(s) atypique(s) de 2025 non qualifiée(s)" in message
        assert fr("declared_budget — agglomération : ×1 000 en un an (900 → 900 000") in message
        assert "kpi review set --year 2025 --indicator declared_budget --status ok" in message
        assert refused.value.summary.unqualified[0].indicator_id == "declared_budget"
        assert not (tmp_path / "releases").exists()  # nothing written

        # a review without comment does not qualify it
        set_review(con, YEAR, "declared_budget", None, STATUS_OK, None, "dps")
        with pytest.raises(FreezeRefused):
            freeze(con, YEAR, tmp_path / "releases")
        set_review(
            con,
            YEAR,
            "declared_budget",
            None,
            STATUS_OK,
            "budget annexe intégré en 2025 : montant confirmé par la direction des finances",
            "dps",
        )
        release = freeze(con, YEAR, tmp_path / "releases")
        note = con.execute(
            "select plausibility_note, review_comment from release.release_values "
            "where release_id = ? and indicator_id = 'declared_budget'",
            [release.release_id],
        ).fetchone()
        assert note[0].startswith(fr("valeur atypique (×1 000 en un an"))
        assert note[1].startswith("budget annexe intégré")
        manifest = json.loads((release.folder / "manifest.json").read_text(encoding="utf-8"))
        [flag] = manifest["plausibility"]["flagged"]
        assert flag["indicator_id"] == "declared_budget" and flag["status"] == STATUS_OK
        assert flag["comment"].startswith("budget annexe")
    finally:
        con.close()


def test_a_value_changed_after_its_review_must_be_reviewed_again(path, tmp_path):
    _set(path, "declared_budget", 900_000.0)
    con = duckdb.connect(str(path))
    try:
        set_review(con, YEAR, "declared_budget", None, STATUS_OK, "confirmé", "dps")
        con.execute(
            "update marts.fct_indicator_values set value = 950000 "
            "where indicator_id = 'declared_budget' and year = 2025"
        )
        with pytest.raises(FreezeRefused) as refused:
            freeze(con, YEAR, tmp_path / "releases")
        assert "valeur modifiée depuis sa revue : à revoir" in str(refused.value)
        summary = refused.value.summary
        assert summary.changed_since_review == [
            fr("declared_budget (agglomération) : 900 000 à la revue, 950 000 maintenant")
        ]
    finally:
        con.close()


def test_a_failed_warning_check_flags_the_values_it_failed_on(path, tmp_path):
    """marts_fct_yoy_jumps (±50 % on stock figures of at least 10): 29 km -> 60 km of
    network fails it, although it is within ×10."""
    _set(path, "water_network_length", 60.0)
    con = duckdb.connect(str(path))
    try:
        [flag] = plausibility.implausible_values(con, YEAR)
        assert flag.indicator_id == "water_network_length" and flag.code_insee is None
        assert flag.reasons[0].startswith("contrôle marts_fct_yoy_jumps")
        assert "change_pct = 106" in flag.reasons[0]
    finally:
        con.close()


def test_kpi_freeze_shows_what_it_freezes_and_dry_run_writes_nothing(path, tmp_path, capsys):
    warehouse = tmp_path / "warehouse.duckdb"
    build = warehouse.parent / ".build" / warehouse.name
    build.parent.mkdir()
    path.rename(build)
    _set(build, "declared_budget", 900_000.0)
    common = ["--warehouse", str(warehouse), "--releases", str(tmp_path / "releases")]
    code = main(["freeze", "--year", "2025", "--dry-run", *common])
    out, err = capsys.readouterr()
    assert code == 3
    assert "Valeurs atypiques : 1 (1 à qualifier, 0 qualifiée(s))" in out
    assert "Valeurs non revues : 5 sur 5" in out
    assert "gel refusé" in err and "Simulation (--dry-run) : rien n'a été écrit." in err
    assert not (tmp_path / "releases").exists()

    code = main(
        ["review", "set", "--year", "2025", "--indicator", "declared_budget", "--status", "ok"]
        + ["--comment", "confirmé par les finances", "--reviewer", "dps", *common[:2]]
    )
    assert code == 0
    capsys.readouterr()
    code = main(["freeze", "--year", "2025", "--dry-run", *common])
    out, _err = capsys.readouterr()
    assert code == 0
    assert "Valeurs atypiques : 1 (0 à qualifier, 1 qualifiée(s))" in out
    assert "qualifiée « sans anomalie apparente » par dps : confirmé par les finances" in out
    assert "le gel serait accepté ; rien n'a été écrit" in out
    assert not (tmp_path / "releases").exists()

    code = main(["freeze", "--year", "2025", "--no-publish", *common])
    out, _err = capsys.readouterr()
    assert code == 0 and "Publication RA-2025-v1 figée" in out
    assert out.index("Valeurs atypiques") < out.index("Publication RA-2025-v1 figée")


def test_the_freeze_summary_lists_failed_warning_checks_and_reviews(path):
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "insert into audit.check_results values ('run-1', now(), 'marts_fct_yoy_jumps', "
            "'marts/fct_indicator_values', false, false, 'WARN', 'évolution > 50 % : 1 ligne', "
            "'{}')"
        )
        summary = freeze_summary(con, YEAR, "run-1")
        text = summary.text()
        assert "Contrôles d'avertissement en échec : 1" in text
        assert "marts_fct_yoy_jumps : évolution > 50 % : 1 ligne" in text
        assert summary.unreviewed == summary.value_count == 5
    finally:
        con.close()


def test_the_report_never_shows_a_confirmed_atypical_value_as_a_plain_figure():
    from dagster_project.release.exports.common import Row
    from dagster_project.release.exports.html_report import _detail_line, _figure_line

    row = Row(
        priority="P2",
        objective="",
        indicator_id="wwtp_count",
        label_fr="Stations d'épuration",
        code_insee=None,
        commune_name="Agglomération",
        value=15_000,
        unit="count",
        as_of_date=None,
        previous_year_value=15,
        change=14_985,
        change_pct=99_900,
        target_value=None,
        comment=None,
        review_status=STATUS_OK,
        review_comment="recomptage des ouvrages",
        kind="value",
        order=0,
        plausibility_note="valeur atypique (×1 000 en un an (15 → 15 000 ; borne ×10))",
    )
    figure, detail = _figure_line(row), _detail_line(row, YEAR)
    assert "valeur atypique, confirmée" in figure
    assert 'class="hausse"' not in detail  # not a green « +99 900 % »
    assert "confirmée : recomptage des ouvrages" in detail


# --- told at delivery time: the notice beside the file, kpi status, the reminders -------------


def _delivery_file(con, sources, delivery_id):
    year, department, name = con.execute(
        "select campaign_year, department, file_name from ingest.deliveries where delivery_id = ?",
        [delivery_id],
    ).fetchone()
    path = sources / str(year) / department / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"classeur")
    return path


def test_an_accepted_delivery_with_atypical_values_gets_a_notice_beside_it(path, tmp_path):
    from support.warehouses import D_DECL_25

    from dagster_project.campaign.status import StatusRow, status_label
    from dagster_project.quality.notices import (
        atypical_counts,
        atypical_lines,
        record_atypical_values,
        write_notices,
    )

    _set(path, "declared_budget", 900_000.0)
    sources = tmp_path / "sources"
    con = duckdb.connect(str(path))
    try:
        delivery = _delivery_file(con, sources, D_DECL_25)
        notices = write_notices(con, sources, record_atypical_values(con, sources))
        notice = delivery.with_name(delivery.name + ".a_confirmer.csv")
        assert notices == [notice]
        raw = notice.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")  # French Excel reads UTF-8 with its BOM
        lines = raw.decode("utf-8-sig").splitlines()
        assert lines[0].split(";")[:3] == ["Indicateur", "Libellé", "Commune"]
        assert lines[1].startswith("declared_budget;Budget déclaré;agglomération;2025;")
        assert fr("×1 000 en un an") in lines[1] and "fichier corrigé" in lines[1]
        assert atypical_counts(con, 2025) == {D_DECL_25: 1}
        assert atypical_lines(con, 2025, D_DECL_25)[0].startswith("Budget déclaré (agglomération)")
        row = StatusRow(2025, "finance", "indicateurs_declares", in_force_file=delivery.name)
        row.atypical_count = 1
        assert status_label(row, dt.date(2026, 1, 15)) == (
            f"reçu, accepté, 1 valeur à confirmer (voir {notice.name})"
        )

        # qualified: the notice goes, the table keeps the value as qualified
        set_review(con, YEAR, "declared_budget", None, STATUS_OK, "confirmé", "dps")
        assert write_notices(con, sources, record_atypical_values(con, sources)) == []
        assert not notice.exists()
        assert con.execute("select qualified from quality.atypical_values").fetchall() == [(True,)]
    finally:
        con.close()


def test_a_link_planted_at_the_notice_name_is_replaced_not_followed(path, tmp_path):
    from support.warehouses import D_DECL_25

    from dagster_project.quality.notices import record_atypical_values, write_notices

    _set(path, "declared_budget", 900_000.0)
    sources = tmp_path / "sources"
    outside = tmp_path / "outside.txt"
    outside.write_text("à garder", encoding="utf-8")
    con = duckdb.connect(str(path))
    try:
        delivery = _delivery_file(con, sources, D_DECL_25)
        notice = delivery.with_name(delivery.name + ".a_confirmer.csv")
        notice.symlink_to(outside)
        write_notices(con, sources, record_atypical_values(con, sources))
    finally:
        con.close()
    assert outside.read_text(encoding="utf-8") == "à garder"
    assert not notice.is_symlink() and "declared_budget" in notice.read_text(encoding="utf-8-sig")


def test_notices_are_not_deliveries(tmp_path, contracts):
    from dagster_project.ingest.discovery import discover

    folder = tmp_path / "sources" / "2025" / "water"
    folder.mkdir(parents=True)
    (folder / "eau_reseau_2025.xlsx").write_bytes(b"x")
    (folder / "eau_reseau_2025.xlsx.a_confirmer.csv").write_bytes(b"x")
    assert [d.path.name for d in discover(tmp_path / "sources", contracts)] == [
        "eau_reseau_2025.xlsx"
    ]


def test_values_read_narrowed_in_sql_give_the_same_flags_as_every_value_judged(path):
    """``implausible_values`` reads only the values that may be implausible (``_candidates``:
    beyond the bound in SQL with a margin, or named by a warning check) and judges them as it
    judges every value: the same flags, the same reasons, at the bound's edges too."""
    from dagster_project.quality.review import reviewed_values

    pairs = [  # (this year, the year before)
        (10.0, 1.0),  # ×10 exactly: within the bound
        (10.000001, 1.0),
        (1.0, 10.0),
        (1.0, 10.000001),
        (-1.0, 1.0),  # sign change
        (-20.0, -1.0),
        (-5.0, -4.0),
        (0.0, 0.0),
        (0.0, 10.0),  # vanishes (an agglomeration value: flagged; a commune's: not)
        (0.0, 9.999999),
        (12.0, 0.0),
        (float("nan"), 3.0),
        (3.0, float("nan")),
        (None, 3.0),  # no value this year, or none the year before
        (3.0, None),
        (2_000.0, 10.0),  # ×200: the bound of water_network_capex
        (2_000.1, 10.0),
        (60.0, 29.0),  # a stock figure +107 %: the yoy warning check
    ]
    template = "water_network_length"
    con = duckdb.connect(str(path))
    try:
        for number, (value, previous) in enumerate(pairs):
            commune = f"99{number:03d}"
            places = [(f"synthetic_{number}", None), (template, commune)]
            places.append(("water_network_capex", commune))
            if value == 2_000.1:  # the custom bound at the agglomeration
                places.append(("water_network_capex", None))
            for (indicator, code), (year, figure) in itertools.product(
                places, ((YEAR, value), (YEAR - 1, previous))
            ):
                if figure is not None:
                    con.execute(
                        "insert into marts.fct_indicator_values select * replace "
                        "(?::varchar as indicator_id, ?::integer as year, "
                        "?::varchar as code_insee, ?::double as value) "
                        "from marts.fct_indicator_values where indicator_id = ? limit 1",
                        [indicator, year, code, figure, template],
                    )
        narrowed = plausibility.implausible_values(con, YEAR)
        every = plausibility.implausible_values(con, YEAR, reviewed_values(con, YEAR))
        assert narrowed == every
        assert len(narrowed) >= 15
        candidates = plausibility._candidates(
            plausibility.plausibility_factors(), plausibility._warning_check_rows(con, YEAR)
        )
        read = reviewed_values(con, YEAR, narrowed=candidates)
        assert len(narrowed) <= len(read) < len(reviewed_values(con, YEAR))  # (edge cases)
        assert any(r.startswith("contrôle marts_fct_yoy_jumps") for f in every for r in f.reasons)
    finally:
        con.close()
