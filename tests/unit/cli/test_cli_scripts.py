"""What scripts rely on: `--json` (status, verify, diff, review list), `kpi --quiet`, freeze
progress on stderr, help text on every option (docs/cli.md)."""

from __future__ import annotations

import argparse
import json
import time

import duckdb
import pytest
from support.campaigns import CAMPAIGN_2025, write_campaign
from support.warehouses import build_warehouse, fake_exports

from dagster_project.cli import build_parser, main
from dagster_project.lib import progress as progress_lines
from dagster_project.release import freeze as freeze_module


@pytest.fixture(autouse=True)
def _fake_exports(monkeypatch):
    monkeypatch.setattr(freeze_module, "_write_exports", fake_exports)


@pytest.fixture
def released(tmp_path, isolated_env, capsys):
    """A small warehouse with two releases of 2025 (the budget revised in v2)."""
    build = build_warehouse(tmp_path / ".build" / "w.duckdb")
    common = ["--warehouse", str(tmp_path / "w.duckdb")]
    releases = ["--releases", str(tmp_path / "releases")]
    assert main(["freeze", "--year", "2025", "--no-publish", *common, *releases]) == 0
    con = duckdb.connect(str(build))
    con.execute(
        "update marts.fct_indicator_values set value = 1100 "
        "where year = 2025 and indicator_id = 'declared_budget'"
    )
    con.close()
    freeze = ["freeze", "--year", "2025", "--reason", "Budget rectifié", "--no-publish"]
    assert main([*freeze, *common, *releases]) == 0
    capsys.readouterr()
    return common, releases


def _json(capsys) -> dict:
    captured = capsys.readouterr()
    return json.loads(captured.out)  # stdout holds the document alone


# --------------------------------------------------------------------------- --json


def test_diff_json(released, capsys, tmp_path):
    common, _releases = released
    out_csv = tmp_path / "diff.csv"
    argv = ["diff", "RA-2025-v1", "RA-2025-v2", "--json", "--csv", str(out_csv), *common]
    assert main(argv) == 0
    data = _json(capsys)
    assert list(data) == ["old_release", "new_release", "reason", "counts", "changes", "csv"]
    assert data["reason"] == "Budget rectifié" and data["csv"] == str(out_csv)
    assert data["counts"] == {"changed": 1, "added": 0, "removed": 0}
    assert data["changes"] == [
        {
            "change": "changed",
            "indicator_id": "declared_budget",
            "label_fr": "Budget déclaré",
            "code_insee": None,
            "commune": None,
            "old_value": 1000.0,
            "new_value": 1100.0,
            "old_unit": "eur",
            "new_unit": "eur",
            "old_unit_label": "€",
            "new_unit_label": "€",
        }
    ]
    assert out_csv.exists()
    assert main(["diff", "RA-2025-v1", "RA-2025-v9", "--json", *common]) == 1  # same codes
    captured = capsys.readouterr()
    assert captured.out == "" and "publication inconnue" in captured.err


def test_verify_json(released, capsys, tmp_path):
    common, releases = released
    assert main(["verify", "--json", *common, *releases]) == 0
    data = _json(capsys)
    assert list(data) == ["intact", "releases", "publication", "recovered"]
    assert data["intact"] is True and data["recovered"] == []
    assert data["releases"]["checked"] == ["RA-2025-v1", "RA-2025-v2"]
    assert data["releases"]["problems"] == []
    assert data["releases"]["anchor"]["file"] == "SHA256SUMS"
    assert isinstance(data["releases"]["anchor"]["size_bytes"], int)
    assert data["publication"]["present"] is False and data["publication"]["intact"] is True
    # a changed release: exit code 3, the difference in French among the problems
    con = duckdb.connect(str(tmp_path / ".build" / "w.duckdb"))
    con.execute("update release.release_values set value = value + 1")
    con.close()
    assert main(["verify", "--json", *common, *releases]) == 3
    data = _json(capsys)
    assert data["intact"] is False and data["releases"]["intact"] is False
    assert any("ont été modifiées" in p for p in data["releases"]["problems"])


