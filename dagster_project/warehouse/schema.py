"""The warehouse's own tables, declared once: their DDL, what each holds and who writes it.

These are the tables the project writes itself, beside dbt's models (``dbt/``) and the raw
tables of the deliveries (``raw.<source_id>``, ``raw_restricted.<source_id>``: their columns
come from the contracts, ``ingest.store.ensure_raw_table``). Each writer calls
``ensure(con, name...)`` before it writes: what is missing is created, in dependency order
(schema, sequence, tables, then the views over them), and nothing existing is lost —
creating is idempotent, the columns a table gained since its first version are added
(``alter table ... add column if not exists``, kept with its table below), and the views are
redefined each time. ``recreate`` replaces a table rebuilt whole at each run. The
``publication`` schema of the analysts' copy is written into the copy, never into the build:
``create_publication_tables(con, catalog)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from dagster_project.warehouse.relations import column_names, table_exists


@dataclass(frozen=True)
class Relation:
    """One table, view or sequence of the warehouse."""

    name: str  # schema.name
    about: str  # what it holds, who writes it
    ddl: str  # idempotent statements creating it (and adding the columns it gained)
    needs: tuple[str, ...] = ()  # relations it is defined over (created first)
    # rebuilt whole by its writer (``recreate``): ``ensure`` only creates it when missing
    rebuilt: bool = False
    # columns added to an existing table when missing (a table that grew with the code)
    grows: tuple[tuple[str, str], ...] = ()

    @property
    def schema(self) -> str:
        return self.name.split(".", 1)[0]


# The three levels of a value's review (``quality.review``: STATUS_OK, STATUS_SUSPECT,
# STATUS_ANOMALY), the only statuses ``review.value_reviews`` accepts.
REVIEW_STATUSES = ("sans anomalie apparente", "présomption d'anomalie", "anomalie")

# Columns of ``campaign.status``, in order: a column added to the end of this list is added
# to an existing table (``Relation.grows``).
STATUS_COLUMNS = [
    ("year", "INTEGER"),
    ("department", "VARCHAR"),
    ("source_id", "VARCHAR"),
    ("owner", "VARCHAR"),
    ("email", "VARCHAR"),
    ("due_date", "DATE"),
    ("required", "BOOLEAN"),
    ("received", "BOOLEAN"),
    ("latest_file", "VARCHAR"),
    ("received_at", "TIMESTAMP"),
    ("latest_outcome", "VARCHAR"),
    ("problem_count", "INTEGER"),
    ("report_path", "VARCHAR"),
    ("in_force_file", "VARCHAR"),
    ("days_late", "INTEGER"),
    ("status_fr", "VARCHAR"),
    ("computed_at", "TIMESTAMP"),
    ("expected", "BOOLEAN"),
    ("direction_fr", "VARCHAR"),
    ("title_fr", "VARCHAR"),
    ("latest_delivery_id", "VARCHAR"),
    ("latest_sha256", "VARCHAR"),
    ("in_force_received_at", "TIMESTAMP"),
    ("pending_file", "VARCHAR"),
    ("atypical_count", "INTEGER"),
]


def _sql_list(values) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


# In dependency order: ``ensure`` creates what it is asked for in this order.
RELATIONS = [
    # --- ingest: the delivery log (written by ingest.store, for the pipeline and the portal)
    Relation(
        "ingest.deliveries",
        "one row per delivered file judged: its SHA-256, outcome, counts, whether in force; "
        "ingest.store.record_deliveries",
        """
create table if not exists ingest.deliveries (
    delivery_id varchar primary key,
    campaign_year integer not null,
    department varchar not null,
    source_id varchar not null,
    file_path varchar not null,
    file_name varchar not null,
    file_sha256 varchar not null,
    file_size bigint,
    received_at timestamp not null,
    processed_at timestamp not null,
    outcome varchar not null,
    row_count integer not null,
    problem_count integer not null,
    warning_count integer not null,
    sheet varchar,
    report_path varchar,
    depends_on varchar,
    in_force boolean not null default false
);
-- the delivery's file is (still) in sources/; when it was last seen there, when removed
alter table ingest.deliveries add column if not exists present boolean default true;
alter table ingest.deliveries add column if not exists last_seen_at timestamp;
alter table ingest.deliveries add column if not exists withdrawn_at timestamp;
""",
    ),
    Relation(
        "ingest.delivery_problems",
        "the problems and warnings found in each delivery (values of personal sources "
        "blanked in the published copy); ingest.store.record_deliveries",
        """
create table if not exists ingest.delivery_problems (
    delivery_id varchar not null,
    severity varchar not null,
    sheet varchar,
    row_number integer,
    column_name varchar,
    value varchar,
    reason varchar not null
);
""",
    ),
    # --- raw_restricted: beside the HR raw tables, never published
    Relation(
        "raw_restricted.pseudonym_key",
        "the fingerprint of the pseudonymisation key the warehouse was built with (never the "
        "key), one row; ingest.privacy.check_key, at the first use of a key",
        """
