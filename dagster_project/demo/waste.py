"""Waste (department ``waste``): dechets_collecte, dechetteries_apports,
dechets_prevention."""

from __future__ import annotations

from ._common import (
    NBSP,
    NNBSP,
    apportion,
    fr_number,
    pick_variant,
    random_workday,
    rng_for,
    year_factor,
)
from ._xlsx import Book, Sheet
from .context import Ctx

DEPARTMENT = "waste"
DIRECTION = "Direction Déchets et Économie Circulaire"

# kg per inhabitant and year collected at the kerb / drop-off points (2025)
FLUX_RATIOS = {
    "OMR": 262.0,
    "EMB_PAP": 52.0,
    "VERRE": 31.0,
    "BIODECHETS": 95.0,
    "ENCOMBRANTS": 14.0,
}
FLUX_TREND = {
    "OMR": -0.015,
    "EMB_PAP": 0.01,
    "VERRE": 0.0,
    "BIODECHETS": 0.02,
    "ENCOMBRANTS": -0.02,
}
FLUX_SEASON = {
    "OMR": [0.97, 0.92, 1.0, 1.0, 1.02, 1.0, 1.01, 0.97, 1.0, 1.02, 0.99, 1.06],
    "EMB_PAP": [1.05, 0.92, 0.98, 0.98, 1.0, 0.98, 0.97, 0.94, 1.0, 1.02, 1.0, 1.16],
    "VERRE": [1.1, 0.85, 0.9, 0.95, 1.02, 1.08, 1.12, 1.0, 0.95, 0.93, 0.92, 1.18],
    "BIODECHETS": [0.45, 0.5, 0.9, 1.3, 1.5, 1.4, 1.25, 1.1, 1.15, 1.2, 0.8, 0.45],
    "ENCOMBRANTS": [0.9, 0.85, 1.05, 1.1, 1.1, 1.05, 1.0, 0.9, 1.0, 1.05, 1.0, 1.0],
}

SITES = [
    ("Béthune", 1.6),
    ("Bruay-la-Buissière", 1.5),
    ("Lillers", 1.0),
    ("Nœux-les-Mines", 1.0),
    ("Auchel", 0.9),
    ("Isbergues", 0.8),
    ("Barlin", 0.7),
    ("Houdain", 0.7),
    ("Beuvry", 0.8),
    ("Douvrin", 0.8),
    ("Hersin-Coupigny", 0.5),
    ("Saint-Venant", 0.6),
    ("Calonne-Ricouart", 0.5),
    ("Vermelles", 0.6),
]
GREEN_SEASON = [0.35, 0.45, 0.9, 1.45, 1.6, 1.5, 1.3, 1.1, 1.2, 1.3, 0.85, 0.4]
FRACTIONS = {
    # fraction: (share of tonnage, filiere, seasonal)
    "DECHETS_VERTS": (0.30, "VALORISATION_ORGANIQUE", True),
    "GRAVATS": (0.24, "VALORISATION_MATIERE", False),
    "TOUT_VENANT": (0.18, "ENFOUISSEMENT", False),
    "BOIS": (0.10, "VALORISATION_MATIERE", False),
    "MOBILIER": (0.05, "VALORISATION_MATIERE", False),
    "FERRAILLE": (0.03, "VALORISATION_MATIERE", False),
    "CARTON": (0.025, "VALORISATION_MATIERE", False),
    "DEEE": (0.025, "VALORISATION_MATIERE", False),
    "PLATRE": (0.02, "VALORISATION_MATIERE", False),
    "AUTRE": (0.012, "REEMPLOI", False),
    "DDS": (0.006, "VALORISATION_ENERGETIQUE", False),
}
BIG_SITES_ONLY = {"PLATRE", "DDS", "AUTRE"}
BOIS_ENERGY_SITES = {"Saint-Venant", "Isbergues", "Hersin-Coupigny"}
GRAVATS_LANDFILL_SITES = {"Houdain", "Calonne-Ricouart", "Vermelles", "Barlin"}

RECYCLING_CENTRE_MIN_T = 40_000  # "plus de 40 000 tonnes"

PREVENTION_2025 = {
    "bin_check_communes": 32,
    "bins_checked": 14344,
    "households": 631,
    "composters": 600,
    "workshops": 20,
    "workshop_participants": 150,
    "pupils": 2371,
    "stands": 50,
    "stand_visitors": 3000,
}


def build(ctx: Ctx) -> list[Book]:
    return [dechets_collecte(ctx), dechetteries_apports(ctx), dechets_prevention(ctx)]


# --------------------------------------------------------------------------- dechets_collecte


