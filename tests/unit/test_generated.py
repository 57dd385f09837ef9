"""Files derived from the contracts, expectations/marts.yml and the parser are up to date."""

from dagster_project.cli import main
from dagster_project.cli.generate import GENERATED, stale_files


def test_every_derived_file_is_up_to_date():
    stale = stale_files(check=True)
    assert not stale, (
        f"fichiers dérivés à régénérer : {stale} — lancez `kpi generate` "
        "(et notez dans docs/cli.md tout changement d'une commande)"
    )


def test_generate_check_exits_1_on_a_stale_file_and_generate_brings_it_back(capsys, monkeypatch):
    calls = []

    def stale_once(check: bool) -> list[str]:
        calls.append(check)
        return ["exemple.yml"] if len(calls) == 1 else []

    from dagster_project.cli import generate

    monkeypatch.setattr(
        generate, "GENERATED", [*GENERATED, generate.Generated("exemple", stale_once)]
    )
    assert main(["generate", "--check"]) == 1
    assert "exemple : à régénérer (exemple.yml)" in capsys.readouterr().out
    assert main(["generate", "--check"]) == 0
    assert calls == [True, True]
