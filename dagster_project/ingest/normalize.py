"""Parsing of cell values according to the common rules of the collection kit.

Every parser returns the parsed value or raises ``CellError`` with a French reason.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
import unicodedata
from functools import lru_cache

EXCEL_ERRORS = frozenset(
    {
        "#div/0!",
        "#n/a",
        "#ref!",
        "#valeur!",
        "#value!",
        "#nom?",
        "#name?",
        "#nombre!",
        "#num!",
        "#null!",
        "#nul!",
        "#calc!",
        "#spill!",
        "#propag!",
        "#getting_data",
    }
)


class CellError(ValueError):
    """A cell that breaks a rule; ``reason`` is the French message shown to the department.

    ``complete``: the reason already says what is expected (the engine then does not append
    the column type).
    """

    def __init__(self, reason: str, complete: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.complete = complete


# characters a person does not see in a cell: Unicode's control (Cc, but tab and line breaks)
# and format characters (Cf: zero-width space, joiners, word joiner, byte order mark, soft
# hyphen, direction marks...); tests/unit/ingest/test_ingest_rules.py checks the list against Unicode.
# They are removed from every text the rules read (keys, enumerations, communes, dates,
# numbers, headers), so that a value is what a person reads: « UDI-LYS » followed by a
# zero-width space is « UDI-LYS » (a duplicate of it, a known reference).
INVISIBLE_CHARACTERS = (
    "\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891"
    "\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
_INVISIBLE = re.compile(f"[{INVISIBLE_CHARACTERS}]")


def has_invisible(text: str) -> bool:
    """Whether a text holds a character a person does not see (``INVISIBLE_CHARACTERS``)."""
    return _INVISIBLE.search(text) is not None


def visible_text(text: str) -> str:
    """The text without the characters a person does not see."""
    return _INVISIBLE.sub("", text)


def strip_accents(text: str) -> str:
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=4096)
def _normalize_header_text(text: str) -> str:
    return re.sub(r"[\s_]+", "_", strip_accents(visible_text(text)).strip().lower())


def normalize_header(value: object) -> str:
    """Header key: case, accents, surrounding spaces and spaces vs underscores are ignored."""
    if value is None:
        return ""
    return _normalize_header_text(str(value))


def is_empty(value: object) -> bool:
    """An empty cell: nothing, or a text of spaces and invisible characters. A numeric NaN is
    not empty (a computation that failed: ``parse_number`` refuses it, never reads 0)."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    text = value.strip()
    if text == "":
        return True
    return not text.isprintable() and visible_text(text).strip() == ""


def clean_text(value: str) -> str:
    """A text cell as the rules read it: without invisible characters and surrounding spaces."""
    text = value.strip()
    if text.isprintable():  # (invisible characters are not)
        return text
    return visible_text(text).strip()


def excel_error(value: object) -> str | None:
    """The Excel error text when the value is an error value (``#DIV/0!``...)."""
    if isinstance(value, str) and value.strip().lower() in EXCEL_ERRORS:
        return value.strip()
    return None


