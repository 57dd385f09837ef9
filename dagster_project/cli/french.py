"""argparse in French: the words of ``kpi``'s own usage, help and error lines.

argparse writes « usage: », « options », « error: the following arguments are required »
in English; the people who run ``kpi`` read French (the steering department, auditors). The
parser class below gives its help and usage in French and translates argparse's error
messages, without patching argparse for the rest of the process. A bad argument still exits
with code 2, as argparse, dbt and click do (docs/cli.md).
"""

from __future__ import annotations

import argparse
import re
import sys

ERRORS = [  # (argparse's English message, as a pattern) -> French
    (r"the following arguments are required: (.*)", r"arguments obligatoires manquants : \1"),
    (r"unrecognized arguments: (.*)", r"arguments non reconnus : \1"),
    (
        r"argument (.*?): invalid choice: (.*?) \(choose from (.*)\)",
        r"argument \1 : choix invalide : \2 (choisir parmi \3)",
    ),
    (r"argument (.*?): invalid (\w+) value: (.*)", r"argument \1 : valeur invalide : \3"),
    (r"argument (.*?): expected one argument", r"argument \1 : une valeur est attendue"),
    (
        r"argument (.*?): expected at least one argument",
        r"argument \1 : au moins une valeur est attendue",
    ),
    (r"argument (.*?): not allowed with argument (.*)", r"argument \1 : incompatible avec \2"),
    (r"one of the arguments (.*) is required", r"l'un des arguments \1 est obligatoire"),
    (r"ambiguous option: (.*?) could match (.*)", r"option ambiguë : \1 peut désigner \2"),
    (r"argument (.*?): (.*)", r"argument \1 : \2"),
]


def french_error(message: str) -> str:
    for pattern, replacement in ERRORS:
        if re.fullmatch(pattern, message):
            return re.sub(pattern, replacement, message)
    return message


class FrenchHelpFormatter(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):
        return super().add_usage(
            usage, actions, groups, "utilisation : " if prefix is None else prefix
        )


class FrenchArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose help, usage and errors are in French."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", FrenchHelpFormatter)
        add_help = kwargs.pop("add_help", True)
        super().__init__(*args, add_help=False, **kwargs)
        self._positionals.title = "arguments"
        self._optionals.title = "options"
        if add_help:
            self.add_argument("-h", "--help", action="help", help="afficher cette aide et quitter")

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog} : erreur : {french_error(message)}\n")
