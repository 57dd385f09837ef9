"""One value at a time: `kpi trace` (where a value comes from: release, dbt model,
deliveries, source rows) and `kpi review set|list|export|import` (its validation status,
set by the people who check the figures, one by one or in a workbook).

Registered right after ``release.py``, whose commands freeze, compare and verify releases.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dagster_project.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    common_options,
    connect,
    json_option,
    settings_from,
)


def cmd_trace(args: argparse.Namespace) -> int:
    from dagster_project.release.lineage.report import format_trace, trace_json
    from dagster_project.release.lineage.trace import TraceError, trace

    settings = settings_from(args)
    con = connect(settings, read_only=True)
    try:
        result = trace(con, args.indicator_id, args.year, args.commune, args.release)
    except TraceError as exc:
        print(f"kpi trace : {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        con.close()
    print(trace_json(result) if args.json else format_trace(result))
    return EXIT_OK


def _amount(value) -> str:
    from dagster_project.lib.french import format_number

    return format_number(value)


def cmd_review_set(args: argparse.Namespace) -> int:
    from dagster_project.quality.review import ReviewError, set_review

    settings = settings_from(args)
    con = connect(settings)
    try:
        status = set_review(
            con,
            args.year,
            args.indicator,
            args.commune,
            args.status,
            args.comment,
            args.reviewer,
        )
    except ReviewError as exc:
        print(f"kpi review set : {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        con.close()
    where = f"commune {args.commune}" if args.commune else "agglomération"
    print(f"{args.indicator} ({args.year}, {where}) : « {status} » enregistré par {args.reviewer}")
    return EXIT_OK


def cmd_review_list(args: argparse.Namespace) -> int:
    from dagster_project.cli.json_output import (
        dumps,
        review_history_document,
        review_list_document,
    )
    from dagster_project.contracts.reference import amount_fr
    from dagster_project.quality.review import (
        ReviewError,
        history,
        list_reviews,
        reviewed_values,
        status_counts,
    )

    settings = settings_from(args)
    con = connect(settings)
    try:
        if args.indicator:
            entries = history(con, args.year, args.indicator, args.commune)
            if args.json:
                document = review_history_document(args.year, args.indicator, args.commune, entries)
                print(dumps(document))
                return EXIT_OK
            where = f"commune {args.commune}" if args.commune else "agglomération"
            print(f"Historique de revue : {args.indicator} ({args.year}, {where})")
            if not entries:
                print("  aucune revue")
            for e in entries:
                print(
                    f"  {e['reviewed_at']:%d/%m/%Y %H:%M} {e['reviewer']} : « {e['status']} »"
                    + (f" — {e['comment']}" if e["comment"] else "")
                    + f" (valeur {_amount(e['value_at_review'])}, {e['origin']})"
                )
            return EXIT_OK
        try:
            rows = list_reviews(con, args.year, args.status)
        except ReviewError as exc:
            print(f"kpi review list : {exc}", file=sys.stderr)
            return EXIT_ERROR
        counts = status_counts(reviewed_values(con, args.year))
    finally:
        con.close()
    if args.json:
        print(dumps(review_list_document(args.year, args.status, rows, counts)))
        return EXIT_OK
    for v in rows:
        where = f"{v.commune or ''} ({v.code_insee})".strip() if v.code_insee else "agglomération"
        line = (
            f"{v.status or 'non revu':<24} {v.indicator_id} — {where} : "
            f"{amount_fr(v.value, v.unit)}"
        )
        if v.status:
            line += f" | {v.reviewer}, {v.reviewed_at:%d/%m/%Y}"
            if v.comment:
                line += f" | {v.comment}"
            if v.changed_since_review:
                line += f" | valeur modifiée depuis la revue ({_amount(v.value_at_review)})"
        print(line)
    print(
        f"{len(rows)} valeur(s) listée(s). Année {args.year} : "
        + ", ".join(f"{n} {status}" for status, n in counts.items())
    )
    return EXIT_OK


def cmd_review_export(args: argparse.Namespace) -> int:
    from dagster_project.quality.review import ReviewError
    from dagster_project.quality.review_workbook import export_workbook

    settings = settings_from(args)
    con = connect(settings)
    out = Path(args.out).resolve()
    try:
        count = export_workbook(con, args.year, out)
    except ReviewError as exc:
        print(f"kpi review export : {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        con.close()
    print(f"{count} valeur(s) de {args.year} écrite(s) dans {out}")
    return EXIT_OK


def cmd_review_import(args: argparse.Namespace) -> int:
    from dagster_project.quality.review import ReviewError
    from dagster_project.quality.review_workbook import ImportRejected, import_workbook

    path = Path(args.file).resolve()
    if not path.is_file():
        print(f"kpi review import : fichier introuvable : {path}", file=sys.stderr)
        return EXIT_ERROR
    settings = settings_from(args)
    con = connect(settings)
    try:
        result = import_workbook(con, path, args.reviewer)
    except ImportRejected as exc:
        print(
            f"kpi review import : {path.name} refusé, rien n'a été enregistré "
            f"({len(exc.problems)} problème(s)) :",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_ERROR
    except ReviewError as exc:
        print(f"kpi review import : {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        con.close()
    for warning in result.warnings:
        print(f"avertissement : {warning}")
    print(
        f"{result.recorded} revue(s) enregistrée(s) par {args.reviewer}, "
        f"{result.unchanged} ligne(s) inchangée(s)"
    )
    return EXIT_OK


def register(sub) -> None:
    tr = sub.add_parser(
        "trace", help="d'où vient une valeur : publication, modèle, livraisons, lignes"
    )
    tr.add_argument("indicator_id", metavar="INDICATEUR", help="identifiant de l'indicateur")
    tr.add_argument("--year", type=int, required=True, help="année de la campagne (AAAA, ex. 2025)")
    tr.add_argument(
        "--commune", metavar="CODE_INSEE", help="valeur d'une commune (défaut : agglomération)"
    )
    tr.add_argument(
        "--release", help="publication à lire (défaut : la dernière version de l'année)"
    )
    tr.add_argument("--json", action="store_true", help="sortie JSON")
    common_options(tr)
    tr.set_defaults(func=cmd_trace)

    rv = sub.add_parser("review", help="statut de validation des valeurs (revue)")
    rsub = rv.add_subparsers(dest="review_command", required=True)
    st = rsub.add_parser("set", help="enregistrer le statut d'une valeur")
    st.add_argument("--year", type=int, required=True, help="année de la campagne (AAAA, ex. 2025)")
    st.add_argument("--indicator", required=True, help="identifiant de l'indicateur")
    st.add_argument("--commune", metavar="CODE_INSEE", help="défaut : valeur d'agglomération")
    st.add_argument(
        "--status",
        required=True,
        help="sans anomalie apparente | présomption d'anomalie | anomalie (alias ok, presomption)",
    )
    st.add_argument("--comment", help="obligatoire pour présomption d'anomalie et anomalie")
    st.add_argument("--reviewer", required=True, help="nom du relecteur")
    common_options(st)
    st.set_defaults(func=cmd_review_set)

    ls = rsub.add_parser("list", help="lister les valeurs revues (ou l'historique d'une valeur)")
    ls.add_argument("--year", type=int, required=True, help="année de la campagne (AAAA, ex. 2025)")
    ls.add_argument("--status", help="un statut, ou « non revu »")
    ls.add_argument("--indicator", help="historique complet des revues de cet indicateur")
    ls.add_argument(
        "--commune",
        metavar="CODE_INSEE",
        help="avec --indicator : valeur d'une commune (défaut : agglomération)",
    )
    json_option(ls)
    common_options(ls)
    ls.set_defaults(func=cmd_review_list)

    ex = rsub.add_parser("export", help="classeur de revue de l'année (une ligne par valeur)")
    ex.add_argument("--year", type=int, required=True, help="année de la campagne (AAAA, ex. 2025)")
    ex.add_argument("--out", required=True, help="fichier .xlsx à écrire")
    common_options(ex)
    ex.set_defaults(func=cmd_review_export)

    im = rsub.add_parser("import", help="réimporter un classeur de revue complété")
    im.add_argument("file", metavar="FICHIER", help="classeur de revue complété (.xlsx)")
    im.add_argument("--reviewer", required=True, help="nom du relecteur")
    common_options(im)
    im.set_defaults(func=cmd_review_import)