def display(value: object) -> str:
    """A cell value as a person would read it in a report."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.strftime("%d/%m/%Y")
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return str(value)  # (1e+300, not its 301 digits)


# --- numbers -----------------------------------------------------------------------------

_THOUSANDS = re.compile(r"[\s\u00a0\u202f\u2009']")
_FRENCH_NUMBER = re.compile(r"^[+-]?(\d{1,3}( \d{3})+|\d+)(,\d+)?$")
_DOT_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
# a number followed by a unit: « 12 500 kg », « 35 % », « 1,2 M€ », « 8 m3 »
_NUMBER_THEN_UNIT = re.compile(r"^([+-]?\d[\d\s.,'\u00a0\u202f\u2009]*?)\s*([^\d\s.,'+-].*)$")
# what reads as a unit after a number (to say « unité » rather than « n'est pas un nombre »)
_UNIT_WORDS = frozenset({
    "€", "k€", "m€", "keur", "meur", "eur", "euro", "euros", "ht", "ttc", "$", "£", "t", "tonne",
    "tonnes", "kg", "g", "mg", "l", "litre", "litres", "hl", "m3", "m³", "m2", "m²", "m", "km",
    "ml", "ha", "%", "‰", "pct", "pts", "points", "j", "jour", "jours", "h", "heure", "heures",
    "an", "ans", "mois", "kwh", "mwh", "gwh", "mw", "kw", "hab", "habitants", "logements",
    "agents", "etp",
})  # fmt: skip
_UNIT_SYMBOLS = re.compile(r"[€$£%‰°²³/]")


def _unit_of(text: str) -> str | None:
    """``text`` (what follows a number) when it reads as a unit, else None."""
    words = text.casefold().rstrip(".").split()
    if not words or len(text) > 20:
        return None
    if words[0].rstrip(".") in _UNIT_WORDS or _UNIT_SYMBOLS.search(text):
        return text
    return None


NAN_REASON = (
    "valeur NaN (« pas un nombre » : résultat d'un calcul impossible ou cellule produite par "
    "un programme) : écrivez le nombre, ou laissez la cellule vide si la valeur est inconnue"
)


INFINITE_REASON = (
    "nombre infini (résultat d'un calcul impossible ou cellule produite par un programme) : "
    "écrivez le nombre"
)


def parse_number(value: object, units: tuple[str, ...] = ()) -> float:
    """Numeric cell, or French text (``4 548,5``, no-break spaces) or ``4548.5``; ``units``:
    how the column's own unit may follow the number in a cell (``Column.cell_units``, lower
    case): any other unit is refused, never converted (``12 500 kg`` in a column in tonnes)."""
    if isinstance(value, bool):
        raise CellError("valeur logique (VRAI/FAUX) au lieu d'un nombre")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise CellError(NAN_REASON if math.isnan(value) else INFINITE_REASON, complete=True)
        return float(value)
    if isinstance(value, dt.date):
        raise CellError("date au lieu d'un nombre")
    text = clean_text(str(value))
    if text.casefold() in ("nan", "-nan", "+nan"):
        raise CellError(NAN_REASON, complete=True)
    if (split := _NUMBER_THEN_UNIT.match(text)) is not None:
        written = split[2].strip()
        unit = written.rstrip(".").casefold() if written != "." else written
        if unit in units:
            text = split[1].strip()
        elif _unit_of(written) is not None:
            if units:
                raise CellError(
                    f"unité « {written} » différente de celle de la colonne ({units[0]}) : "
                    f"écrivez la valeur en {units[0]}, la cellule n'est jamais convertie",
                    complete=True,
                )
            raise CellError(
                f"unité « {written} » dans la cellule : cette colonne n'a pas d'unité, écrivez "
                "le nombre seul",
                complete=True,
            )
    spaced = re.sub(r"[\u00a0\u202f\u2009]", " ", text)
    if _FRENCH_NUMBER.match(spaced):
        return float(spaced.replace(" ", "").replace(",", "."))
    if _DOT_NUMBER.match(text):
        return float(text)
    compact = _THOUSANDS.sub("", text)
    if re.fullmatch(r"[+-]?\d+(,\d+)?", compact) and " " in spaced:
        # thousands groups of irregular width ("45 48,5") are a typing error, not a number
        raise CellError("séparateurs de milliers mal placés")
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+\.\d+|[+-]?\d{1,3}(\.\d{3})+,\d+", text):
        # 1,234.5 (English) or 1.234,5: which mark is the decimal one would be a guess
        mark = "," if text.rfind(".") > text.rfind(",") else "."
        raise CellError(
            f"séparateur de milliers « {mark} » non accepté (nombre au format anglais ou "
            "allemand) : écrivez-le en notation française (4 548,5) ou sans séparateur de "
            "milliers (4548.5)",
            complete=True,
        )
    raise CellError("n'est pas un nombre (attendu par exemple 4 548,5)")


# --- dates and months ----------------------------------------------------------------------

_MONTHS_FR = {
    "janvier": 1,
    "janv": 1,
    "jan": 1,
    "fevrier": 2,
    "fevr": 2,
    "fev": 2,
    "mars": 3,
    "mar": 3,
    "avril": 4,
    "avr": 4,
    "mai": 5,
    "juin": 6,
    "juillet": 7,
    "juil": 7,
    "aout": 8,
    "septembre": 9,
    "sept": 9,
    "sep": 9,
    "octobre": 10,
    "oct": 10,
    "novembre": 11,
    "nov": 11,
    "decembre": 12,
    "dec": 12,
}
_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_YMD = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00)?)?$")
_YM = re.compile(r"^(\d{4})-(\d{1,2})$")
_MY = re.compile(r"^(\d{1,2})/(\d{4})$")
_NAMED_MONTH = re.compile(r"^([a-z]+)\.?\s*[-/ ]?\s*(\d{4})$")


def _make_date(year: int, month: int, day: int) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError as exc:
        raise CellError("date impossible") from exc


DATE_FORMATS_FR = "cellule au format Date, JJ/MM/AAAA (15/03/2025) ou AAAA-MM-JJ (2025-03-15)"
EXCEL_EPOCH = dt.date(1899, 12, 30)

# date texts in a format the kit does not accept: (pattern, French name, (year, month, day)
# groups to suggest the accepted spelling, or None when the reading would be a guess)
_OTHER_DATE_FORMATS = (
    (re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"), "AAAA/MM/JJ", (1, 2, 3)),
    (re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$"), "JJ.MM.AAAA", (3, 2, 1)),
    (re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})$"), "JJ-MM-AAAA", (3, 2, 1)),
    (re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"), "AAAA.MM.JJ", (1, 2, 3)),
    (re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2})$"), "JJ/MM/AA (année sur deux chiffres)", None),
    (re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{2})$"), "JJ-MM-AA (année sur deux chiffres)", None),
    (re.compile(r"^(\d{4})(\d{2})(\d{2})$"), "AAAAMMJJ (sans séparateur)", (1, 2, 3)),
)
_DATE_IN_WORDS = re.compile(r"^(?:[a-z]+\.?\s+)?(\d{1,2})(?:er)?\s+([a-z]+)\.?\s+(\d{4})$")
_DATE_WITH_TIME = re.compile(r"^(\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{1,2}-\d{1,2})[ T]\d{1,2}[:h]\d{2}")


def _refused_date(text: str, what: str, suggestion: dt.date | None) -> CellError:
    advice = f" : écrivez {suggestion.strftime('%d/%m/%Y')}" if suggestion else ""
    return CellError(
        f"date « {text} » au format {what}, non accepté{advice} (formats acceptés : "
        f"{DATE_FORMATS_FR})",
        complete=True,
    )


def _suggest(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_date(value: object) -> dt.date:
    """Date cell, ``JJ/MM/AAAA`` or ``AAAA-MM-JJ``; any other spelling is refused, saying
    which formats are accepted (and the accepted spelling when it is not a guess)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        hint = ""
        if float(value).is_integer() and 3000 < value < 100000:
            as_date = EXCEL_EPOCH + dt.timedelta(days=int(value))
            hint = (
                f" : la cellule est au format Nombre ({display(value)} correspond au "
                f"{as_date.strftime('%d/%m/%Y')}) ; mettez-la au format Date"
            )
        raise CellError(
            f"nombre au lieu d'une date{hint} (formats acceptés : {DATE_FORMATS_FR})",
            complete=True,
        )
    text = str(value).strip()
    if m := _DMY.match(text):
        return _make_date(int(m[3]), int(m[2]), int(m[1]))
    if m := _YMD.match(text):
        return _make_date(int(m[1]), int(m[2]), int(m[3]))
    for pattern, what, groups in _OTHER_DATE_FORMATS:
        if m := pattern.match(text):
            suggestion = _suggest(*(int(m[g]) for g in groups)) if groups else None
            raise _refused_date(text, what, suggestion)
    plain = strip_accents(text).lower()
    if m := _DATE_IN_WORDS.match(plain):
        month = _MONTHS_FR.get(m[2])
        suggestion = _suggest(int(m[3]), month, int(m[1])) if month else None
        raise _refused_date(text, "date en toutes lettres", suggestion)
    if _DATE_WITH_TIME.match(text):
        raise _refused_date(text, "date avec heure", None)
    raise CellError(f"date illisible (formats acceptés : {DATE_FORMATS_FR})", complete=True)