def dechets_collecte(ctx: Ctx) -> Book:
    y = ctx.year
    rng = rng_for("dechets_collecte", y)
    communes = ctx.communes
    pop = ctx.population
    rows_by_key = {}
    for flux, ratio in FLUX_RATIOS.items():
        trend = (1 - FLUX_TREND[flux]) ** (2025 - y)
        total = round(ratio * pop / 1000 * 100 * trend * year_factor(f"collecte-{flux}", y, 0.015))
        weights = []
        for c in communes:
            base = rng_for("collecte_commune", flux, c.code)
            urban = 1.08 if c.pop >= 5000 else (0.9 if c.pop < 1500 else 1.0)
            if flux == "BIODECHETS":
                urban = 0.8 if c.pop >= 5000 else (1.25 if c.pop < 1500 else 1.0)
            cw = c.pop * urban * base.uniform(0.85, 1.15)
            noise = 0.5 if flux == "ENCOMBRANTS" else 0.06
            for m in range(12):
                weights.append(cw * FLUX_SEASON[flux][m] * rng.uniform(1 - noise, 1 + noise))
        parts = apportion(total, weights)
        k = 0
        for c in communes:
            for m in range(12):
                rows_by_key[(c.code, m, flux)] = parts[k]
                k += 1
    rows = []
    for c in communes:
        for m in range(12):
            for flux in FLUX_RATIOS:
                v = rows_by_key[(c.code, m, flux)]
                rows.append([c.code, f"{y}-{m + 1:02d}", flux, round(v / 100, 2)])
    sheet = Sheet(
        name="Tonnages",
        columns=["code_insee", "mois", "flux", "tonnage_t"],
        headers={
            "code_insee": "code_insee",
            "mois": "mois",
            "flux": "flux",
            "tonnage_t": "tonnage_t",
        },
        rows=rows,
    )
    return Book(ctx.path(DEPARTMENT, "dechets_collecte"), [sheet], title="Collecte des déchets")


# --------------------------------------------------------------------------- dechetteries_apports


def recycling_centre_total(year: int) -> int:
    """Tonnage received at the recycling centres, in hundredths of tonnes."""
    t2025 = round(
        RECYCLING_CENTRE_MIN_T * 100 * (1 + rng_for("dechetteries_total").uniform(0.006, 0.025))
    )
    return round(t2025 * year_factor("dechetteries", year, 0.04))


def dechetteries_apports(ctx: Ctx) -> Book:
    y = ctx.year
    rng = rng_for("dechetteries_apports", y)
    cells = []
    weights = []
    for site, sw in SITES:
        for frac, (share, filiere, seasonal) in FRACTIONS.items():
            if frac in BIG_SITES_ONLY and sw < 0.8:
                continue
            if frac == "BOIS" and site in BOIS_ENERGY_SITES:
                filiere = "VALORISATION_ENERGETIQUE"
            if frac == "GRAVATS" and site in GRAVATS_LANDFILL_SITES:
                filiere = "ENFOUISSEMENT"
            site_frac = rng_for("site_fraction", site, frac).uniform(0.75, 1.25)
            for m in range(12):
                season = GREEN_SEASON[m] if seasonal else (0.85 if m in (0, 1, 11) else 1.05)
                cells.append((site, m, frac, filiere))
                weights.append(sw * share * site_frac * season * rng.uniform(0.88, 1.12))
    parts = apportion(recycling_centre_total(y), weights)
    rows = []
    for k, ((site, m, frac, filiere), v) in enumerate(zip(cells, parts, strict=True)):
        t = round(v / 100, 2)
        if k % 5 == 1:
            cell = fr_number(t, 2, sep=NNBSP)
        elif k % 11 == 3:
            cell = fr_number(t, 2, sep=NBSP, unit="t")
        else:
            cell = t
        rows.append([site, f"{m + 1:02d}/{y}", frac, filiere, cell])
    sheet = Sheet(
        name="Apports",
        columns=["decheterie", "mois", "fraction", "filiere", "tonnage_t"],
        headers={
            "decheterie": "Déchèterie",
            "mois": "Mois",
            "fraction": "Fraction",
            "filiere": "Filière",
            "tonnage_t": "Tonnage t",
        },
        titles=[
            f"Apports en déchèteries – {y}",
            "Tonnages pesés en sortie de site (bons de pesée des prestataires)",
        ],
        rows=rows,
    )
    notice = [
        f"Notice – apports en déchèteries {y}",
        "Une ligne par déchèterie, mois et fraction ; la filière est celle du marché de traitement en vigueur.",
        "Tonnages en tonnes, deux décimales. Fractions : BOIS, PLATRE, GRAVATS, DECHETS_VERTS, DEEE, CARTON, FERRAILLE, MOBILIER, TOUT_VENANT, DDS, AUTRE.",
    ]
    return Book(
        ctx.path(DEPARTMENT, "dechetteries_apports"),
        [sheet],
        notice=notice,
        title="Apports en déchèteries",
    )