def test_review_list_json(released, capsys):
    common, _releases = released
    review = ["review", "set", "--year", "2025", "--indicator", "water_network_length"]
    argv = [*review, "--status", "anomalie", "--comment", "Doublon", "--reviewer", "Jeanne"]
    assert main([*argv, *common]) == 0
    capsys.readouterr()
    assert main(["review", "list", "--year", "2025", "--json", *common]) == 0
    data = _json(capsys)
    assert list(data) == ["year", "status_filter", "count", "values", "year_counts"]
    assert data["count"] == 1 and data["status_filter"] is None
    (value,) = data["values"]
    assert value["indicator_id"] == "water_network_length" and value["code_insee"] is None
    assert value["status"] == "anomaly" and value["status_fr"] == "anomalie"
    assert value["reviewer"] == "Jeanne" and value["comment"] == "Doublon"
    assert isinstance(value["value"], float) and value["unit"] == "km"
    assert value["reviewed_at"][:4].isdigit() and "T" in value["reviewed_at"]  # ISO 8601
    assert data["year_counts"]["anomaly"] == 1 and data["year_counts"]["not_reviewed"] >= 1
    assert set(data["year_counts"]) == {"ok", "suspected_anomaly", "anomaly", "not_reviewed"}

    listing = ["review", "list", "--year", "2025", "--json", *common]
    assert main([*listing, "--status", "non revu"]) == 0
    data = _json(capsys)
    assert data["status_filter"] == "non revu"
    assert all(v["status"] == "not_reviewed" and v["status_fr"] is None for v in data["values"])

    history = ["review", "list", "--year", "2025", "--indicator", "water_network_length"]
    assert main([*history, "--json", *common]) == 0
    data = _json(capsys)
    assert list(data) == ["year", "indicator_id", "code_insee", "history"]
    assert [(e["status"], e["reviewer"], e["origin"]) for e in data["history"]] == [
        ("anomaly", "Jeanne", "kpi review set")
    ]
    assert main([*listing, "--status", "bof"]) == 1
    assert capsys.readouterr().out == ""


def test_status_json(tmp_path, isolated_env, capsys):
    sources = tmp_path / "sources"
    write_campaign(sources, CAMPAIGN_2025)
    xlsx = tmp_path / "etat.xlsx"
    argv = ["status", "--year", "2025", "--sources", str(sources), "--today", "2026-02-20"]
    argv += ["--warehouse", str(tmp_path / "w.duckdb"), "--xlsx", str(xlsx), "--json"]
    assert main(argv) == 0
    data = _json(capsys)
    assert list(data) == [
        "year",
        "today",
        "summary",
        "deliveries",
        "unrecognised_files",
        "xlsx",
    ]
    assert data["year"] == 2025 and data["today"] == "2026-02-20"
    assert data["xlsx"] == str(xlsx) and xlsx.exists()
    summary = data["summary"]
    assert summary["expected"] == 5 and summary["received"] == 0 and summary["optional"] == 1
    assert summary["message_fr"].startswith("Campagne 2025 : livraisons 0 reçue sur 5")
    rows = {(r["department"], r["source_id"]): r for r in data["deliveries"]}
    volumes = rows["water", "eau_volumes"]
    assert volumes["due_date"] == "2026-02-15" and volumes["days_late"] == 5
    assert volumes["late"] is True and volumes["received"] is False
    assert volumes["status_fr"] == "en retard de 5 jours"
    assert volumes["email"] == "sophie.delattre@bethunebruay.fr"
    # the text, from the same rows
    assert main([arg for arg in argv if arg != "--json"]) == 0
    out = capsys.readouterr().out
    assert summary["message_fr"] in out and f"Export Excel : {xlsx}" in out


# --------------------------------------------------------------------------- progress


