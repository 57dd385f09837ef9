"""`kpi`'s own usage, help and error lines are French; `kpi --version`; a bad argument exits 2."""

from __future__ import annotations

import pytest

from dagster_project.cli import build_parser, main, version
from dagster_project.cli.french import french_error


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"kpi {version()}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["freeze"], "kpi freeze : erreur : arguments obligatoires manquants : --year"),
        (
            ["status", "--year", "abc"],
            "kpi status : erreur : argument --year : valeur invalide : 'abc'",
        ),
        (["bogus"], "kpi : erreur : argument COMMANDE : choix invalide : 'bogus' (choisir parmi"),
        (["run", "--nope"], "kpi : erreur : arguments non reconnus : --nope"),
    ],
)
def test_bad_arguments_exit_2_with_a_french_line(argv, expected, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("utilisation : kpi")
    assert expected in err
    assert "usage:" not in err and "error:" not in err


def test_help_is_french_everywhere():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    for name, sub in [("kpi", parser), *commands.choices.items()]:
        text = sub.format_help()
        assert text.startswith("utilisation : "), name
        assert "show this help message" not in text and "usage:" not in text, name
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings}: no help text"


def test_an_unknown_message_is_left_as_is():
    assert french_error("quelque chose d'imprévu") == "quelque chose d'imprévu"