# --------------------------------------------------------------------------- dechets_prevention


def _scaled(key: str, y: int, spread: float) -> int:
    return max(1, round(PREVENTION_2025[key] * year_factor(f"prev-{key}", y, spread)))


def dechets_prevention(ctx: Ctx) -> Book:
    y = ctx.year
    rng = rng_for("dechets_prevention", y)
    communes = ctx.communes
    actions = []  # (date, commune or None, type, quantite, foyers)

    # bin checks: several days in each commune visited
    n_communes = min(len(communes), _scaled("bin_check_communes", y, 0.12))
    pool = list(communes)
    chosen = []
    for _ in range(n_communes):
        c = rng.choices(pool, weights=[x.pop**0.7 for x in pool])[0]
        pool.remove(c)
        chosen.append(c)
    days = []
    for c in chosen:
        n = 1 + (c.pop > 3000) + (c.pop > 9000) + rng.randint(0, 1)
        days += [c] * n
    bins = apportion(
        _scaled("bins_checked", y, 0.1), [c.pop * rng.uniform(0.6, 1.4) / 2 for c in days]
    )
    households = apportion(
        _scaled("households", y, 0.15), [b * rng.uniform(0.5, 1.5) for b in bins]
    )
    for c, b, h in zip(days, bins, households, strict=True):
        actions.append(
            (random_workday(rng, y, [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12]), c, "CONTROLE_BACS", b, h)
        )

    # composters handed out
    sessions = 14
    comp = apportion(
        _scaled("composters", y, 0.12), [rng.uniform(0.5, 1.5) for _ in range(sessions)]
    )
    for i, q in enumerate(comp):
        c = None if i % 4 == 0 else rng.choices(communes, weights=[x.pop for x in communes])[0]
        actions.append((random_workday(rng, y, [3, 4, 5, 9, 10]), c, "COMPOSTEUR", q, None))

    # workshops, school programme, stands
    n_ws = _scaled("workshops", y, 0.15)
    ws_people = _scaled("workshop_participants", y, 0.15)
    for q in _with_floor(rng, ws_people, n_ws, 3):
        actions.append(
            (random_workday(rng, y), _maybe_commune(rng, communes, 0.1), "ATELIER", q, None)
        )
    pupils = _scaled("pupils", y, 0.1)
    n_classes = max(1, round(pupils / rng.uniform(23, 25)))
    for q in _with_floor(rng, pupils, n_classes, 12):
        actions.append(
            (
                random_workday(rng, y, [1, 2, 3, 4, 5, 6, 9, 10, 11, 12]),
                _maybe_commune(rng, communes, 0.0),
                "ANIMATION_SCOLAIRE",
                q,
                None,
            )
        )
    n_st = _scaled("stands", y, 0.12)
    for q in _with_floor(rng, _scaled("stand_visitors", y, 0.12), n_st, 20):
        actions.append(
            (
                random_workday(rng, y, [3, 4, 5, 6, 7, 8, 9, 10]),
                _maybe_commune(rng, communes, 0.2),
                "STAND",
                q,
                None,
            )
        )

    actions.sort(key=lambda a: (a[0], a[2], a[1].code if a[1] else ""))
    names = {c.code: pick_variant(rng_for("prevention_noms", y, c.code), c.name) for c in communes}
    rows = []
    for i, (d, c, typ, q, h) in enumerate(actions, start=1):
        rows.append(
            [f"PREV-{y}-{i:04d}", d.strftime("%d/%m/%Y"), names[c.code] if c else None, typ, q, h]
        )
    sheet = Sheet(
        name="Actions",
        columns=["id_action", "date", "commune", "type_action", "quantite", "foyers_sensibilises"],
        headers={
            "id_action": "ID action",
            "date": "Date",
            "commune": "Commune",
            "type_action": "Type action",
            "quantite": "Quantité",
            "foyers_sensibilises": "Foyers sensibilisés",
        },
        titles=[f"Prévention des déchets – actions {y}"],
        rows=rows,
    )
    return Book(ctx.path(DEPARTMENT, "dechets_prevention"), [sheet], title="Actions de prévention")


def _with_floor(rng, total: int, n: int, floor: int) -> list[int]:
    floor = min(floor, total // max(n, 1))
    extra = apportion(total - floor * n, [rng.uniform(0.2, 1.8) for _ in range(n)])
    return [floor + e for e in extra]


def _maybe_commune(rng, communes, p_empty: float):
    if rng.random() < p_empty:
        return None
    return rng.choices(communes, weights=[x.pop for x in communes])[0]
