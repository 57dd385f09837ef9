"""Human resources (department ``hr``): rh_effectifs, rh_formation,
rh_arretes. Fictitious agents only: matricules and birth dates are drawn at
random."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from functools import lru_cache

from ._common import (
    add_months,
    apportion,
    completed_months,
    month_fr,
    random_workday,
    rng_for,
    year_factor,
)
from ._xlsx import Book, Sheet
from .context import Ctx

DEPARTMENT = "hr"
DIRECTION = "Direction des Ressources Humaines"

# --- published 2025 figures (observation date 01/10/2025)
STATUS_2025 = {
    "TITULAIRE": 852,
    "STAGIAIRE": 31,
    "CONTRACTUEL_PERMANENT": 117,
    "APPRENTI": 14,
    "DROIT_PRIVE": 23,
}
PERMANENT_2025 = sum(STATUS_2025.values())  # 1037
MEAN_AGE_MONTHS_2025 = 560  # 46 years 8 months -> 46.67
TRAINING_DAYS_2025 = 1222
ORDERS_2025 = 1400
NON_PERMANENT = {2023: 66, 2024: 71, 2025: 69}

# direction, weight, share of women
DIRECTIONS = [
    ("Direction Générale des Services", 14, 0.55),
    ("Direction des Ressources Humaines", 30, 0.82),
    ("Direction des Finances", 28, 0.72),
    ("Direction de la Commande Publique et des Affaires Juridiques", 18, 0.7),
    ("Direction des Systèmes d'Information", 24, 0.25),
    ("Direction de la Communication", 14, 0.62),
    ("Direction du Petit Cycle de l'Eau", 88, 0.24),
    ("Direction Déchets et Économie Circulaire", 185, 0.14),
    ("Direction de l'Habitat", 24, 0.66),
    ("Direction de l'Aménagement et de l'Urbanisme", 36, 0.56),
    ("Direction du Patrimoine et des Bâtiments", 92, 0.16),
    ("Direction de la Mobilité", 20, 0.45),
    ("Direction du Développement Économique", 30, 0.57),
    ("Direction de l'Emploi et de l'Insertion", 26, 0.72),
    ("Direction de la Culture", 112, 0.62),
    ("Direction des Sports", 94, 0.42),
    ("Direction de la Petite Enfance", 72, 0.96),
    ("Direction de la Cohésion Sociale et de la Santé", 42, 0.82),
    ("Direction de l'Environnement et de la Biodiversité", 32, 0.42),
    ("Direction des Moyens Généraux", 36, 0.52),
]

AGE_PROFILE = {  # mean, sd, min, max (years)
    "TITULAIRE": (48.6, 9.0, 24, 66),
    "STAGIAIRE": (36.0, 9.0, 20, 60),
    "CONTRACTUEL_PERMANENT": (40.0, 10.0, 22, 65),
    "APPRENTI": (21.0, 2.0, 18, 25),
    "DROIT_PRIVE": (43.0, 11.0, 20, 64),
    "NON_PERMANENT": (31.0, 11.0, 18, 62),
}


@dataclass(frozen=True)
class Agent:
    matricule: str
    birth: dt.date
    sexe: str
    statut: str
    categorie: str | None
    direction: str
    quotite: float
    entry: dt.date
    leave: dt.date | None = None  # first day absent (None: still there in 2025)


def obs_date(year: int) -> dt.date:
    return dt.date(year, 10, 1)


def build(ctx: Ctx) -> list[Book]:
    return [rh_effectifs(ctx), rh_formation(ctx), rh_arretes(ctx)]


# --------------------------------------------------------------------------- population


def _birth_for(rng, statut: str, at: dt.date) -> dt.date:
    mean, sd, lo, hi = AGE_PROFILE[statut]
    if statut == "APPRENTI":
        years = rng.uniform(lo, hi)
    else:
        years = min(hi, max(lo, rng.gauss(mean, sd)))
    months = int(years * 12) + 1
    return add_months(dt.date(at.year, at.month, rng.randint(1, 28)), -months)


def _category(rng, statut: str) -> str | None:
    if statut in ("APPRENTI", "DROIT_PRIVE"):
        return None
    if statut == "CONTRACTUEL_PERMANENT":
        return rng.choices("ABC", weights=[30, 30, 40])[0]
    if statut == "STAGIAIRE":
        return rng.choices("ABC", weights=[8, 14, 78])[0]
    if statut == "NON_PERMANENT":
        return rng.choices("ABC", weights=[3, 17, 80])[0]
    return rng.choices("ABC", weights=[13, 22, 65])[0]


def _quotite(rng, statut: str) -> float:
    if statut == "APPRENTI":
        return 1
    if statut == "NON_PERMANENT":
        return rng.choices([1, 0.8, 0.5, 0.3], weights=[60, 10, 20, 10])[0]
    if statut == "DROIT_PRIVE":
        return rng.choices([1, 0.8, 0.57], weights=[60, 10, 30])[0]
    return rng.choices([1, 0.9, 0.8, 0.7, 0.6, 0.5], weights=[85, 3, 8, 1, 1, 2])[0]


def _direction(rng, statut: str) -> tuple[str, float]:
    if statut == "NON_PERMANENT":
        pool = [
            d
            for d in DIRECTIONS
            if d[0].split()[-1] in ("Sports", "Culture", "Circulaire", "Enfance", "Bâtiments")
        ]
        d = rng.choice(pool)
    else:
        d = rng.choices(DIRECTIONS, weights=[w for _, w, _ in DIRECTIONS])[0]
    return d[0], d[2]


def _entry(rng, statut: str, birth: dt.date, at: dt.date) -> dt.date:
    earliest = max(
        add_months(dt.date(birth.year, birth.month, min(birth.day, 28)), 12 * 18),
        dt.date(1982, 1, 1),
    )
    if statut == "TITULAIRE":
        years = min(40.0, rng.expovariate(1 / 13.0) + 1.05)
    elif statut == "STAGIAIRE":
        years = rng.uniform(0.05, 0.95)
    elif statut == "CONTRACTUEL_PERMANENT":
        years = rng.uniform(0.1, 9)
    elif statut == "APPRENTI":
        return dt.date(at.year - rng.choice([0, 1]), 9, rng.choice([1, 2, 8]))
    elif statut == "DROIT_PRIVE":
        years = rng.uniform(0.3, 15)
    else:
        years = rng.uniform(0.02, 0.7)
    d = at - dt.timedelta(days=round(years * 365.25))
    if d < earliest:
        d = earliest if earliest < at else at
    return d


@lru_cache(maxsize=2)
def population(seed: str = "rh") -> tuple[Agent, ...]:
    """Permanent staff of 2025 plus the agents who left between the 2023
    and 2025 observation dates (so earlier campaigns are consistent)."""
    rng = rng_for(seed, "population")
    at = obs_date(2025)
    numbers = rng.sample(range(1001, 99_999), 2400)
    nums = iter(numbers)
    statuses = [s for s, n in STATUS_2025.items() for _ in range(n)]
    births = [_birth_for(rng, s, at) for s in statuses]

    # exact mean age over permanent staff: 560 completed months
    target = MEAN_AGE_MONTHS_2025 * PERMANENT_2025
    months = [completed_months(b, at) for b in births]
    diff = target - sum(months)
    while diff:
        i = rng.randrange(len(births))
        if statuses[i] == "APPRENTI":
            continue
        step = 1 if diff > 0 else -1
        lo, hi = AGE_PROFILE[statuses[i]][2] * 12, AGE_PROFILE[statuses[i]][3] * 12
        if not lo <= months[i] + step <= hi:
            continue
        births[i] = add_months(births[i], -step)
        months[i] += step
        diff -= step

    agents = []
    for s, b in zip(statuses, births, strict=True):
        direction, women = _direction(rng, s)
        agents.append(
            Agent(
                matricule=f"M{next(nums):06d}",
                birth=b,
                sexe="F" if rng.random() < women else "M",
                statut=s,
                categorie=_category(rng, s),
                direction=direction,
                quotite=_quotite(rng, s),
                entry=_entry(rng, s, b, at),
            )
        )
    # agents who left (retirement, transfer, end of contract) before 01/10/2025
    for _ in range(58):
        s = rng.choices(["TITULAIRE", "CONTRACTUEL_PERMANENT", "DROIT_PRIVE"], weights=[80, 15, 5])[
            0
        ]
        leave = dt.date(2023, 10, 2) + dt.timedelta(days=rng.randint(0, 728))
        if s == "TITULAIRE" and rng.random() < 0.7:
            b = add_months(
                dt.date(leave.year, leave.month, rng.randint(1, 28)), -rng.randint(62 * 12, 66 * 12)
            )
        else:
            b = _birth_for(rng, s, leave)
        direction, women = _direction(rng, s)
        agents.append(
            Agent(
                matricule=f"M{next(nums):06d}",
                birth=b,
                sexe="F" if rng.random() < women else "M",
                statut=s,
                categorie=_category(rng, s),
                direction=direction,
                quotite=_quotite(rng, s),
                entry=_entry(rng, s, b, obs_date(2023)),
                leave=leave,
            )
        )
    # apprentices of earlier intakes (two-year contracts ending in August)
    for intake, n in ((2022, 6), (2023, 7)):
        for _ in range(n):
            entry = dt.date(intake, 9, rng.choice([1, 2, 8]))
            b = _birth_for(rng, "APPRENTI", entry)
            direction, women = _direction(rng, "APPRENTI")
            agents.append(
                Agent(
                    matricule=f"M{next(nums):06d}",
                    birth=b,
                    sexe="F" if rng.random() < women else "M",
                    statut="APPRENTI",
                    categorie=None,
                    direction=direction,
                    quotite=1,
                    entry=entry,
                    leave=dt.date(intake + 2, 9, 1),
                )
            )
    # non-permanent staff of each campaign (seasonal workers, replacements)
    for year, n in NON_PERMANENT.items():
        r = rng_for(seed, "non_permanent", year)
        for _ in range(n):
            b = _birth_for(r, "NON_PERMANENT", obs_date(year))
            direction, women = _direction(r, "NON_PERMANENT")
            agents.append(
                Agent(
                    matricule=f"M{next(nums):06d}",
                    birth=b,
                    sexe="F" if r.random() < women else "M",
                    statut="NON_PERMANENT",
                    categorie=_category(r, "NON_PERMANENT"),
                    direction=direction,
                    quotite=_quotite(r, "NON_PERMANENT"),
                    entry=_entry(r, "NON_PERMANENT", b, obs_date(year)),
                    leave=obs_date(year) + dt.timedelta(days=r.randint(1, 200)),
                )
            )
    return tuple(agents)


def staff(year: int) -> list[Agent]:
    """Agents present at the observation date of ``year``, with the status
    they had then (a titulaire appointed less than a year before was still
    stagiaire)."""
    at = obs_date(year)
    out = []
    for a in population():
        if a.entry > at or (a.leave is not None and a.leave <= at):
            continue
        if a.statut == "TITULAIRE" and (at - a.entry).days < 365:
            a = replace(a, statut="STAGIAIRE")
        out.append(a)
    out.sort(key=lambda a: a.matricule)
    return out


# --------------------------------------------------------------------------- rh_effectifs


def rh_effectifs(ctx: Ctx) -> Book:
    at = obs_date(ctx.year)
    rows = [
        [a.matricule, at, a.birth, a.sexe, a.statut, a.categorie, a.direction, a.quotite, a.entry]
        for a in sorted(staff(ctx.year), key=lambda a: (a.direction, a.matricule))
    ]
    sheet = Sheet(
        name="Effectifs",
        columns=[
            "matricule",
            "date_observation",
            "date_naissance",
            "sexe",
            "statut",
            "categorie",
            "direction",
            "quotite",
            "date_entree",
        ],
        headers={
            "matricule": "Matricule",
            "date_observation": "Date observation",
            "date_naissance": "Date naissance",
            "sexe": "Sexe",
            "statut": "Statut",
            "categorie": "Catégorie",
            "direction": "Direction",
            "quotite": "Quotité",
            "date_entree": "Date entrée",
        },
        titles=[f"Extraction du logiciel de paie – agents présents au {at:%d/%m/%Y}"],
        rows=rows,
        widths={"direction": 48},
    )
    notice = [
        f"Notice – effectifs au {at:%d/%m/%Y}",
        "Données personnelles : fichier à déposer uniquement dans le dossier sécurisé de la campagne.",
        "Une ligne par agent présent à la date d'observation (agents sur emploi permanent et non permanent).",
        "Catégorie : A, B ou C ; vide pour les apprentis et les contrats de droit privé.",
        "Quotité : part du temps complet (1 = temps complet, 0,8 = 80 %).",
    ]
    return Book(ctx.path(DEPARTMENT, "rh_effectifs"), [sheet], notice=notice, title="Effectifs")


# --------------------------------------------------------------------------- rh_formation

TRAININGS = [
    # intitule, organisme, days, direction keyword (None: any)
    ("Formation d'intégration catégorie C", "CNFPT", 5, None),
    ("Formation d'intégration catégorie B", "CNFPT", 5, None),
    ("Formation d'intégration catégorie A", "CNFPT", 5, None),
    ("Habilitation électrique B1V-BR", "APAVE", 2, "Bâtiments"),
    ("CACES R482 engins de chantier", "AFTRAL", 3, "Circulaire"),
    ("Formation continue obligatoire (FCO) poids lourds", "AFTRAL", 5, "Circulaire"),
    ("Sauveteur secouriste du travail – formation initiale", "Interne", 2, None),
    ("Sauveteur secouriste du travail – maintien des compétences", "Interne", 1, None),
    ("Prévention des risques liés à l'activité physique", "CNFPT", 2, None),
    ("Gestes et postures", "Interne", 0.5, None),
    ("Manipulation des extincteurs", "Interne", 0.5, None),
    ("Habilitation AIPR opérateur", "Interne", 1, "Eau"),
    ("Exploitation des stations d'épuration", "OIEau", 4, "Eau"),
    ("Marchés publics : les fondamentaux", "CNFPT", 3, None),
    ("Conduite de réunion", "CNFPT", 2, None),
    ("Management d'équipe : prise de poste", "CNFPT", 3, None),
    ("Accueil du public et gestion des situations conflictuelles", "CNFPT", 2, None),
    ("Laïcité et valeurs de la République", "CNFPT", 1, None),
    ("Tableur : perfectionnement", "Interne", 1, None),
    ("Intelligence artificielle : usages et enjeux", "CNFPT", 1, None),
    ("Préparation au concours de rédacteur", "CNFPT", 4, None),
    ("BNSSA – révision annuelle", "CDG 62", 1, "Sports"),
    ("Éveil culturel du jeune enfant", "CNFPT", 3, "Enfance"),
    ("Hygiène alimentaire (HACCP)", "CNFPT", 2, "Enfance"),
    ("Télétravail : bonnes pratiques", "Interne", 0.5, None),
]


def rh_formation(ctx: Ctx) -> Book:
    y = ctx.year
    rng = rng_for("rh_formation", y)
    present = staff(y)
    target = round(TRAINING_DAYS_2025 * 2 * year_factor("training_days", y, 0.07))  # half-days
    rows = []
    seen = set()
    half_days = 0
    while half_days < target:
        title, org, days, kw = rng.choice(TRAININGS)
        d = random_workday(rng, y, [1, 2, 3, 4, 5, 6, 9, 10, 11, 12])
        if (title, d) in seen:
            continue
        seen.add((title, d))
        pool = [a for a in present if (kw is None or kw in a.direction) and a.entry <= d]
        if not pool:
            continue
        size = min(len(pool), rng.randint(3, 12))
        for a in rng.sample(pool, size):
            nb = days
            if nb > 1 and rng.random() < 0.1:  # absent part of the session
                nb -= 0.5
            rows.append([a.matricule, d, nb, title, org])
            half_days += int(nb * 2)
    # trim the last rows to the exact total
    while half_days > target:
        excess = half_days - target
        last = rows[-1]
        if last[2] * 2 > excess:
            last[2] -= excess / 2
            half_days = target
        else:
            half_days -= int(last[2] * 2)
            rows.pop()
    rows.sort(key=lambda r: (r[1], r[3], r[0]))
    out = []
    for i, (m, d, nb, title, org) in enumerate(rows):
        nb = int(nb) if float(nb).is_integer() else nb
        out.append(
            [
                m,
                d.strftime("%d/%m/%Y"),
                nb,
                title,
                None if (org == "Interne" and i % 3 == 0) else org,
            ]
        )
    sheet = Sheet(
        name="Formations",
        columns=["matricule", "date_debut", "nb_jours", "intitule", "organisme"],
        headers={
            "matricule": "Matricule",
            "date_debut": "Date début",
            "nb_jours": "Nb jours",
            "intitule": "Intitulé",
            "organisme": "Organisme",
        },
        rows=out,
        widths={"intitule": 60},
    )
    return Book(ctx.path(DEPARTMENT, "rh_formation"), [sheet], title="Formations suivies")


# --------------------------------------------------------------------------- rh_arretes

ORDER_TYPES = {
    # type: (weight, monthly profile)
    "avancement_echelon": (30, [1.0] * 12),
    "avancement_grade": (8, [0.6, 0.6, 0.6, 0.6, 0.8, 1.0, 3.0, 0.6, 0.6, 0.8, 0.8, 2.0]),
    "promotion_interne": (2, [0.2, 0.2, 0.2, 0.2, 0.2, 0.5, 4.0, 0.2, 0.2, 0.2, 0.2, 3.0]),
    "nomination": (6, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 0.6, 1.5, 1.2, 1.0, 1.0]),
    "titularisation": (3, [1.0] * 12),
    "temps_partiel": (8, [3.0, 0.5, 0.5, 0.5, 0.5, 0.8, 1.0, 0.8, 3.0, 0.6, 0.5, 0.5]),
    "disponibilite": (3, [1.0] * 12),
    "detachement": (2, [1.0] * 12),
    "conge_parental": (1, [1.0] * 12),
    "mutation": (2, [1.0] * 12),
    "regime_indemnitaire": (20, [6.0, 0.6, 0.6, 0.6, 0.6, 0.6, 0.8, 0.3, 0.6, 0.6, 0.6, 0.7]),
    "nbi": (4, [2.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.9]),
    "retraite": (3, [1.0] * 12),
    "reintegration": (3, [1.0] * 12),
    "fin_de_fonctions": (2, [1.0] * 12),
}


def rh_arretes(ctx: Ctx) -> Book:
    y = ctx.year
    rng = rng_for("rh_arretes", y)
    total = round(ORDERS_2025 * year_factor("hr_orders", y, 0.06))
    cells = [(m, t) for m in range(12) for t in ORDER_TYPES]
    parts = apportion(
        total, [ORDER_TYPES[t][0] * ORDER_TYPES[t][1][m] * rng.uniform(0.6, 1.4) for m, t in cells]
    )
    rows = [
        [month_fr(y, m + 1, capital=True), t, n]
        for (m, t), n in zip(cells, parts, strict=True)
        if n > 0
    ]
    sheet = Sheet(
        name="Arrêtés",
        columns=["mois", "type_arrete", "nombre"],
        headers={"mois": "Mois", "type_arrete": "Type arrêté", "nombre": "Nombre"},
        titles=[f"Arrêtés individuels pris en {y}", ""],
        rows=rows,
    )
    return Book(ctx.path(DEPARTMENT, "rh_arretes"), [sheet], title="Arrêtés individuels")
