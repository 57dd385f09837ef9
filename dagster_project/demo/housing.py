"""Housing (department ``housing``): logements_sociaux, amelioration_habitat,
permis_de_louer."""

from __future__ import annotations

import datetime as dt

from ._common import (
    NNBSP,
    Commune,
    apportion,
    fr_number,
    pick_variant,
    random_workday,
    rng_for,
    year_factor,
)
from ._xlsx import Book, Sheet
from .context import Ctx

DEPARTMENT = "housing"
DIRECTION = "Direction de l'Habitat"

BAILLEURS = [
    "Maisons & Cités",
    "Pas-de-Calais Habitat",
    "SIA Habitat",
    "Flandre Opale Habitat",
    "Habitat Hauts-de-France",
    "Clésence",
    "Vilogia",
]

# --- published 2025 figures
SOCIAL_NEW_2025 = 490
SOCIAL_AA_2025 = 1
SOCIAL_STATE_CREDITS_2025 = 937_000
OPAH = {
    "dwellings": 90,
    "agglo": 216_000,
    "anah": 1_700_000,
    "works": 4_600_000,
}  # 2022-2025 cumulative
OPAH_DWELLINGS_BY_YEAR = {2022: 17, 2023: 21, 2024: 24, 2025: 28}
OPAH_COMMUNES = ["62119", "62178"]  # Béthune and Bruay-la-Buissière town centres
MPR_2025 = {"count": 400, "anah": 13_000_000, "agglo": 850_000}
MPR_COUNT = {2020: 85, 2021: 160, 2022: 230, 2023: 300, 2024: 355, 2025: 400}
MPA_2025 = {"dwellings": 160, "anah": 1_000_000, "agglo": 80_000}
MPA_COUNT = {2024: 142, 2025: 160}
REGISTER_FIRST_YEAR = 2015
REGISTER_LAST_YEAR = 2025

# Rental permit: commune, year joined (27 communes in 2025, five of them new)
PERMIS_COMMUNES = [
    ("62178", 2017),
    ("62048", 2017),
    ("62083", 2018),
    ("62555", 2018),
    ("62194", 2019),
    ("62270", 2019),
    ("62457", 2019),
    ("62400", 2020),
    ("62516", 2020),
    ("62617", 2020),
    ("62119", 2021),
    ("62473", 2021),
    ("62443", 2021),
    ("62217", 2021),
    ("62188", 2022),
    ("62532", 2022),
    ("62197", 2022),
    ("62328", 2023),
    ("62023", 2023),
    ("62489", 2023),
    ("62480", 2024),
    ("62035", 2024),
    ("62846", 2025),
    ("62276", 2025),
    ("62051", 2025),
    ("62401", 2025),
    ("62132", 2025),
]
PERMIS_2025 = {"requests": 760, "granted": 412, "dwellings": 15_880}


def build(ctx: Ctx) -> list[Book]:
    return [logements_sociaux(ctx), amelioration_habitat(ctx), permis_de_louer(ctx)]


# --------------------------------------------------------------------------- logements_sociaux