_TEXT_MONTHS: dict[str, dt.date] = {}  # months already read from text (a file repeats 12)


def parse_month(value: object) -> dt.date:
    """Month as its first day: date cell, ``AAAA-MM``, ``MM/AAAA``, ``janvier 2025``, ``Janv. 2025``."""
    if type(value) is str:
        hit = _TEXT_MONTHS.get(value)
        if hit is None:
            hit = _parse_month(value)
            if len(_TEXT_MONTHS) < 10_000:
                _TEXT_MONTHS[value] = hit
        return hit
    return _parse_month(value)


def _parse_month(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return dt.date(value.year, value.month, 1)
    if isinstance(value, dt.date):
        return dt.date(value.year, value.month, 1)
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise CellError("nombre au lieu d'un mois (attendu AAAA-MM ou « janvier 2025 »)")
    text = strip_accents(str(value)).strip().lower()
    if m := _YM.match(text):
        return _make_date(int(m[1]), int(m[2]), 1)
    if m := _MY.match(text):
        return _make_date(int(m[2]), int(m[1]), 1)
    if m := _NAMED_MONTH.match(text):
        month = _MONTHS_FR.get(m[1])
        if month is None:
            raise CellError(f"nom de mois inconnu « {m[1]} »")
        return dt.date(int(m[2]), month, 1)
    for pattern in (_DMY, _YMD):
        if pattern.match(text):
            day = parse_date(text)
            return dt.date(day.year, day.month, 1)
    raise CellError(
        "mois illisible (attendu AAAA-MM, MM/AAAA ou « janvier 2025 »)"
        + _mojibake_hint(str(value).strip())
    )


def repair_mojibake(text: str) -> str | None:
    """The text as it was before being decoded twice (UTF-8 read as Windows-1252), if so."""
    if text.isascii():
        return None
    try:
        repaired = text.encode("cp1252").decode("utf-8")
    except UnicodeError:
        return None
    return repaired if repaired != text else None


def _mojibake_hint(text: str) -> str:
    repaired = repair_mojibake(text)
    if repaired is None:
        return ""
    return (
        f" : le texte semble mal encodé (« {text} » au lieu de « {repaired} ») ; enregistrez le "
        "fichier en UTF-8 ou en Windows-1252 sans le convertir"
    )


def last_day_of_month(day: dt.date) -> dt.date:
    return dt.date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


# --- yes / no --------------------------------------------------------------------------------

_YES = {"oui", "o", "yes", "vrai", "true", "1"}
_NO = {"non", "n", "no", "faux", "false", "0"}


def parse_yes_no(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = strip_accents(display(value)).strip().lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise CellError("attendu « oui » ou « non »")


# --- communes ----------------------------------------------------------------------------

_SAINT = {"st": "saint", "ste": "sainte"}

_LES = {"les", "lez"}


def commune_key(name: str) -> str:
    """Matching key: case, accents, hyphens/spaces, apostrophes, œ, lès/lez, St/Ste ignored."""
    text = strip_accents(name).lower()
    text = re.sub(r"[-'’`.\s_]+", " ", text).strip()
    tokens = []
    for token in text.split(" "):
        token = _SAINT.get(token, token)
        if token in _LES:
            token = "les"
        tokens.append(token)
    return " ".join(tokens)


class CommuneMatcher:
    """Resolves an INSEE code or a commune name to one of the member communes."""

    def __init__(self, communes: dict[str, str]):
        self.names = dict(communes)  # code_insee -> official name
        by_key: dict[str, set[str]] = {}
        for code, name in communes.items():
            by_key.setdefault(commune_key(name), set()).add(code)
        self._by_key = by_key
        # successful matches, by the cell value as read (a file repeats its communes)
        self._codes_seen: dict[object, str] = {}
        self._names_seen: dict[object, str] = {}

    def from_code(self, value: object) -> str:
        hit = self._codes_seen.get(value)
        if hit is not None:
            return hit
        code = self._from_code(value)
        self._codes_seen[value] = code
        return code

    def from_name(self, value: object) -> str:
        """A name of the list (case, accents, hyphens, St/Ste, lès/lez... ignored)."""
        hit = self._names_seen.get(value)
        if hit is not None:
            return hit
        code = self._from_name(value)
        self._names_seen[value] = code
        return code

    def _from_code(self, value: object) -> str:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
        if not re.fullmatch(r"\d[0-9AB]\d{3}", text):
            raise CellError("code INSEE invalide (5 caractères attendus, ex. 62119)")
        if text not in self.names:
            raise CellError(
                "commune hors de l'agglomération (code INSEE inconnu de la liste des 100 communes)"
            )
        return text

    def _listing(self, codes) -> str:
        return ", ".join(f"{self.names[c]} ({c})" for c in sorted(codes, key=self.names.get))

    def _from_name(self, value: object) -> str:
        text = str(value).strip()
        key = commune_key(text)
        codes = self._by_key.get(key, set())
        if len(codes) > 1:
            raise CellError(
                f"nom de commune ambigu : « {text} » peut désigner {self._listing(codes)} ; "
                "utilisez le code INSEE"
            )
        if codes:
            return next(iter(codes))
        if repair_mojibake(text):
            raise CellError("commune inconnue" + _mojibake_hint(text))
        # a shortened name: the start of several names is ambiguous, of one is unknown
        starting = {c for k, cs in self._by_key.items() if k.startswith(key + " ") for c in cs}
        if key and len(starting) > 1:
            raise CellError(
                f"nom de commune ambigu : « {text} » peut désigner {self._listing(starting)} ; "
                "écrivez le nom complet ou le code INSEE"
            )
        if len(starting) == 1:
            raise CellError(
                f"commune inconnue : « {text} » n'est pas un nom complet (vouliez-vous dire "
                f"{self._listing(starting)} ?) ; écrivez le nom complet ou le code INSEE"
            )
        raise CellError(
            "commune inconnue ou hors de l'agglomération (absente de la liste des 100 "
            "communes membres)"
        )
