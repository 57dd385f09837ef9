"""Releases: `kpi freeze` (a year's values frozen into a versioned, verifiable release),
`kpi diff` (two releases compared value by value) and `kpi verify` (releases and the
analysts' copy checked against what was written).

The commands on single values, `kpi trace` and `kpi review`, are ``review.py``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from dagster_project.cli.common import (
    EXIT_BLOCKED,
    EXIT_ERROR,
    EXIT_OK,
    common_options,
    connect,
    json_option,
    settings_from,
)
from dagster_project.lib import progress as progress_lines
from dagster_project.lib.progress import progress


def _waivers(args: argparse.Namespace) -> dict[str, str] | None:
    """Pair each --waive with its --justification (one justification may cover them all)."""
    names = args.waive or []
    texts = args.justification or []
    if not names and not texts:
        return {}
    if not names:
        print("kpi freeze : --justification sans --waive", file=sys.stderr)
        return None
    if len(texts) == 1:
        texts = texts * len(names)
    if len(texts) != len(names):
        print(
            'kpi freeze : chaque --waive CONTRÔLE exige sa --justification "..." '
            f"({len(names)} levée(s), {len(texts)} justification(s))",
            file=sys.stderr,
        )
        return None
    return dict(zip(names, texts, strict=True))


@contextlib.contextmanager
def _frozen_state(settings):
    """The write connection of a freeze, taken when no run is queued or in progress in the
    Dagster instance and kept for the whole freeze: a run that starts meanwhile waits for it
    at its first step, so a release never mixes two states of a run (one ``kpi run`` or
    ``kpi freeze`` at a time: ``session``)."""
    from dagster_project.defs.instance import active_runs, get_instance, wait_for_no_active_run
    from dagster_project.warehouse.access import session, to_stderr, wait_seconds
    from dagster_project.warehouse.build import ensure_build

    with session(ensure_build(settings), "kpi freeze"):
        instance = get_instance()
        while True:
            wait_for_no_active_run(instance, "kpi freeze", wait_seconds(), to_stderr)
            con = connect(settings)
            if not active_runs(instance):  # none slipped in before we held the database
                break
            con.close()
        try:
            yield con
        finally:
            con.close()


def cmd_freeze(args: argparse.Namespace) -> int:
    from dagster_project.cli.run import _publish
    from dagster_project.release.anchor import ANCHOR, chain_head
    from dagster_project.release.freeze import freeze
    from dagster_project.release.gate import FreezeRefused, prepare_freeze
    from dagster_project.release.recovery import Recovery, needs_recovery, recover_interrupted

    waivers = _waivers(args)
    if waivers is None:
        return EXIT_ERROR
    settings = settings_from(args)
    progress_lines.enable()  # KPI_PROGRESS=1 (unless kpi --quiet): the steps on stderr
    progress(f"gel {args.year} : accès à l'entrepôt (aucune exécution ni aucun gel en cours)")
    # never silent more than a few seconds: a long step is said again while it runs
    with _frozen_state(settings) as con, progress_lines.heartbeat():
        # what a killed freeze left: completed or set aside before anything else (no other
        # freeze runs: we hold the session and the build's write connection)
        if args.dry_run:  # writes nothing, not even that
            recovery = Recovery()
            if needs_recovery(settings.releases_dir):
                print(
                    "information : un gel interrompu a laissé des fichiers dans "
                    f"{settings.releases_dir} ; le gel (ou kpi verify) les reprendra d'abord"
                )
        else:
            if needs_recovery(settings.releases_dir):
                progress(f"gel {args.year} : reprise de ce qu'un gel interrompu a laissé")
            recovery = recover_interrupted(con, settings.releases_dir)
        for message in recovery.messages:
            print(f"Reprise d'un gel interrompu : {message}")
        try:
            # what is about to be frozen, shown before anything is written
            progress(
                f"gel {args.year} : contrôles avant le gel (contrôles bloquants, valeurs "
                "atypiques, revues)"
            )
            summary, _waived, _run_id = prepare_freeze(con, args.year, waivers=waivers)
            print(summary.text())
            if args.dry_run:
                print("Simulation (--dry-run) : le gel serait accepté ; rien n'a été écrit.")
                return EXIT_OK
            release = freeze(
                con,
                args.year,
                settings.releases_dir,
                reason=args.reason,
                waivers=waivers,
                summary=summary,
            )
        except FreezeRefused as exc:
            if exc.summary is not None:
                print(exc.summary.text())
            print(f"kpi freeze : {exc}", file=sys.stderr)
            if args.dry_run:
                print("Simulation (--dry-run) : rien n'a été écrit.", file=sys.stderr)
            release = None
    if release is None:
        if recovery.completed and not (args.no_publish or args.dry_run):
            # the completed release is shown to analysts even though this freeze was refused
            with progress_lines.heartbeat():
                _publish(settings, None, note="reprise de " + ", ".join(recovery.completed))
        return EXIT_BLOCKED
    progress(f"{release.release_id} figée")
    print(
        f"Publication {release.release_id} figée : {release.value_count} valeurs, dossier {release.folder}"
    )
    print(f"  manifeste SHA-256 {release.manifest_sha256}")
    print(f"  valeurs SHA-256 {release.values_sha256}")
    for w in release.waivers:
        print(f"  contrôle levé : {w['check']} ({w['asset']}) — {w['justification']}")
    head = chain_head(settings.releases_dir)
    if head:
        size = (settings.releases_dir / ANCHOR).stat().st_size
        print(
            f"  ancre {ANCHOR} : tête de chaîne {head} ({size} octets), à conserver hors du serveur"
        )
    for warning in release.warnings:
        print(f"avertissement : {warning}", file=sys.stderr)
    if args.no_publish:
        return EXIT_OK
    # The analysts' read-only copy shows the new release (release.releases, latest_values).
    with progress_lines.heartbeat():
        return _publish(settings, None, note=f"gel de {release.release_id}")


def cmd_diff(args: argparse.Namespace) -> int:
    from dagster_project.release.diff import diff_releases, format_diff, write_diff_csv
    from dagster_project.release.records import release_info

    settings = settings_from(args)
    con = connect(settings, read_only=True)
    try:
        try:
            changes = diff_releases(con, args.old, args.new)
        except KeyError as exc:
            print(f"kpi diff : {exc.args[0]}", file=sys.stderr)
            return EXIT_ERROR
        reason = release_info(con, args.new)["reason"]
    finally:
        con.close()
    path = Path(args.csv).resolve() if args.csv else None
    if path:
        write_diff_csv(changes, path)
    if args.json:
        from dagster_project.cli.json_output import diff_document, dumps

        print(dumps(diff_document(args.old, args.new, changes, reason, path)))
        return EXIT_OK
    print(format_diff(args.old, args.new, changes, reason))
    if path:
        print(f"Différences écrites dans {path}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    import duckdb

    from dagster_project.cli.json_output import dumps, verify_document
    from dagster_project.release.recovery import needs_recovery, recover_interrupted
    from dagster_project.release.verify import format_verification, verify, verify_copy
    from dagster_project.warehouse.access import WarehouseBusy, session
    from dagster_project.warehouse.build import PublishError, ensure_build
    from dagster_project.warehouse.publication_check import (
        format_publication_check,
        verify_publication,
    )

    settings = settings_from(args)
    # with --json, stdout holds the document alone: what is said on the way goes to stderr
    say = (lambda text: print(text, file=sys.stderr)) if args.json else print
    recovered: list[str] = []
    if needs_recovery(settings.releases_dir):
        # a killed freeze left something: completed or set aside first, when no freeze or
        # run is in progress (never waits for one)
        try:
            with session(ensure_build(settings), "kpi verify", wait=0):
                con = connect(settings)
                try:
                    recovery = recover_interrupted(con, settings.releases_dir)
                finally:
                    con.close()
            recovered = recovery.messages
            for message in recovery.messages:
                say(f"Reprise d'un gel interrompu : {message}")
        except WarehouseBusy:
            say(
                "information : un gel ou une exécution est en cours ; ce qu'un gel interrompu "
                "a pu laisser sera repris par la prochaine commande kpi freeze ou kpi verify"
            )
        except (OSError, duckdb.Error) as exc:  # e.g. an auditor's account, read-only
            say(
                "information : ce qu'un gel interrompu a pu laisser n'a pas pu être repris "
                f"({type(exc).__name__} : {exc}) ; il le sera par le prochain kpi freeze"
            )
    con = connect(settings, read_only=True)
    try:
        result = verify(con, settings.releases_dir, args.release)
    finally:
        con.close()
    # the releases as analysts read them: the published copy's release tables
    verify_copy(settings.warehouse, settings.releases_dir, result, args.release)
    if not args.json:
        print(format_verification(result))
    # the analysts' copy and its Parquet exports, against what was published
    try:
        published = verify_publication(settings)
    except PublishError as exc:  # a publication held its lock for the whole wait
        if args.json:
            print(dumps(verify_document(result, None, recovered)))
        print(f"kpi verify : {exc}", file=sys.stderr)
        return EXIT_BLOCKED
    if args.json:
        print(dumps(verify_document(result, published, recovered)))
    else:
        print(format_publication_check(published))
    return EXIT_OK if result.intact and published.intact else EXIT_BLOCKED


def register(sub) -> None:
    fr = sub.add_parser("freeze", help="figer les valeurs d'une année en publication versionnée")
    fr.add_argument("--year", type=int, required=True, help="année de la campagne (AAAA, ex. 2025)")
    fr.add_argument("--reason", help="motif, obligatoire pour une nouvelle version")
    fr.add_argument(
        "--waive",
        action="append",
        metavar="CONTRÔLE",
        help="lever un contrôle bloquant en échec (répétable ; exige --justification)",
    )
    fr.add_argument(
        "--justification",
        action="append",
        help="justification écrite de la levée (une par --waive, ou une pour toutes)",
    )
    fr.add_argument("--releases", help="dossier des publications (défaut ./releases)")
    fr.add_argument(
        "--dry-run",
        action="store_true",
        help="montrer ce qui serait figé (contrôles, valeurs atypiques, revues) sans rien écrire",
    )
    fr.add_argument(
        "--no-publish",
        action="store_true",
        help="ne pas republier la copie des analystes après le gel",
    )
    common_options(fr)
    fr.set_defaults(func=cmd_freeze)

    df = sub.add_parser(
        "diff", help="comparer deux publications (valeurs modifiées, ajoutées, retirées)"
    )
    df.add_argument("old", metavar="ANCIENNE", help="ex. RA-2025-v1")
    df.add_argument("new", metavar="NOUVELLE", help="ex. RA-2025-v2")
    df.add_argument("--csv", metavar="FICHIER", help="écrire aussi les différences en CSV")
    json_option(df)
    common_options(df)
    df.set_defaults(func=cmd_diff)

    ve = sub.add_parser(
        "verify", help="vérifier l'intégrité des publications (fichiers, manifestes, entrepôt)"
    )
    ve.add_argument("--release", help="une seule publication (défaut : toutes)")
    ve.add_argument("--releases", help="dossier des publications (défaut ./releases)")
    json_option(ve)
    common_options(ve)
    ve.set_defaults(func=cmd_verify)