def logements_sociaux(ctx: Ctx) -> Book:
    y = ctx.year
    rng = rng_for("logements_sociaux", y)
    communes = [c for c in ctx.communes if c.pop >= 1200]
    new_total = round(SOCIAL_NEW_2025 * year_factor("social_new", y, 0.12))
    aa_total = SOCIAL_AA_2025 if y == 2025 else rng.randint(2, 4)
    credits_total = round(SOCIAL_STATE_CREDITS_2025 * year_factor("social_credits", y, 0.1))
    n_new = max(1, round(new_total / rng.uniform(24, 30)))
    sizes = [
        4 + s
        for s in apportion(new_total - 4 * n_new, [rng.uniform(0.2, 2.0) for _ in range(n_new)])
    ]
    ops = []  # (type, commune, plai, plus, pls)
    for size in sizes:
        c = rng.choices(communes, weights=[x.pop for x in communes])[0]
        plai = round(size * rng.uniform(0.28, 0.36))
        pls = round(size * rng.uniform(0.0, 0.18)) if size >= 10 else 0
        ops.append(("NEUF", c, plai, size - plai - pls, pls))
    aa_sizes = [aa_total] if aa_total <= 2 else apportion(aa_total, [1, 1])
    for size in aa_sizes:
        c = rng.choices(communes, weights=[x.pop for x in communes])[0]
        ops.append(("ACQUIS_AMELIORE", c, size, 0, 0))
    credits = apportion(
        credits_total, [plai * 1.0 + plus * 0.12 + 0.01 for _, _, plai, plus, _ in ops]
    )
    rows = []
    for i, ((typ, c, plai, plus, pls), cred) in enumerate(zip(ops, credits, strict=True), start=1):
        size = plai + plus + pls
        agglo = round(size * rng.choice([0, 1000, 1500, 1500, 2000]))
        agglo_cell = fr_number(agglo, 0, sep=NNBSP, unit="€") if i % 3 == 0 else agglo
        d = random_workday(rng, y, range(2, 12))
        label = f"{'Construction' if typ == 'NEUF' else 'Acquisition-amélioration'} de {size} logement{'s' if size > 1 else ''} – {c.name}"
        rows.append(
            [
                f"DAP-{y}-{i:03d}",
                pick_variant(rng, c.name),
                rng.choice(BAILLEURS),
                typ,
                plai,
                plus,
                pls,
                cred,
                agglo_cell,
                d.isoformat(),
                label,
            ]
        )
    sheet = Sheet(
        name=f"Programmation {y}",
        columns=[
            "id_operation",
            "commune",
            "bailleur",
            "type_operation",
            "nb_plai",
            "nb_plus",
            "nb_pls",
            "credits_etat_eur",
            "aide_agglo_eur",
            "date_programmation",
            "libelle_operation",
        ],
        headers={
            "id_operation": "ID opération",
            "commune": "Commune",
            "bailleur": "Bailleur",
            "type_operation": "Type opération",
            "nb_plai": "Nb PLAI",
            "nb_plus": "Nb PLUS",
            "nb_pls": "Nb PLS",
            "credits_etat_eur": "Crédits État EUR",
            "aide_agglo_eur": "Aide agglo EUR",
            "date_programmation": "Date programmation",
            "libelle_operation": "Libellé de l'opération",
        },
        titles=[
            f"Délégation des aides à la pierre – programmation {y}",
            "Logements locatifs sociaux financés",
        ],
        rows=rows,
    )
    return Book(
        ctx.path(DEPARTMENT, "logements_sociaux"), [sheet], title="Programmation du logement social"
    )


# --------------------------------------------------------------------------- amelioration_habitat


