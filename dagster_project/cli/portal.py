"""`kpi portal`: the collection portal (web pages for the departments, the steering department
and the auditors; JSON API for automated deliveries), and its accounts and tokens.

    kpi portal [--host 127.0.0.1] [--port 8000] [--sources …] [--warehouse …] [--today …]
    kpi portal account create LOGIN --role department --department water [--name …] [--email …]
    kpi portal account create --from-campaign --year 2025      (one account per department)
    kpi portal account reset LOGIN
    kpi portal account list
    kpi portal token create LOGIN [--label …]
    kpi portal token revoke TOKEN_ID
    kpi portal journal [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import getpass
import os
import sys
from pathlib import Path

from dagster_project.cli.common import EXIT_ERROR, EXIT_OK, common_options, settings_from

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _store(args):
    from dagster_project.portal.store import PortalStore, state_dir

    settings = settings_from(args)
    return PortalStore(state_dir(settings) / "portail.sqlite"), settings


def _password(args, login: str) -> tuple[str, bool]:
    """(password, generated): from stdin with --password-stdin, else asked twice on a
    terminal, else generated and printed once."""
    from dagster_project.portal.accounts import generate_password

    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n"), False
    if sys.stdin.isatty() and not getattr(args, "generate", False):
        first = getpass.getpass(f"Mot de passe de {login} : ")
        if first != getpass.getpass("Confirmez : "):
            raise SystemExit("kpi portal : les deux saisies diffèrent")
        return first, False
    return generate_password(), True


def cmd_portal(args: argparse.Namespace) -> int:
    import uvicorn

    from dagster_project.defs.instance import ensure_dagster_home
    from dagster_project.portal.app import create_app
    from dagster_project.portal.core import PortalConfig

    settings = settings_from(args)
    os.environ.setdefault("DAGSTER_HOME", str(ensure_dagster_home(None)))
    config = PortalConfig(settings, pipeline=args.pipeline, https=args.https_proxy)
    app = create_app(config)
    print(
        f"kpi portal : portail de collecte sur http://{args.host}:{args.port} "
        f"(livraisons {settings.sources_dir}, entrepôt {settings.warehouse}, "
        f"état {config.state_dir}, exécutions : {args.pipeline})\nCtrl-C pour arrêter.",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        proxy_headers=args.https_proxy,
        forwarded_allow_ips=os.environ.get("KPI_PORTAL_PROXY_IPS", "127.0.0.1"),
        server_header=False,
    )
    return EXIT_OK


def cmd_account_create(args: argparse.Namespace) -> int:
    from dagster_project.portal.accounts import AccountError

    store, settings = _store(args)
    if args.from_campaign:
        return _accounts_from_campaign(store, settings, args)
    if not args.login or not args.role:
        print("kpi portal account create : LOGIN et --role sont obligatoires", file=sys.stderr)
        return EXIT_ERROR
    password, generated = _password(args, args.login)
    try:
        account = store.create_account(
            args.login,
            args.role,
            password,
            departments=tuple(args.department or ()),
            name=args.name or "",
            email=args.email or "",
        )
    except AccountError as exc:
        print(f"kpi portal account create : {exc}", file=sys.stderr)
        return EXIT_ERROR
    store.log(None, "compte créé", login="kpi portal", detail=f"{account.login} ({account.role})")
    print(f"compte {account.login} créé ({account.role_fr})")
    if generated:
        print(f"mot de passe : {password}")
    return EXIT_OK


def _accounts_from_campaign(store, settings, args) -> int:
    from dagster_project.campaign.plan import CampaignError, load_campaign
    from dagster_project.portal.accounts import AccountError, generate_password

    if not args.year:
        print("kpi portal account create --from-campaign : --year est obligatoire", file=sys.stderr)
        return EXIT_ERROR
    try:
        campaign = load_campaign(settings.sources_dir, args.year)
    except CampaignError as exc:
        print(f"kpi portal : fichier de campagne invalide\n{exc}", file=sys.stderr)
        return EXIT_ERROR
    owners: dict[str, object] = {}
    for entry in campaign.entries:
        owners.setdefault(entry.department, entry.owner)
    created = 0
    for department, owner in sorted(owners.items()):
        if store.account(department) is not None:
            continue
        password = generate_password()
        try:
            store.create_account(
                department,
                "department",
                password,
                departments=(department,),
                name=f"{owner.contact} ({owner.direction_fr})",
                email=owner.email,
            )
        except AccountError as exc:
            print(f"kpi portal : {exc}", file=sys.stderr)
            continue
        store.log(None, "compte créé", login="kpi portal", detail=f"{department} (department)")
        created += 1
        print(f"{department}\t{owner.email}\t{password}")
    print(
        f"{created} compte(s) de direction créé(s) (identifiant, adresse, mot de passe)",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_account_reset(args: argparse.Namespace) -> int:
    from dagster_project.portal.accounts import AccountError

    store, _settings = _store(args)
    password, generated = _password(args, args.login)
    try:
        store.reset_password(args.login, password)
    except AccountError as exc:
        print(f"kpi portal account reset : {exc}", file=sys.stderr)
        return EXIT_ERROR
    store.clear_failures(args.login)
    store.log(None, "mot de passe réinitialisé", login="kpi portal", detail=args.login)
    print(f"mot de passe de {args.login} réinitialisé (ses sessions sont fermées)")
    if generated:
        print(f"mot de passe : {password}")
    return EXIT_OK


def cmd_account_list(args: argparse.Namespace) -> int:
    store, _settings = _store(args)
    for a in store.accounts():
        print(f"{a.login}\t{a.role}\t{','.join(a.departments)}\t{a.name}\t{a.email}")
    return EXIT_OK


def cmd_token_create(args: argparse.Namespace) -> int:
    from dagster_project.portal.accounts import AccountError

    store, _settings = _store(args)
    try:
        token = store.create_token(args.login, args.label or "")
    except AccountError as exc:
        print(f"kpi portal token create : {exc}", file=sys.stderr)
        return EXIT_ERROR
    token_id = token.split("_")[1]
    store.log(None, "jeton créé", login="kpi portal", detail=f"{token_id} pour {args.login}")
    print(token)
    print(
        f"jeton {token_id} créé pour {args.login} : conservez-le, il n'est affiché qu'une fois",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from dagster_project.portal.accounts import AccountError

    store, _settings = _store(args)
    try:
        login = store.revoke_token(args.token_id)
    except AccountError as exc:
        print(f"kpi portal token revoke : {exc}", file=sys.stderr)
        return EXIT_ERROR
    token_id = args.token_id.removeprefix("kpi_").split("_")[0]  # never the secret part
    store.log(None, "jeton révoqué", login="kpi portal", detail=f"{token_id} de {login}")
    print(f"jeton {token_id} de {login} révoqué")
    return EXIT_OK


def cmd_journal(args: argparse.Namespace) -> int:
    store, _settings = _store(args)
    rows = list(reversed(store.journal(limit=1_000_000)))
    out = open(args.out, "w", encoding="utf-8-sig", newline="") if args.out else sys.stdout  # noqa: SIM115
    try:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(
            [
                "date",
                "compte",
                "rôle",
                "action",
                "année",
                "direction",
                "source",
                "détail",
                "adresse",
            ]
        )
        for r in rows:
            writer.writerow(
                [
                    r["at"],
                    r["login"],
                    r["role"],
                    r["action"],
                    r["year"] or "",
                    r["department"] or "",
                    r["source_id"] or "",
                    r["detail"],
                    r["client"],
                ]
            )
    finally:
        if args.out:
            out.close()
    return EXIT_OK


def _settings_options(parser) -> None:
    parser.add_argument("--sources", help="dossier des livraisons (défaut ./sources)")
    common_options(parser)
    parser.add_argument("--today", help="date du jour pour juger les livraisons (AAAA-MM-JJ)")


def register(sub) -> None:
    from dagster_project.portal.accounts import ROLES
    from dagster_project.portal.runner import MODES

    portal = sub.add_parser(
        "portal",
        help="portail web de collecte (directions, pilotage, audit) et API de dépôt",
    )
    portal.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port d'écoute (défaut {DEFAULT_PORT})"
    )
    portal.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"adresse d'écoute (défaut {DEFAULT_HOST} : cette machine seulement)",
    )
    _settings_options(portal)
    portal.add_argument(
        "--pipeline",
        choices=MODES,
        default="kpi-run",
        help="après un dépôt accepté : lancer « kpi run --select » (défaut, une exécution à la "
        "fois) ou laisser le capteur Dagster new_deliveries le faire",
    )
    portal.add_argument(
        "--https-proxy",
        action="store_true",
        help="derrière le proxy inverse HTTPS de l'organisation : cookies « Secure », adresse "
        "du client lue dans X-Forwarded-For (proxys de KPI_PORTAL_PROXY_IPS)",
    )
    portal.set_defaults(func=cmd_portal)
    psub = portal.add_subparsers(dest="subcommand", title="sous-commandes", metavar="SOUS-COMMANDE")

    account = psub.add_parser("account", help="comptes du portail (créer, réinitialiser, lister)")
    asub = account.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    create = asub.add_parser("create", help="créer un compte (mot de passe demandé ou généré)")
    create.add_argument("login", nargs="?", help="identifiant")
    create.add_argument("--role", choices=list(ROLES), help="direction, pilotage ou audit")
    create.add_argument("--department", nargs="+", help="direction(s) du compte (rôle department)")
    create.add_argument("--name", help="nom affiché")
    create.add_argument("--email", help="adresse électronique")
    create.add_argument(
        "--from-campaign",
        action="store_true",
        help="un compte par direction de sources/<année>/campagne.yml (--year), mots de passe générés",
    )
    create.add_argument("--year", type=int, help="année de la campagne (avec --from-campaign)")
    create.add_argument(
        "--password-stdin", action="store_true", help="lire le mot de passe sur l'entrée standard"
    )
    create.add_argument(
        "--generate", action="store_true", help="générer le mot de passe et l'afficher"
    )
    _settings_options(create)
    create.set_defaults(func=cmd_account_create)
    reset = asub.add_parser("reset", help="nouveau mot de passe (ferme les sessions du compte)")
    reset.add_argument("login", help="identifiant")
    reset.add_argument(
        "--password-stdin", action="store_true", help="lire le mot de passe sur l'entrée standard"
    )
    reset.add_argument(
        "--generate", action="store_true", help="générer le mot de passe et l'afficher"
    )
    _settings_options(reset)
    reset.set_defaults(func=cmd_account_reset)
    listing = asub.add_parser("list", help="lister les comptes")
    _settings_options(listing)
    listing.set_defaults(func=cmd_account_list)

    token = psub.add_parser("token", help="jetons de l'API de dépôt (créer, révoquer)")
    tsub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    tcreate = tsub.add_parser("create", help="créer un jeton pour un compte (affiché une fois)")
    tcreate.add_argument("login", help="identifiant du compte")
    tcreate.add_argument("--label", help="à quoi sert le jeton (logiciel, serveur)")
    _settings_options(tcreate)
    tcreate.set_defaults(func=cmd_token_create)
    revoke = tsub.add_parser("revoke", help="révoquer un jeton")
    revoke.add_argument("token_id", help="identifiant du jeton (ou le jeton entier)")
    _settings_options(revoke)
    revoke.set_defaults(func=cmd_token_revoke)

    journal = psub.add_parser("journal", help="journal du portail en CSV (qui a fait quoi, quand)")
    journal.add_argument("--out", type=Path, help="fichier CSV (défaut : sortie standard)")
    _settings_options(journal)
    journal.set_defaults(func=cmd_journal)
