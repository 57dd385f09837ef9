"""Has the published copy changed since its publication? (``verify_publication``, run by
``kpi verify`` after the releases' check)

``verify_publication()`` checks the published copy and the exports against what was
published: ``publication.info``, each relation of ``publication.tables`` with its row count
and its fingerprint recomputed from the file (``publication.relation_fingerprint``, the digest
the publication recorded), no unlisted relation, the file read-only, and each
``exports/marts/<table>.parquet`` of the current publication with the rows of its table (same
order-independent sum of row hashes). ``format_publication_check`` words the result in French.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.settings import Settings
from dagster_project.warehouse.build import (
    LOCK_WAIT_SECONDS,
    publication_lock,
    quote_ident,
    quote_literal,
)
from dagster_project.warehouse.publication_links import EXPORTED_SCHEMAS
from dagster_project.warehouse.published_copy import (
    columns_of,
    hash_rows,
    list_relations,
    relation_fingerprint,
)
from dagster_project.warehouse.schema import PUBLICATION_SCHEMA

COPY = "copie publiée"
EXPORTS = "exports Parquet"
CHECK_ALIAS = "kpi_published"


@dataclass
class PublicationCheck:
    """What ``verify_publication`` found, in French: ``problems`` make ``kpi verify`` exit 3."""

    file_name: str
    present: bool = False
    publication_id: str | None = None
    tables: int = 0  # relations of publication.tables checked in the published file
    exports: int = 0  # Parquet files checked
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


@dataclass
class _Listed:
    """A table of ``publication.tables`` and what the published file holds for it."""

    row_count: int  # recorded
    fingerprint: str | None  # recorded, None when it cannot be compared
    comment: str | None = None
    columns: list | None = None  # None: absent or unreadable in the file
    count: int | None = None
    rows_hash: str | None = None

    def matches(self, count: int, rows_hash: str) -> bool:
        """These rows, under this table's comment and columns, are what was published."""
        if count != self.row_count:
            return False
        if self.fingerprint is None:  # nothing better to compare with
            return True
        return (
            relation_fingerprint(self.comment, self.columns, count, rows_hash) == self.fingerprint
        )

    @property
    def intact(self) -> bool:
        return self.columns is not None and self.matches(self.count, self.rows_hash)


def verify_publication(
    settings: Settings, wait_seconds: float = LOCK_WAIT_SECONDS
) -> PublicationCheck:
    """Check the published copy and its Parquet exports against what was published.

    In ``warehouse.duckdb``: ``publication.info`` (one row) and ``publication.tables``
    present; every relation listed there exists as a table with its recorded row count and
    its fingerprint recomputed from the file (same digest as the publication's: columns,
    comments, rows); no relation outside that list (the ``publication`` schema aside); the
    file read-only (0444) and without a write-ahead log beside it. In ``exports/``: the link
    ``marts`` designates the version of the current ``publication_id``, its
    ``_publication.json`` lists the published marts with their row counts, and each
    ``<table>.parquet`` has the columns, the row count and the rows of its table (the same
    order-independent sum of row hashes, the Parquet columns read as the table's types); no
    other Parquet file. No publication runs meanwhile (shared publication lock).
    Returns a ``PublicationCheck``; nothing is a problem when there is no published copy yet.
    """
    published = settings.warehouse
    check = PublicationCheck(file_name=published.name)
    if not published.exists():
        return check
    check.present = True
    lock = settings.build_warehouse.with_name(settings.build_warehouse.name + ".publish.lock")
    with publication_lock(lock, wait_seconds, shared=True):
        _check_file(published, check)
        con = duckdb.connect()
        try:
            try:
                con.execute(f"attach {quote_literal(published)} as {CHECK_ALIAS} (read_only)")
            except duckdb.Error as exc:
                check.problems.append(
                    f"{COPY} — {published.name} : illisible ({type(exc).__name__})"
                )
                return check
            contents = _check_tables(con, published.name, check)
            if contents is not None:
                _check_exports(con, settings.exports_dir, contents, check)
        finally:
            con.close()
    return check


def _check_file(published: Path, check: PublicationCheck) -> None:
    mode = stat.S_IMODE(published.stat().st_mode)
    if mode != 0o444:
        check.problems.append(
            f"{COPY} — {published.name} : droits {mode:04o} au lieu de 0444 (lecture seule) : "
            "le fichier a pu être modifié depuis sa publication"
        )
    wal = published.with_name(published.name + ".wal")
    if not wal.exists():  # DuckDB writes the log beside the file a link designates
        wal = Path(os.path.realpath(published) + ".wal")
    if wal.exists():
        check.problems.append(
            f"{COPY} — {published.name} : journal d'écriture {wal.name} présent : le fichier "
            "a été ouvert en écriture depuis sa publication"
        )