def habitat_register(communes: list[Commune]) -> list[list]:
    """The whole register of private-housing grant files, 2015-2025. Each
    campaign file holds the files engaged up to the end of its year."""
    rng = rng_for("amelioration_habitat_register")
    pops = [c.pop for c in communes]
    dossiers = []  # dict rows

    def pick_commune():
        return rng.choices(communes, weights=pops)[0].code

    # OPAH-RU of 2022-2027 (two town centres), and the previous OPAH of 2016-2020
    opah = []
    for year, dwell in OPAH_DWELLINGS_BY_YEAR.items():
        sizes = []
        left = dwell
        while left > 0:
            s = min(left, rng.choice([1, 1, 1, 1, 2, 2, 3, 4]))
            sizes.append(s)
            left -= s
        for s in sizes:
            opah.append(
                {
                    "disp": "OPAH_RU",
                    "code": rng.choice(OPAH_COMMUNES),
                    "n": s,
                    "date": random_workday(rng, year),
                }
            )
    for key, scale in (("agglo", 1), ("anah", 1), ("works", 100)):
        weights = [d["n"] * rng.uniform(0.6, 1.4) for d in opah]
        parts = apportion(OPAH[key] * scale, weights)
        for d, p in zip(opah, parts, strict=True):
            d[key] = p if scale == 1 else p / 100
    for d in opah:  # works always exceed the grants
        d["works"] = max(d["works"], round((d["agglo"] + d["anah"]) * 1.25, 2))
    _rebalance_works(opah, OPAH["works"] * 100)
    dossiers += opah
    for year in range(2016, 2021):
        for _ in range(rng.randint(8, 14)):
            n = rng.choice([1, 1, 2, 3])
            anah = round(n * rng.uniform(9000, 17000))
            dossiers.append(
                {
                    "disp": "OPAH_RU",
                    "code": rng.choice(["62048", "62516", "62555"]),
                    "n": n,
                    "date": random_workday(rng, year),
                    "agglo": round(n * rng.uniform(1500, 3000)),
                    "anah": anah,
                    "works": round(anah * rng.uniform(2.2, 3.0), 2),
                }
            )

    # MaPrimeRénov' accompagné (since 2020)
    for year, count in MPR_COUNT.items():
        anah_total = (
            MPR_2025["anah"] if year == 2025 else round(count * 32_500 * rng.uniform(0.85, 1.0))
        )
        agglo_total = (
            MPR_2025["agglo"] if year == 2025 else round(count * 2_125 * rng.uniform(0.85, 1.05))
        )
        batch = [
            {
                "disp": "MA_PRIME_RENOV_ACCOMPAGNE",
                "code": pick_commune(),
                "n": 1,
                "date": random_workday(rng, year),
            }
            for _ in range(count)
        ]
        anah = apportion(anah_total, [rng.uniform(0.45, 1.55) for _ in batch])
        has_agglo = [rng.random() < 0.85 for _ in batch]
        agglo = apportion(agglo_total, [rng.uniform(0.6, 1.4) if h else 0 for h in has_agglo])
        for d, a, g in zip(batch, anah, agglo, strict=True):
            d["anah"], d["agglo"] = a, g
            d["works"] = round((a + g) * rng.uniform(1.35, 1.9), 2)
        dossiers += batch

    # MaPrimeAdapt' (since 2024)
    for year, count in MPA_COUNT.items():
        anah_total = (
            MPA_2025["anah"] if year == 2025 else round(count * 6_250 * rng.uniform(0.9, 1.0))
        )
        agglo_total = MPA_2025["agglo"] if year == 2025 else count * 500
        works_total = round(count * 12_500 * rng.uniform(0.975, 0.995)) * 100  # "près de 2 M€"
        batch = [
            {
                "disp": "MA_PRIME_ADAPT",
                "code": pick_commune(),
                "n": 1,
                "date": random_workday(rng, year),
            }
            for _ in range(count)
        ]
        anah = apportion(anah_total, [rng.uniform(0.5, 1.5) for _ in batch])
        agglo = apportion(agglo_total, [1 for _ in batch])
        works = apportion(works_total, [a * rng.uniform(0.9, 1.1) for a in anah])
        for d, a, g, w in zip(batch, anah, agglo, works, strict=True):
            d["anah"], d["agglo"], d["works"] = a, g, w / 100
        dossiers += batch

    # other grants (Habiter Mieux, façades, ...)
    for year in range(REGISTER_FIRST_YEAR, REGISTER_LAST_YEAR + 1):
        for _ in range(rng.randint(25, 45)):
            anah = round(rng.uniform(0, 12000)) if rng.random() < 0.6 else 0
            agglo = round(rng.uniform(500, 4000))
            dossiers.append(
                {
                    "disp": "AUTRE",
                    "code": pick_commune(),
                    "n": 1,
                    "date": random_workday(rng, year),
                    "agglo": agglo,
                    "anah": anah,
                    "works": round((anah + agglo) * rng.uniform(1.5, 3.0), 2),
                }
            )

    dossiers.sort(key=lambda d: (d["date"], d["disp"], d["code"]))
    prefix = {
        "OPAH_RU": "OPAH",
        "MA_PRIME_ADAPT": "MPA",
        "MA_PRIME_RENOV_ACCOMPAGNE": "MPR",
        "AUTRE": "DIV",
    }
    seq: dict[tuple[str, int], int] = {}
    out = []
    for d in dossiers:
        key = (prefix[d["disp"]], d["date"].year)
        seq[key] = seq.get(key, 0) + 1
        works = d["works"]
        works = int(works) if float(works).is_integer() else works
        out.append(
            [
                f"{key[0]}-{key[1]}-{seq[key]:04d}",
                d["code"],
                d["disp"],
                d["n"],
                d["agglo"],
                d["anah"],
                works,
                d["date"],
            ]
        )
    return out


def _rebalance_works(batch: list[dict], total_cents: int) -> None:
    """Bring the works of ``batch`` back to exactly ``total_cents`` after the
    per-file floor, keeping every file above its floor."""
    floors = [round((d["agglo"] + d["anah"]) * 125) for d in batch]
    cur = [round(d["works"] * 100) for d in batch]
    excess = sum(cur) - total_cents
    if excess < 0:
        raise ValueError("works below the published total")
    room = [c - f for c, f in zip(cur, floors, strict=True)]
    cut = apportion(excess, [max(r, 0) for r in room])
    for d, c, k in zip(batch, cur, cut, strict=True):
        d["works"] = (c - k) / 100


