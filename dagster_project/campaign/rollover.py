"""Next year's campaign file from this year's: ``kpi next-campaign --year 2025``.

``roll_campaign_text(text, year)`` rewrites the text of ``sources/<year>/campagne.yml`` for
``year + 1``. The file is not loaded into data and dumped again: only the characters of the
values that change are replaced, so comments, key order, quoting, date formats and blank
lines stay as they were. What changes:

- ``campaign_year`` becomes ``year + 1``;
- every date moves one year later, in the format it was written in (``2026-01-31`` or
  ``31/01/2026``): ``opening_date``, ``default_due_date``, each department's and each
  source's ``due_date``; 29 February becomes 28 February when the next year has none;
- free text, the YAML comments and the ``comment_fr`` values: the years ``year`` and
  ``year + 1`` (alone or in a date) move one year too (« Campagne 2025 », « publié en
  2026 », ``sources/2025/``); other years (« depuis 2019 ») are left alone. Every line so
  changed is listed, for the steering department to reread.

Owners (direction, contact, e-mail), sources and ``required`` are kept as they are.

``roll_campaign(sources_dir, year)`` checks the result with ``load_campaign`` (the
validation of any campaign file, run on a scratch copy) and only then writes
``sources/<year + 1>/campagne.yml``, never over an existing file unless ``force``.
``format_rollover`` says in French what was written and what to check (the due dates
falling on a day off: ``dates.non_working_reason``); ``kpi next-campaign``
(``dagster_project/cli/campaign.py``) prints it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dagster_project.campaign.dates import add_years, fr_date, non_working_reason
from dagster_project.campaign.plan import (
    Campaign,
    CampaignError,
    campaign_path,
    load_campaign,
    uncovered,
)
from dagster_project.contracts.model import Contract
from dagster_project.settings import CATALOGUE_CSV

DATE_KEYS = ("opening_date", "default_due_date", "due_date")
FREE_TEXT_KEY = "comment_fr"

_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_FR = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
# in free text: a date JJ/MM/AAAA, a date AAAA-MM-JJ, or a year alone
_TEXT_DATE_OR_YEAR = re.compile(
    r"(?<!\d)(?:(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{4})"
    r"|(?P<y2>\d{4})-(?P<m2>\d{2})-(?P<d2>\d{2})"
    r"|(?P<year>\d{4}))(?!\d)"
)


class RolloverError(ValueError):
    """The next campaign cannot be prepared; the message is French and says what to do."""


@dataclass(frozen=True)
class DateChange:
    """One date of the campaign file moved one year later."""

    where: str  # « campagne », « direction « water » » or « direction « water », source « … » »
    key: str
    before: dt.date
    after: dt.date
    line: int  # 1-based line of the value

    @property
    def clamped(self) -> bool:
        """29 February that became 28 February."""
        return (self.before.month, self.before.day) != (self.after.month, self.after.day)


@dataclass(frozen=True)
class TextChange:
    """One line of free text (comment or ``comment_fr``) whose years moved."""

    line: int
    before: str
    after: str


@dataclass
class Rollover:
    """The text of next year's file and what changed."""

    year: int  # the campaign rolled over; the new one is year + 1
    text: str
    dates: list[DateChange] = field(default_factory=list)
    texts: list[TextChange] = field(default_factory=list)
    year_line: int | None = None  # line of campaign_year


@dataclass
class RolloverResult:
    source: Path
    target: Path
    rollover: Rollover
    campaign: Campaign  # the new campaign, as load_campaign reads it
    overwritten: bool = False


# --- the text -------------------------------------------------------------------------------


def _parse_written_date(text: str) -> tuple[dt.date, str] | None:
    """(date, format) of a date written AAAA-MM-JJ or JJ/MM/AAAA; None otherwise."""
    text = text.strip()
    try:
        if m := _ISO.match(text):
            return dt.date(int(m[1]), int(m[2]), int(m[3])), "iso"
        if m := _FR.match(text):
            return dt.date(int(m[3]), int(m[2]), int(m[1])), "fr"
    except ValueError:
        return None
    return None