def _check_tables(con, file_name: str, check: PublicationCheck) -> dict | None:
    """The published relations checked against ``publication.tables``; returns, for each
    listed table present, its row count, rows' hash and columns (for the exports)."""
    problems = check.problems
    present = {
        (s, t): kind
        for s, t, kind, _comment in list_relations(con, CHECK_ALIAS)
        if s != PUBLICATION_SCHEMA
    }
    listed_columns = {
        name
        for (name,) in con.execute(
            "select column_name from duckdb_columns() where database_name = ? "
            "and schema_name = ? and table_name = 'tables'",
            [CHECK_ALIAS, PUBLICATION_SCHEMA],
        ).fetchall()
    }
    version = None
    try:
        info = con.execute(
            f"select publication_id, duckdb_version from {CHECK_ALIAS}.{PUBLICATION_SCHEMA}.info"
        ).fetchall()
    except duckdb.Error:
        info = []
    if len(info) != 1:
        problems.append(
            f"{COPY} — {file_name} : publication.info "
            + ("absente" if not info else f"a {len(info)} lignes au lieu d'une")
            + " : on ne sait pas quelle publication ce fichier contient"
        )
    else:
        check.publication_id, version = info[0]
    if not {"schema_name", "table_name", "row_count"} <= listed_columns:
        problems.append(
            f"{COPY} — {file_name} : publication.tables absente : la liste des tables "
            "publiées manque, leur contenu ne peut pas être vérifié"
        )
        return None
    has_fingerprints = "fingerprint" in listed_columns
    listed = con.execute(
        "select schema_name, table_name, row_count, "
        + ("fingerprint" if has_fingerprints else "null")
        + f" from {CHECK_ALIAS}.{PUBLICATION_SCHEMA}.tables order by 1, 2"
    ).fetchall()
    comparable = has_fingerprints and version == duckdb.__version__
    if not has_fingerprints:
        check.warnings.append(
            f"{COPY} : publication antérieure aux empreintes, seuls les nombres de lignes "
            "sont vérifiés (republier : kpi publish)"
        )
    elif not comparable:
        check.warnings.append(
            f"{COPY} : publiée avec DuckDB {version}, vérifiée avec DuckDB "
            f"{duckdb.__version__} : les empreintes ne sont pas comparables, seuls les "
            "nombres de lignes et les exports Parquet sont vérifiés (republier : kpi publish)"
        )
    comments = {
        (s, t): c
        for s, t, c in con.execute(
            "select schema_name, table_name, comment from duckdb_tables() where database_name = ?",
            [CHECK_ALIAS],
        ).fetchall()
    }
    all_columns = columns_of(con, CHECK_ALIAS)
    contents: dict[tuple[str, str], _Listed] = {}
    for schema, name, row_count, fingerprint in listed:
        label = f"{COPY} — table {schema}.{name}"
        item = contents[(schema, name)] = _Listed(row_count, fingerprint if comparable else None)
        kind = present.pop((schema, name), None)
        if kind is None:
            problems.append(f"{label} : absente (publiée avec {row_count} ligne(s))")
            continue
        if kind != "table":
            problems.append(f"{label} : remplacée par une vue")
            continue
        check.tables += 1
        try:
            item.count, item.rows_hash = hash_rows(
                con, f"select * from {CHECK_ALIAS}.{quote_ident(schema)}.{quote_ident(name)}"
            )
        except duckdb.Error as exc:
            problems.append(f"{label} : illisible ({type(exc).__name__})")
            continue
        item.comment = comments.get((schema, name))
        item.columns = all_columns.get((schema, name), [])
        if item.count != row_count:
            problems.append(f"{label} : {item.count} ligne(s) au lieu de {row_count} publiée(s)")
        elif not item.intact:
            problems.append(
                f"{label} : contenu différent de celui publié (empreinte : valeurs, "
                "colonnes ou commentaires modifiés)"
            )
    for (schema, name), kind in sorted(present.items()):
        problems.append(
            f"{COPY} — {'vue' if kind == 'view' else 'table'} {schema}.{name} : "
            "absente de la liste des tables publiées (publication.tables), ajoutée depuis"
        )
    return contents