def amelioration_habitat(ctx: Ctx) -> Book:
    end = dt.date(ctx.year, 12, 31)
    rows = [r for r in habitat_register(ctx.communes) if r[7] <= end]
    sheet = Sheet(
        name="Dossiers",
        columns=[
            "id_dossier",
            "code_insee",
            "dispositif",
            "nb_logements",
            "aide_agglo_eur",
            "aide_anah_eur",
            "montant_travaux_eur",
            "date_engagement",
        ],
        headers={
            "id_dossier": "ID dossier",
            "code_insee": "Code INSEE",
            "dispositif": "Dispositif",
            "nb_logements": "Nb logements",
            "aide_agglo_eur": "Aide agglo EUR",
            "aide_anah_eur": "Aide ANAH EUR",
            "montant_travaux_eur": "Montant travaux EUR",
            "date_engagement": "Date engagement",
        },
        rows=rows,
    )
    notice = [
        f"Notice – registre des dossiers d'amélioration de l'habitat privé (situation au 31/12/{ctx.year})",
        "Le registre reprend tous les dossiers engagés depuis 2015 : chaque livraison remplace la précédente en totalité.",
        "Dispositifs : OPAH_RU, MA_PRIME_ADAPT, MA_PRIME_RENOV_ACCOMPAGNE, AUTRE.",
        "Montants en euros ; la date d'engagement est celle de la décision d'attribution.",
    ]
    return Book(
        ctx.path(DEPARTMENT, "amelioration_habitat"),
        [sheet],
        notice=notice,
        title="Amélioration de l'habitat privé",
    )


# --------------------------------------------------------------------------- permis_de_louer


def permis_de_louer(ctx: Ctx) -> Book:
    y = ctx.year
    rng = rng_for("permis_de_louer", y)
    members = [(ctx.commune(code), joined) for code, joined in PERMIS_COMMUNES if joined <= y]
    adhesion = {}
    for code, joined in PERMIS_COMMUNES:
        r = rng_for("permis_adhesion", code)
        adhesion[code] = dt.date(joined, r.choice([1, 1, 4, 7, 9]), 1)
    scope_w = [c.pop * rng_for("permis_scope", c.code).uniform(0.12, 0.2) for c, _ in members]
    total_scope = round(PERMIS_2025["dwellings"] * sum(scope_w) / sum(_scope_w_all(ctx)))
    scope = apportion(total_scope, scope_w)

    def active_share(code: str) -> float:
        d = adhesion[code]
        if d.year < y:
            return 1.0
        return (12 - d.month + 1) / 12

    req_total = round(PERMIS_2025["requests"] * year_factor("permis_requests", y, 0.08))
    if y < 2025:
        req_total = round(req_total * len(members) / len(PERMIS_COMMUNES))
    requests = apportion(
        req_total,
        [
            s * active_share(c.code) * rng.uniform(0.7, 1.3)
            for s, (c, _) in zip(scope, members, strict=True)
        ],
    )
    granted_total = round(
        req_total
        * (PERMIS_2025["granted"] / PERMIS_2025["requests"])
        * year_factor("permis_granted", y, 0.04)
    )
    granted = apportion(granted_total, requests)
    rows = []
    for (c, _), s, rq, g in zip(members, scope, requests, granted, strict=True):
        rows.append([pick_variant(rng, c.name), adhesion[c.code], s, rq, g])
    rows.sort(key=lambda r: r[1])
    sheet = Sheet(
        name="Permis de louer",
        columns=["commune", "date_adhesion", "logements_concernes", "demandes", "autorisations"],
        headers={
            "commune": "Commune",
            "date_adhesion": "Date adhésion",
            "logements_concernes": "Logements concernés",
            "demandes": "Demandes",
            "autorisations": "Autorisations",
        },
        titles=[f"Autorisation préalable de mise en location – bilan {y}"],
        rows=rows,
    )
    return Book(ctx.path(DEPARTMENT, "permis_de_louer"), [sheet], title="Permis de louer")


def _scope_w_all(ctx: Ctx) -> list[float]:
    return [
        ctx.commune(code).pop * rng_for("permis_scope", code).uniform(0.12, 0.2)
        for code, _ in PERMIS_COMMUNES
    ]