def _write_date(day: dt.date, fmt: str, like: str) -> str:
    """``day`` in the format of ``like`` (keeps a missing leading zero out, as written)."""
    if fmt == "iso":
        return day.isoformat()
    d, m, _ = like.strip().split("/")
    return f"{day.day:0{len(d)}d}/{day.month:0{len(m)}d}/{day.year}"


def shift_free_text(text: str, year: int) -> str:
    """Years ``year`` and ``year + 1`` (alone or in a date) one year later; others kept."""
    moved = (year, year + 1)

    def replace(m: re.Match) -> str:
        if m["year"]:
            return str(int(m["year"]) + 1) if int(m["year"]) in moved else m[0]
        if m["y"]:
            parsed = _parse_written_date(m[0])
            if parsed and parsed[0].year in moved:
                return _write_date(add_years(parsed[0]), "fr", m[0])
            return m[0]
        parsed = _parse_written_date(m[0])
        if parsed and parsed[0].year in moved:
            return add_years(parsed[0]).isoformat()
        return m[0]

    return _TEXT_DATE_OR_YEAR.sub(replace, text)


def _mapping_items(node: yaml.Node | None) -> list[tuple[str, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        return []
    return [(str(k.value), v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]


def _scalar_spans(root: yaml.Node) -> list[tuple[int, int]]:
    """Character spans of every scalar (keys and values): a « # » inside is not a comment."""
    spans, seen, stack = [], set(), [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            spans.append((node.start_mark.index, node.end_mark.index))
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            stack += list(node.value)
    return sorted(spans)


def _comment_spans(text: str, scalars: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Character spans of the YAML comments (from « # » to the end of the line)."""
    out = []
    for m in re.finditer(r"(?:^|(?<=[ \t]))#[^\r\n]*", text, re.M):
        if not any(start <= m.start() < end for start, end in scalars):
            out.append((m.start(), m.end()))
    return out


def roll_campaign_text(text: str, year: int) -> Rollover:
    """The text of ``sources/<year>/campagne.yml`` rewritten for ``year + 1`` (see module)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise RolloverError(f"YAML illisible : {exc}") from exc
    if not isinstance(root, yaml.MappingNode):
        raise RolloverError("le fichier doit décrire une campagne (clé: valeur)")

    rollover = Rollover(year=year, text=text)
    edits: list[tuple[int, int, str]] = []  # (start, end, new text), spans do not overlap
    free_text: list[tuple[int, int]] = []
    moved: set[int] = set()  # start of the dates already moved

    def move_date(node: yaml.Node, key: str, where: str) -> None:
        if not isinstance(node, yaml.ScalarNode):
            return  # not a date: load_campaign names the problem
        parsed = _parse_written_date(node.value)
        start, end = node.start_mark.index, node.end_mark.index
        if parsed is None or start in moved:  # an alias (*x) names a date already moved
            return
        moved.add(start)
        before, fmt = parsed
        after = add_years(before)
        written = text[start:end].replace(
            node.value.strip(), _write_date(after, fmt, node.value), 1
        )
        edits.append((start, end, written))
        rollover.dates.append(DateChange(where, key, before, after, node.start_mark.line + 1))

    def visit(node: yaml.Node, where: str, allowed: tuple[str, ...]) -> None:
        for key, value in _mapping_items(node):
            if key in allowed and key in DATE_KEYS:
                move_date(value, key, where)
            elif key == FREE_TEXT_KEY and isinstance(value, yaml.ScalarNode):
                free_text.append((value.start_mark.index, value.end_mark.index))

    visit(root, "campagne", ("opening_date", "default_due_date"))
    for key, value in _mapping_items(root):
        if (
            key == "campaign_year"
            and isinstance(value, yaml.ScalarNode)
            and value.value.strip() == str(year)
        ):  # another year is left as written: load_campaign names the mismatch
            start, end = value.start_mark.index, value.end_mark.index
            edits.append((start, end, text[start:end].replace(str(year), str(year + 1), 1)))
            rollover.year_line = value.start_mark.line + 1
        if key != "departments":
            continue
        for department, department_node in _mapping_items(value):
            where_department = f"direction « {department} »"
            visit(department_node, where_department, ("due_date",))
            for dep_key, sources_node in _mapping_items(department_node):
                if dep_key != "sources":
                    continue
                for source_id, source_node in _mapping_items(sources_node):
                    visit(source_node, f"{where_department}, source « {source_id} »", ("due_date",))

    free_text += _comment_spans(text, _scalar_spans(root))
    text_lines: set[int] = set()  # 1-based lines of the free text that changed
    for start, end in sorted(set(free_text)):
        shifted = shift_free_text(text[start:end], year)
        if shifted != text[start:end]:
            edits.append((start, end, shifted))
            first = text.count("\n", 0, start) + 1
            text_lines.update(range(first, first + text.count("\n", start, end) + 1))

    new = text
    for start, end, replacement in sorted(edits, reverse=True):
        new = new[:start] + replacement + new[end:]
    rollover.text = new

    old_lines, new_lines = text.split("\n"), new.split("\n")  # digits only: same lines
    for number in sorted(text_lines):
        before, after = old_lines[number - 1].strip(), new_lines[number - 1].strip()
        if before != after:
            rollover.texts.append(TextChange(number, before, after))
    return rollover


# --- the file -------------------------------------------------------------------------------


def _write_new_file(target: Path, text: str, *, force: bool) -> None:
    """Write ``target`` atomically; without ``force``, never over an existing file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".yml", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(text.encode("utf-8"))
        tmp.chmod(0o644)
        if force:
            tmp.replace(target)
        else:
            try:  # fails if the file appeared meanwhile: nothing overwritten
                os.link(tmp, target)
            except FileExistsError:
                raise
            except OSError:  # no hard links on this file system: exclusive creation
                with target.open("xb") as out:
                    out.write(text.encode("utf-8"))
    except FileExistsError as exc:
        raise RolloverError(_exists_message(target)) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _exists_message(target: Path) -> str:
    return (
        f"{target} existe déjà : rien n'a été écrit. Relisez-le, ou relancez avec --force "
        "pour le remplacer (la version actuelle sera perdue)."
    )


def roll_campaign(
    sources_dir: Path,
    year: int,
    *,
    force: bool = False,
    contracts: dict[str, Contract] | None = None,
    catalogue_path: Path = CATALOGUE_CSV,
) -> RolloverResult:
    """Write ``sources/<year + 1>/campagne.yml`` from ``sources/<year>/campagne.yml``.

    Raises ``RolloverError`` (no source file, target exists without ``force``) or
    ``CampaignError`` naming the target (the result does not pass ``load_campaign``); in
    both cases nothing is written.
    """
    sources_dir = Path(sources_dir)
    source = campaign_path(sources_dir, year)
    target = campaign_path(sources_dir, year + 1)
    if not source.is_file():
        raise RolloverError(
            f"aucun fichier de campagne {source} à reprendre. --year est l'année de la "
            f"campagne existante : pour préparer {year} d'après {year - 1}, "
            f"lancez kpi next-campaign --year {year - 1}."
        )
    existed = target.exists()
    if existed and not force:
        raise RolloverError(_exists_message(target))
    text = source.read_bytes().decode("utf-8")
    try:
        rollover = roll_campaign_text(text, year)
    except RolloverError as exc:
        raise RolloverError(f"{source} : {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="kpi-next-campaign-") as scratch:
        check = campaign_path(Path(scratch), year + 1)
        check.parent.mkdir(parents=True)
        check.write_bytes(rollover.text.encode("utf-8"))
        try:
            campaign = load_campaign(
                Path(scratch), year + 1, contracts=contracts, catalogue_path=catalogue_path
            )
        except CampaignError as exc:
            raise CampaignError(target, exc.problems) from exc
    _write_new_file(target, rollover.text, force=force)
    campaign = Campaign(
        year=campaign.year,
        opening_date=campaign.opening_date,
        default_due_date=campaign.default_due_date,
        entries=campaign.entries,
        steering=campaign.steering,
        comment_fr=campaign.comment_fr,
        path=target,
    )
    return RolloverResult(source, target, rollover, campaign, overwritten=existed)


# --- what to tell the steering department -----------------------------------------------------


def _plural(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def format_rollover(
    result: RolloverResult,
    *,
    contracts: dict[str, Contract] | None = None,
    catalogue_path: Path = CATALOGUE_CSV,
) -> str:
    """What was written and what the steering department should check, in French."""
    rollover, campaign = result.rollover, result.campaign
    old, new = rollover.year, rollover.year + 1
    verb = "remplacé" if result.overwritten else "écrit"
    lines = [
        f"Campagne {new} préparée : {result.target} {verb} d'après {result.source}.",
        f"  Année de campagne : {old} → {new}.",
    ]
    top = [c for c in rollover.dates if c.where == "campagne"]
    for change in top:
        label = "ouverture" if change.key == "opening_date" else "échéance par défaut"
        lines.append(
            f"  {label.capitalize()} : {fr_date(change.before)} → {fr_date(change.after)}."
        )
    others = [c for c in rollover.dates if c.where != "campagne"]
    if others:
        first, last = min(c.after for c in others), max(c.after for c in others)
        span = (
            f"le {fr_date(first)}" if first == last else f"du {fr_date(first)} au {fr_date(last)}"
        )
        lines.append(
            f"  {_plural(len(others), 'échéance')} de direction ou de source "
            f"{'décalée' if len(others) == 1 else 'décalées'} d'un an ({span})."
        )
    owners = {e.owner.email for e in campaign.entries}
    required = sum(e.required for e in campaign.entries)
    lines.append(
        f"  {_plural(len(campaign.entries), 'livraison attendue', 'livraisons attendues')} "
        f"({required} obligatoires) de {_plural(len(campaign.departments), 'direction')} ; "
        f"responsables, contacts et adresses repris tels quels ({_plural(len(owners), 'adresse')})."
    )
    if rollover.texts:
        lines.append("  Textes libres mis à jour (commentaires, comment_fr), à relire :")
        lines += [f"    ligne {t.line} : {t.after}" for t in rollover.texts]
    lines.append("  Fichier vérifié comme tout fichier de campagne (load_campaign) : valide.")

    lines += [
        "",
        "À vérifier par la Direction du Pilotage Stratégique avant d'ouvrir la campagne :",
    ]
    dues = Counter(e.due_date for e in campaign.entries)
    odd_days = [
        (day, reason, dues.get(day, 0))
        for day in sorted(set(dues) | {campaign.opening_date})
        if (reason := non_working_reason(day))
    ]
    lines.append(
        "  - les échéances : un an plus tard, une date ne tombe plus le même jour de la semaine"
        + (
            " ; tombent un jour non ouvré :"
            if odd_days
            else " ; aucune ne tombe un jour non ouvré."
        )
    )
    for day, reason, count in odd_days:
        what = (
            "ouverture de la campagne"
            if count == 0
            else _plural(count, "livraison attendue", "livraisons attendues")
        )
        lines.append(f"      {fr_date(day)} ({reason}) : {what}")
    for change in (c for c in rollover.dates if c.clamped):
        lines.append(
            f"  - {change.where}, {change.key} : le 29/02/{change.before.year} devient le "
            f"{fr_date(change.after)} ({change.after.year} n'a pas de 29 février)."
        )
    lines.append(
        f"  - les responsables : départs, arrivées, changements de direction depuis {old} ; "
        "les noms et adresses sont ceux de l'an dernier."
    )
    missing = uncovered(campaign, contracts=contracts, catalogue_path=catalogue_path)
    if missing:
        listed = ", ".join(f"{d}/{s}" for d, s in missing)
        lines.append(
            f"  - les sources : le kit définit {_plural(len(missing), 'livraison')} que la "
            f"campagne n'attend pas ({listed}) : à ajouter, ou à laisser de côté sciemment."
        )
    else:
        lines.append(
            "  - les sources : la campagne attend toutes les livraisons du kit ; retirez celles "
            "qui ne sont plus demandées, ajustez « required »."
        )
    if rollover.texts:
        lines.append("  - les textes libres ci-dessus (commentaires et comment_fr).")
    lines.append(
        f"Ensuite : kpi templates --year {new} --out <dossier> --sources "
        f"{result.target.parent.parent} écrit les modèles vierges de la campagne."
    )
    return "\n".join(lines)


__all__ = [
    "DateChange",
    "Rollover",
    "RolloverError",
    "RolloverResult",
    "TextChange",
    "format_rollover",
    "roll_campaign",
    "roll_campaign_text",
    "shift_free_text",
]