create table if not exists raw_restricted.pseudonym_key (
    fingerprint varchar not null,
    algorithm varchar not null,
    recorded_at timestamp not null
);
""",
    ),
    # --- audit: what the checks of each run found
    Relation(
        "audit.check_results",
        "one row per Great Expectations suite and run (a rerun replaces it): passed, "
        "blocking, French description; quality.runner.record_outcomes",
        """
create table if not exists audit.check_results (
    run_id varchar not null,
    checked_at timestamp default current_timestamp,
    check_name varchar not null,
    asset varchar,
    passed boolean not null,
    blocking boolean not null,
    severity varchar not null,
    description_fr varchar,
    details_json varchar
);
""",
    ),
    Relation(
        "audit.check_evidence",
        "each suite's latest GX result, cleaned, the release's validation evidence; "
        "quality.evidence.record_evidence",
        """
create table if not exists audit.check_evidence (
    check_name varchar not null,
    run_id varchar not null,
    checked_at timestamp default current_timestamp,
    suite_sha256 varchar not null,
    rows bigint,
    result_json varchar
);
""",
    ),
    Relation(
        "audit.dbt_results",
        "dbt build's test and model results of each run (a rerun replaces them), one row per "
        "node of the project: a run limited to some sources carries the other nodes' latest "
        "result forward (``carried_from``: the run that produced it); "
        "defs.assets.dbt.record_dbt_results",
        """
create table if not exists audit.dbt_results (
    run_id varchar,
    unique_id varchar,
    status varchar,
    failures integer,
    message varchar,
    execution_time double,
    recorded_at timestamp default current_timestamp,
    carried_from varchar
);
""",
        grows=(("carried_from", "VARCHAR"),),
    ),
    Relation(
        "audit.portal_journal",
        "who did what on the collection portal (logins, uploads, reviews, reminders, freezes), "
        "copied from the portal's own journal at each kpi run: portal.journal.copy_journal",
        """
create table if not exists audit.portal_journal (
    id bigint primary key,
    logged_at varchar not null, -- the portal's « at » (ISO time, local)
    login varchar not null,
    role varchar not null,
    action varchar not null,
    year integer,
    department varchar,
    source_id varchar,
    detail varchar,
    client varchar
);
""",
    ),
    # --- quality: atypical values, for kpi status and the reminders
    Relation(
        "quality.atypical_values",
        "the atypical values of every year after the marts are built, qualified or not, with "
        "the deliveries feeding them; rebuilt whole by quality.notices.record_atypical_values",
        """
create or replace table quality.atypical_values (
    year integer not null,
    indicator_id varchar not null,
    code_insee varchar,
    label_fr varchar,
    value double,
    previous_value double,
    reasons varchar not null,
    qualified boolean not null,
    delivery_ids varchar
);
""",
        rebuilt=True,
    ),
    # --- review: the validation status of each value (quality.review, kpi review)
    Relation(
        "review.value_review_seq",
        "numbers the review decisions (review_id)",
        """
create sequence if not exists review.value_review_seq;
""",
    ),
    Relation(
        "review.value_reviews",
        "every review decision, never updated: status, comment, reviewer, value seen; "
        "quality.review (kpi review set / import, the portal)",
        f"""
create table if not exists review.value_reviews (
    review_id bigint primary key default nextval('review.value_review_seq'),
    year integer not null,
    indicator_id varchar not null,
    code_insee varchar,
    status varchar not null check (status in ({_sql_list(REVIEW_STATUSES)})),
    comment varchar,
    reviewer varchar not null,
    reviewed_at timestamp not null,
    value_at_review double,
    origin varchar
);
""",
        needs=("review.value_review_seq",),
    ),
    Relation(
        "review.current_reviews",
        "view: the latest decision per value (year, indicator, commune)",
        """
create or replace view review.current_reviews as
select * from review.value_reviews
qualify row_number() over (
    partition by year, indicator_id, code_insee order by review_id desc
) = 1;
""",
        needs=("review.value_reviews",),
    ),
    # --- release: releases, written once and never changed (release.freeze, release.recovery)
    Relation(
        "release.releases",
        "one row per release RA-<year>-v<n>: version, reason, hashes of its manifest and "
        "values, the previous version; release.freeze",
        """
create table if not exists release.releases (
    release_id varchar primary key,
    year integer not null,
    version integer not null,
    created_at timestamp not null default current_timestamp,
    reason varchar,
    run_id varchar,
    value_count integer not null,
    manifest_sha256 varchar not null,
    previous_release_id varchar,
    previous_manifest_sha256 varchar,
    folder varchar not null
);
alter table release.releases add column if not exists values_sha256 varchar;
""",
    ),
    Relation(
        "release.release_values",
        "the values of each release as frozen, with the review status and plausibility note "
        "in force then; release.freeze",
        """
create table if not exists release.release_values (
    release_id varchar not null,
    indicator_id varchar not null,
    year integer not null,
    code_insee varchar,
    value double,
    unit varchar,
    as_of_date date,
    kind varchar,
    computation varchar,
    comment varchar,
    source_ids varchar,
    delivery_ids varchar
);
alter table release.release_values add column if not exists review_status varchar;
alter table release.release_values add column if not exists review_comment varchar;
alter table release.release_values add column if not exists plausibility_note varchar;
""",
    ),
    Relation(
        "release.waivers",
        "one row per failed check waived at a freeze, with its justification; release.freeze",
        """