def _check_exports(con, exports: Path, contents: dict, check: PublicationCheck) -> None:
    problems = check.problems
    for schema in EXPORTED_SCHEMAS:
        published = {name: v for (s, name), v in contents.items() if s == schema}
        link = exports / schema
        where = f"{exports.name}/{schema}"
        if not link.is_symlink():
            if link.exists():
                problems.append(
                    f"{EXPORTS} — {where} : dossier ordinaire au lieu du lien vers la "
                    "publication en place"
                )
            elif published:
                problems.append(f"{EXPORTS} — {where} : absent")
            continue
        version = Path(os.path.realpath(link)).parent.name  # through `current`
        if check.publication_id and version != check.publication_id:
            problems.append(
                f"{EXPORTS} — {where} : désigne la publication {version} au lieu de celle en "
                f"place ({check.publication_id})"
            )
            continue
        if not link.is_dir():
            problems.append(f"{EXPORTS} — {where} : la version {version} est absente")
            continue
        _check_listing(link, where, published, check)
        for name, item in sorted(published.items()):
            _check_parquet(con, link / f"{name}.parquet", where, f"{schema}.{name}", item, check)
        for path in sorted(link.glob("*.parquet")):
            if path.stem not in published:
                problems.append(
                    f"{EXPORTS} — {where}/{path.name} : aucune table publiée de ce nom, "
                    "fichier ajouté depuis"
                )


def _check_listing(folder: Path, where: str, published: dict, check: PublicationCheck) -> None:
    listing_path = folder / "_publication.json"
    label = f"{EXPORTS} — {where}/{listing_path.name}"
    try:
        listing = json.loads(listing_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        check.problems.append(f"{label} : absent")
        return
    except (OSError, ValueError):
        check.problems.append(f"{label} : illisible")
        return
    if not isinstance(listing, dict):
        check.problems.append(f"{label} : illisible")
        return
    if check.publication_id and listing.get("publication_id") != check.publication_id:
        check.problems.append(
            f"{label} : publication {listing.get('publication_id')} au lieu de "
            f"{check.publication_id}"
        )
    expected = {name: item.row_count for name, item in published.items()}
    if listing.get("tables") != expected:
        check.problems.append(
            f"{label} : la liste des tables et de leurs lignes diffère de la copie publiée"
        )


def _check_parquet(
    con, path: Path, where: str, table: str, item: _Listed, check: PublicationCheck
) -> None:
    """One Parquet export against its table: compared with the table when the table is
    intact, with the published fingerprint when the table itself changed (so an export
    that still holds the published rows is not reported for a change of its table)."""
    label = f"{EXPORTS} — {where}/{path.name}"
    if not path.is_file():
        check.problems.append(f"{label} : absent (table publiée {table})")
        return
    check.exports += 1
    source = f"read_parquet({quote_literal(path)})"
    try:
        names = [d[0] for d in con.execute(f"select * from {source} limit 0").description]
        if item.columns is None:  # the table is gone: only its published row count is known
            count, rows_hash = hash_rows(con, f"select * from {source}")
        elif names != [c[0] for c in item.columns]:
            check.problems.append(
                f"{label} : colonnes différentes de celles de la table publiée {table}"
            )
            return
        else:  # read as the table's types: the same value hashes the same on both sides
            select = ", ".join(
                f"{quote_ident(c)}::{t} as {quote_ident(c)}" for c, t, _ in item.columns
            )
            count, rows_hash = hash_rows(con, f"select {select} from {source}")
    except duckdb.Error as exc:
        check.problems.append(f"{label} : illisible ({type(exc).__name__})")
        return
    if count != item.row_count:
        check.problems.append(
            f"{label} : {count} ligne(s) au lieu de {item.row_count} publiée(s) "
            f"dans la table {table}"
        )
    elif item.columns is None:
        return
    elif item.intact and rows_hash != item.rows_hash:
        check.problems.append(f"{label} : contenu différent de celui de la table publiée {table}")
    elif not item.intact and not item.matches(count, rows_hash):
        check.problems.append(
            f"{label} : contenu différent de celui publié (empreinte de la table {table})"
        )


def format_publication_check(check: PublicationCheck) -> str:
    """The French report ``kpi verify`` prints after the releases'."""
    if not check.present:
        return (
            f"Copie publiée : aucune pour l'instant ({check.file_name} absent), rien à "
            "vérifier (information, pas un écart)."
        )
    lines = [f"avertissement : {w}" for w in check.warnings]
    lines += [f"ÉCART : {p}" for p in check.problems]
    what = (
        f"copie publiée {check.publication_id or '(identifiant inconnu)'} ({check.file_name}, "
        f"{check.tables} table(s) vérifiée(s)) et exports Parquet ({check.exports} fichier(s))"
    )
    if check.intact:
        lines.append(f"{what[0].upper()}{what[1:]} : intègres, conformes à ce qui a été publié.")
    else:
        lines.append(f"{len(check.problems)} écart(s) dans la {what}.")
    return "\n".join(lines)