def test_freeze_says_each_step_on_stderr_and_quiet_silences_it(tmp_path, isolated_env, capsys):
    build_warehouse(tmp_path / ".build" / "w.duckdb")
    common = ["--warehouse", str(tmp_path / "w.duckdb"), "--releases", str(tmp_path / "r")]
    assert main(["freeze", "--year", "2025", "--no-publish", *common]) == 0
    captured = capsys.readouterr()
    steps = [
        "contrôles avant le gel",
        "RA-2025-v1 : copie des valeurs de 2025",
        "values.csv et values.parquet",
        "RA-2025-v1 : exports",
        "RA-2025-v1 : manifeste",
        "RA-2025-v1 : ancre SHA256SUMS",
        "RA-2025-v1 figée",
    ]
    lines = captured.err.splitlines()
    positions = [next(i for i, line in enumerate(lines) if step in line) for step in steps]
    assert positions == sorted(positions), captured.err
    assert all(line.startswith("[") for line in lines if "RA-2025-v1 :" in line)
    assert "Publication RA-2025-v1 figée" in captured.out  # the result, on stdout
    assert not progress_lines.enabled()  # the command turned progress off again after it

    again = ["freeze", "--year", "2025", "--reason", "Deuxième", "--no-publish", *common]
    assert main(["--quiet", *again]) == 0
    captured = capsys.readouterr()
    assert "Publication RA-2025-v2 figée" in captured.out
    assert "RA-2025-v2 :" not in captured.err and "contrôles avant le gel" not in captured.err
    assert main(["-q", "freeze", "--year", "2025", "--no-publish", *common]) == 3  # refused
    assert "exige un motif" in capsys.readouterr().err  # errors still print


def test_heartbeat_says_a_long_step_again(monkeypatch, capsys):
    monkeypatch.setenv(progress_lines.ENV, "1")
    with progress_lines.heartbeat(every=0.2):
        progress_lines.progress("étape longue")
        time.sleep(1.0)
    err = capsys.readouterr().err
    assert "étape longue … toujours en cours" in err
    with progress_lines.command(quiet=True), progress_lines.heartbeat(every=0.2):
        progress_lines.progress("rien")
        time.sleep(0.3)
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- help


def _actions(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", "(commande)", helps.get(name)
                yield from _actions(sub, f"{path} {name}")
            continue
        yield path, ", ".join(action.option_strings) or action.dest, action.help


ENGLISH = ("show ", "the ", " of ", "default:", "number of")


def test_every_option_of_every_command_has_a_french_help():
    missing, english = [], []
    for path, name, text in _actions(build_parser(), "kpi"):
        if not (text or "").strip() or text == argparse.SUPPRESS:
            missing.append(f"{path} {name}")
        elif any(word in text.lower() for word in ENGLISH):
            english.append(f"{path} {name} : {text}")
    assert not missing, "options sans aide : " + ", ".join(missing)
    assert not english, "aide en anglais : " + ", ".join(english)


def test_console_script_ends_without_finalisation_and_loses_no_output():
    """The `kpi` script (cli.console) skips Python's finalisation after main(): its exit code
    and every line it printed still arrive (stdout piped, so block-buffered), and a thread
    still working is waited for."""
    import subprocess
    import sys

    script = (
        "import sys, threading, time\n"
        "from dagster_project import cli\n"
        "def main(argv=None):\n"
        "    for i in range(2000):\n"
        "        print(f'ligne {i}')\n"
        "    if sys.argv[2] == 'fil':\n"
        "        threading.Thread(target=lambda: (time.sleep(0.3), print('fil terminé'))).start()\n"
        "    return int(sys.argv[1])\n"
        "cli.main = main\n"
        "cli.console()\n"
    )
    for code, thread in (("0", "-"), ("3", "-"), ("0", "fil")):
        done = subprocess.run(
            [sys.executable, "-c", script, code, thread], capture_output=True, text=True, timeout=60
        )
        lines = done.stdout.splitlines()
        assert done.returncode == int(code)
        assert lines[:2000] == [f"ligne {i}" for i in range(2000)]
        assert lines[2000:] == (["fil terminé"] if thread == "fil" else [])

    # under a profiler (pyinstrument, cProfile: they write their report once the script has
    # returned), the normal exit: what follows console() in its caller still runs
    wrapped = script.replace(
        "cli.console()\n", "try:\n    cli.console()\nfinally:\n    print('après')\n"
    )
    for profiled, expected in ((False, []), (True, ["après"])):
        setup = "import sys\nsys.setprofile(lambda *a: None)\n" if profiled else ""
        done = subprocess.run(
            [sys.executable, "-c", setup + wrapped, "0", "-"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0
        assert done.stdout.splitlines()[2000:] == expected