create table if not exists release.waivers (
    release_id varchar not null,
    check_name varchar not null,
    asset varchar,
    description varchar,
    justification varchar not null,
    recorded_at timestamp not null default current_timestamp
);
""",
    ),
    Relation(
        "release.latest_values",
        "view: the values of the latest version of each year, with version and frozen_at",
        """
create or replace view release.latest_values as
select v.*, r.version, r.created_at as frozen_at
from release.release_values as v
join release.releases as r on r.release_id = v.release_id
where r.version = (select max(r2.version) from release.releases as r2 where r2.year = r.year);
""",
        needs=("release.releases", "release.release_values"),
    ),
    # --- campaign: where each expected delivery stands (campaign.status, kpi status)
    Relation(
        "campaign.status",
        "one row per expected delivery of a year: received, late, rejected, to confirm; the "
        "rows of a year replaced by campaign.status.write_status_table",
        "create table if not exists campaign.status ("
        + ", ".join(f"{name} {kind}" for name, kind in STATUS_COLUMNS)
        + ");",
        grows=tuple(STATUS_COLUMNS),
    ),
]
BY_NAME = {relation.name: relation for relation in RELATIONS}
SCHEMAS = list(dict.fromkeys(relation.schema for relation in RELATIONS))


def _wanted(names: tuple[str, ...]) -> list[Relation]:
    """The relations named (a schema name stands for all of its own), with those they need,
    in declaration order."""
    wanted: set[str] = set()
    todo = []
    for name in names:
        if name in BY_NAME:
            todo.append(name)
        elif name in SCHEMAS:
            todo.extend(r.name for r in RELATIONS if r.schema == name)
        else:
            raise KeyError(f"{name}: not a table of dagster_project.warehouse.schema")
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(BY_NAME[name].needs)
    return [r for r in RELATIONS if r.name in wanted]


def ensure(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Create what is missing of the named tables and views (or of whole schemas: ``"release"``)
    and what they need, in dependency order; add the columns they gained; redefine the views.
    Idempotent: an existing table keeps its rows."""
    relations = [r for r in _wanted(names) if not (r.rebuilt and table_exists(con, r.name))]
    if not relations:
        return
    schemas = dict.fromkeys(r.schema for r in relations)
    script = "".join(f"create schema if not exists {schema};\n" for schema in schemas)
    con.execute(script + "".join(r.ddl for r in relations))
    for relation in relations:
        if relation.grows:
            existing = column_names(con, relation.name)
            for name, kind in relation.grows:
                if name not in existing:
                    con.execute(f"alter table {relation.name} add column {name} {kind}")


def recreate(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Replace a table rebuilt whole at each run (``Relation.rebuilt``) by an empty one."""
    relation = BY_NAME[name]
    if not relation.rebuilt:
        raise ValueError(f"{name} is kept across runs: use ensure")
    con.execute(f"create schema if not exists {relation.schema};\n" + relation.ddl)


# --- the publication schema of the analysts' copy ------------------------------------------

PUBLICATION_SCHEMA = "publication"
# Written into the copy (``{pub}``: its catalog's publication schema) by
# warehouse.publication.publish, after every other table; read by kpi verify
# (warehouse.publication_check) and by the next publication (warehouse.published_copy).
PUBLICATION_DDL = """
create schema {pub};
-- one row: which publication this is, when, from which run, by which DuckDB version, in which
-- storage format (``published_copy.STORAGE_VERSION``; a column publications before it lack)
create table {pub}.info (
    publication_id varchar,
    published_at timestamp,
    run_id varchar,
    duckdb_version varchar,
    note varchar,
    storage_version varchar
);
comment on table {pub}.info is 'Publication de l''entrepôt : identifiant, date, exécution du pipeline d''origine, version de DuckDB qui l''a écrite et format de stockage du fichier. Une ligne.';
comment on column {pub}.info.storage_version is 'Format de stockage DuckDB du fichier (v1.0.0 : lisible par tout client DuckDB 1.x, de 1.0.0 à 1.5.x, et au-delà).';
-- one row per table of the copy: rows, whether built as a view, fingerprint of its content
create table {pub}.tables (
    schema_name varchar,
    table_name varchar,
    built_as varchar,
    row_count bigint,
    fingerprint varchar
);
comment on table {pub}.tables is 'Tables de la copie publiée, avec leur nombre de lignes ; built_as = view pour une vue de la base de construction matérialisée en table ; fingerprint = empreinte du contenu (colonnes, commentaires, lignes) de la table écrite, qui permet à la publication suivante de garder telle quelle une table inchangée et à kpi verify de vérifier la copie publiée.';
"""


def create_publication_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> None:
    """The ``publication`` schema, empty, in the copy attached as ``catalog`` (which has none)."""
    con.execute(PUBLICATION_DDL.format(pub=f"{catalog}.{PUBLICATION_SCHEMA}"))
