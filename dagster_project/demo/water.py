"""Water and sanitation (department ``water``): eau_udi, eau_volumes,
eau_reseau, eau_qualite, assainissement_activite."""

from __future__ import annotations

import math

from ._common import (
    NBSP,
    NNBSP,
    apportion,
    apportion_bounded,
    fr_number,
    from_cents,
    last_day,
    month_fr,
    pick_variant,
    random_workday,
    rng_for,
    stock_factor,
    year_factor,
)
from ._xlsx import Book, Month, Sheet
from .context import Ctx

DEPARTMENT = "water"
DIRECTION = "Direction du Petit Cycle de l'Eau"

# (code, name, served communes, management of drinking water, import share, export share)
UDIS: list[tuple[str, str, str, str, float, float]] = [
    (
        "UDI-BETHUNOIS",
        "Béthunois",
        "62119 62126 62035 62349 62350 62632 62841 62847 62848 62310 62454",
        "regie",
        0.0,
        0.0,
    ),
    (
        "UDI-BRUAYSIS",
        "Bruaysis",
        "62178 62400 62457 62270 62727 62540 62456 62642 62269 62077 62120 62232",
        "delegation",
        0.0,
        0.0,
    ),
    (
        "UDI-BARLIN-HERSIN",
        "Barlin – Hersin-Coupigny",
        "62083 62443 62693 62356 62314 62366 62441 62218",
        "delegation",
        0.22,
        0.0,
    ),
    (
        "UDI-NOEUX-LABOURSE",
        "Nœux-les-Mines – Labourse",
        "62617 62480 62735 62278 62836 62377 62445 62479 62489 62224",
        "delegation",
        0.0,
        0.0,
    ),
    (
        "UDI-LA-BASSEE",
        "Secteur de La Bassée",
        "62401 62276 62132 62863 62262 62051 62034 62200 62846 62626 62373 62330",
        "delegation",
        0.0,
        0.035,
    ),
    (
        "UDI-BAS-PAYS",
        "Bas-Pays",
        "62520 62706 62252 62851 62606 62529 62584 62376 62190 62770 62713 62195 62747",
        "delegation",
        0.36,
        0.0,
    ),
    (
        "UDI-AUCHEL-MARLES",
        "Auchel – Marles-les-Mines",
        "62048 62555 62194 62217 62197 62532 62188 62328 62023 62028 62029 62049 62508 62286",
        "regie",
        0.0,
        0.0,
    ),
    (
        "UDI-LYS-ROMANE",
        "Lys Romane",
        "62516 62473 62391 62407 62620 62486 62141 62162 62509 62512 62517 62564 62676 62701 62720 62750 62885 62900 62313 62500",
        "regie",
        0.0,
        0.03,
    ),
]

# Published 2025 figures (catalogue) reproduced exactly.
WATER_KM = 2015_00  # hundredths of km
WATER_REGIE_KM = 956_00
SEWER_KM = 1136_00
SEWER_COMBINED_KM = 313_00
WATER_RENEWED_KM = 9_95
WATER_CAPEX = 4_240_000_00  # cents
SEWER_CAPEX = 2_776_000_00
SPANC_SALES = 1099
WW_BOXES = 286
STORMWATER = 81

# Communes whose sewers are run in-house (Béthune station and three micro-stations).
SEWER_REGIE = {"62119", "62441", "62720", "62218"}


def udi_of(ctx: Ctx) -> dict[str, str]:
    return {code: u[0] for u in UDIS for code in u[2].split()}


def build(ctx: Ctx) -> list[Book]:
    return [
        eau_udi(ctx),
        eau_volumes(ctx),
        eau_reseau(ctx),
        eau_qualite(ctx),
        assainissement_activite(ctx),
    ]


# --------------------------------------------------------------------------- eau_udi


def eau_udi(ctx: Ctx) -> Book:
    rng = rng_for("eau_udi", ctx.year)
    rows = []
    for code, nom, communes, *_ in UDIS:
        for c in sorted(communes.split(), key=lambda x: ctx.commune(x).name):
            rows.append([code, nom, pick_variant(rng, ctx.commune(c).name)])
    sheet = Sheet(
        name="UDI",
        columns=["udi", "nom_udi", "commune"],
        headers={"udi": "UDI", "nom_udi": "Nom UDI", "commune": "Commune"},
        titles=[f"Référentiel des unités de distribution d'eau potable – situation {ctx.year}"],
        rows=rows,
    )
    return Book(ctx.path(DEPARTMENT, "eau_udi"), [sheet], title="Unités de distribution")


# --------------------------------------------------------------------------- eau_volumes


def eau_volumes(ctx: Ctx) -> Book:
    y = ctx.year
    rows = []
    for code, _nom, communes, _mode, imp, exp in UDIS:
        rng = rng_for("eau_volumes", code, y)
        pop = sum(ctx.commune(c).pop for c in communes.split())
        per_cap = rng_for("eau_volumes_percap", code).uniform(52, 58) * year_factor(
            f"vol-{code}", y, 0.03
        )
        consumed = round(pop * per_cap)
        exported = round(consumed * exp * rng.uniform(0.9, 1.1))
        yld = (
            rng_for("eau_volumes_yield", code).uniform(0.76, 0.86)
            + (y - 2025) * 0.004
            + rng.uniform(-0.01, 0.01)
        )
        inflow = (consumed + exported) / yld
        imported = round(inflow * imp)
        produced = round(inflow) - imported
        season = [1 + 0.10 * math.cos(2 * math.pi * (m - 7) / 12) for m in range(1, 13)]
        cons_m = apportion(consumed, [s * rng.uniform(0.96, 1.04) for s in season])
        prod_m = apportion(produced, [s * rng.uniform(0.97, 1.03) for s in season])
        imp_m = (
            apportion(imported, [s * rng.uniform(0.9, 1.1) for s in season])
            if imported
            else [None] * 12
        )
        exp_m = (
            apportion(exported, [s * rng.uniform(0.9, 1.1) for s in season])
            if exported
            else [None] * 12
        )
        for m in range(12):
            c = cons_m[m]
            # meter readings typed by hand or pasted from the billing tool
            if (m + len(rows)) % 3 == 0:
                c = fr_number(c, 0, sep=NNBSP)
            elif (m + len(rows)) % 7 == 0:
                c = fr_number(c, 0, sep=NBSP, unit="m3")
            rows.append([Month(last_day(y, m + 1)), code, prod_m[m], imp_m[m], exp_m[m], c])
    sheet = Sheet(
        name=f"Volumes {y}",
        columns=[
            "mois",
            "udi",
            "volume_produit_m3",
            "volume_importe_m3",
            "volume_exporte_m3",
            "volume_consomme_autorise_m3",
        ],
        headers={
            "mois": "Mois",
            "udi": "UDI",
            "volume_produit_m3": "Volume produit m3",
            "volume_importe_m3": "Volume importé m3",
            "volume_exporte_m3": "Volume exporté m3",
            "volume_consomme_autorise_m3": "Volume consommé autorisé m3",
        },
        titles=[
            f"Volumes mensuels d'eau potable par UDI – année {y}",
            "Source : supervision et relevés de compteurs",
        ],
        rows=rows,
        month_format="mmm yyyy",
    )
    notice = [
        f"Notice – volumes d'eau potable {y}",
        "Une ligne par unité de distribution (UDI) et par mois.",
        "Volumes en mètres cubes. Laisser vide un volume importé ou exporté nul.",
        "Le volume consommé autorisé comprend les consommations comptabilisées, les volumes de service et les volumes sans comptage autorisés.",
        "Les données sont dans l'onglet suivant.",
    ]
    return Book(
        ctx.path(DEPARTMENT, "eau_volumes"), [sheet], notice=notice, title="Volumes d'eau potable"
    )


# --------------------------------------------------------------------------- eau_reseau


def reseau_figures(ctx: Ctx) -> dict[str, dict[str, list]]:
    """Per-commune network figures of the campaign year (hundredths of km,
    cents, counts), keyed by reseau."""
    y = ctx.year
    communes = ctx.communes
    codes = [c.code for c in communes]
    udi = udi_of(ctx)
    regie_udis = {u[0] for u in UDIS if u[3] == "regie"}
    base = rng_for("eau_reseau_base")  # geography: identical every year

    # --- drinking water lengths
    w_len = [(4 + c.pop / 250) * base.uniform(0.85, 1.15) for c in communes]
    f_stock = stock_factor("water_km", y, (0.002, 0.006))
    total = round(WATER_KM * f_stock)
    regie_total = round(WATER_REGIE_KM * f_stock)
    is_regie = [udi[c] in regie_udis for c in codes]
    reg = apportion(regie_total, [w if r else 0 for w, r in zip(w_len, is_regie, strict=True)])
    dele = apportion(
        total - regie_total, [0 if r else w for w, r in zip(w_len, is_regie, strict=True)]
    )
    water_len = [a + b for a, b in zip(reg, dele, strict=True)]

    # --- sewer lengths (rural communes rely on non-collective sanitation)
    w_sew = [
        (1 + c.pop / 200) * (1.0 if c.pop >= 1500 else 0.6) * base.uniform(0.85, 1.15)
        for c in communes
    ]
    f_sew = stock_factor("sewer_km", y, (0.002, 0.005))
    sewer_len = apportion(round(SEWER_KM * f_sew), w_sew)
    comb_w = [c.pop * base.uniform(0.7, 1.3) if c.pop >= 4000 else 0 for c in communes]
    comb_caps = [int(s * 0.6) for s in sewer_len]
    sewer_comb = apportion_bounded(
        round(SEWER_COMBINED_KM * stock_factor("comb_km", y, (0.0, 0.002))), comb_w, comb_caps
    )

    rng = rng_for("eau_reseau", y)
    # --- renewed lengths
    renewed_total = round(WATER_RENEWED_KM * year_factor("water_renewed", y, 0.22))
    idx = _weighted_sample(rng, range(len(communes)), [x for x in water_len], 12)
    w_ren = [0.0] * len(communes)
    for i in idx:
        w_ren[i] = water_len[i] * rng.uniform(0.4, 1.6)
    water_ren = apportion(renewed_total, w_ren)
    sew_ren_total = round(4_30 * year_factor("sewer_renewed", y, 0.25))
    idx_s = _weighted_sample(rng, range(len(communes)), sewer_len, 7)
    w_sren = [0.0] * len(communes)
    for i in idx_s:
        w_sren[i] = sewer_len[i] * rng.uniform(0.5, 1.5)
    sewer_ren = apportion(sew_ren_total, w_sren)

    # --- capital expenditure (cents): renewal sites plus extension works
    capex_w = [water_ren[i] * 35 + 0.0 for i in range(len(communes))]
    for i in _weighted_sample(rng, range(len(communes)), [c.pop for c in communes], 14):
        capex_w[i] += rng.uniform(30, 160)
    water_capex = apportion(round(WATER_CAPEX * year_factor("water_capex", y, 0.15)), capex_w)
    scapex_w = [sewer_ren[i] * 40 + 0.0 for i in range(len(communes))]
    for i in _weighted_sample(rng, range(len(communes)), [c.pop for c in communes], 9):
        scapex_w[i] += rng.uniform(40, 200)
    sewer_capex = apportion(round(SEWER_CAPEX * year_factor("sewer_capex", y, 0.15)), scapex_w)

    # --- subscribers
    f_sub = stock_factor("subscribers", y, (0.003, 0.007))
    water_sub, sewer_sub = [], []
    for c in communes:
        r = rng_for("abonnes", c.code)
        ws = round(c.pop / r.uniform(2.15, 2.45) * f_sub)
        share = r.uniform(0.9, 0.99) if c.pop >= 2000 else r.uniform(0.45, 0.9)
        water_sub.append(ws)
        sewer_sub.append(round(ws * share))

    return {
        "eau_potable": {
            "mode": ["regie" if r else "delegation" for r in is_regie],
            "len": water_len,
            "comb": [None] * len(communes),
            "ren": water_ren,
            "sub": water_sub,
            "capex": water_capex,
        },
        "assainissement": {
            "mode": ["regie" if c in SEWER_REGIE else "delegation" for c in codes],
            "len": sewer_len,
            "comb": sewer_comb,
            "ren": sewer_ren,
            "sub": sewer_sub,
            "capex": sewer_capex,
        },
    }


def _weighted_sample(rng, population, weights, k: int) -> list[int]:
    pool = list(population)
    w = list(weights)
    out = []
    for _ in range(k):
        i = rng.choices(range(len(pool)), weights=w)[0]
        out.append(pool.pop(i))
        w.pop(i)
    return sorted(out)


def eau_reseau(ctx: Ctx) -> Book:
    fig = reseau_figures(ctx)
    rows = []
    tot = {
        "lineaire_km": 0,
        "lineaire_unitaire_km": 0,
        "lineaire_renouvele_km": 0,
        "nb_abonnes": 0,
        "investissement_eur": 0,
    }
    for i, c in enumerate(ctx.communes):
        for reseau in ("eau_potable", "assainissement"):
            f = fig[reseau]
            comb = f["comb"][i]
            comb_cell = None if comb is None or (comb == 0 and i % 2) else from_cents(comb)
            capex = f["capex"][i]
            rows.append(
                [
                    c.code,
                    reseau,
                    f["mode"][i].capitalize(),
                    from_cents(f["len"][i]),
                    comb_cell,
                    from_cents(f["ren"][i]),
                    f["sub"][i],
                    capex // 100 if capex % 100 == 0 else from_cents(capex),
                ]
            )
            tot["lineaire_km"] += f["len"][i]
            tot["lineaire_unitaire_km"] += comb or 0
            tot["lineaire_renouvele_km"] += f["ren"][i]
            tot["nb_abonnes"] += f["sub"][i] * 100
            tot["investissement_eur"] += capex
    sheet = Sheet(
        name="Réseaux",
        columns=[
            "code_insee",
            "reseau",
            "mode_gestion",
            "lineaire_km",
            "lineaire_unitaire_km",
            "lineaire_renouvele_km",
            "nb_abonnes",
            "investissement_eur",
        ],
        headers={
            "code_insee": "Code INSEE",
            "reseau": "Réseau",
            "mode_gestion": "Mode gestion",
            "lineaire_km": "Linéaire km",
            "lineaire_unitaire_km": "Linéaire unitaire km",
            "lineaire_renouvele_km": "Linéaire renouvelé km",
            "nb_abonnes": "Nb abonnés",
            "investissement_eur": "Investissement EUR",
        },
        rows=rows,
        total_label="Total",
        total_columns=list(tot),
        total_values={k: from_cents(v) for k, v in tot.items()},
    )
    return Book(ctx.path(DEPARTMENT, "eau_reseau"), [sheet], title="Réseaux, abonnés et travaux")


# --------------------------------------------------------------------------- eau_qualite

MICRO = [
    ("E. coli", "n/100mL", 1),
    ("Entérocoques", "n/100mL", 1),
    ("Coliformes totaux", "n/100mL", 1),
]
PHYSICO = [
    ("Nitrates", "mg/L", 50),
    ("Nitrites", "mg/L", 0.5),
    ("Turbidité", "NFU", 1),
    ("Chlorures", "mg/L", 250),
    ("Sulfates", "mg/L", 250),
    ("Fluorures", "mg/L", 1.5),
    ("Pesticides totaux", "µg/L", 0.5),
]


def eau_qualite(ctx: Ctx) -> Book:
    y = ctx.year
    rows = []
    seq = 0
    for k, (code, _nom, communes, *_r) in enumerate(UDIS):
        rng = rng_for("eau_qualite", code, y)
        pop = sum(ctx.commune(c).pop for c in communes.split())
        n_micro = max(24, round(pop / 390 * rng.uniform(0.92, 1.08)))
        n_physico = round(n_micro * rng.uniform(0.3, 0.36))
        n_bad_micro = 1 if rng.random() < (0.55 if n_micro > 60 else 0.3) else 0
        n_bad_phys = 1 if rng.random() < 0.45 else 0
        nitr_mean = rng_for("nitrates", code).uniform(18, 40)
        fill_conforme = k % 2 == 0
        dates = sorted(random_workday(rng, y) for _ in range(n_micro))
        phys_idx = set(rng.sample(range(n_micro), n_physico))
        bad_micro = set(rng.sample(range(n_micro), n_bad_micro))
        bad_phys = set(rng.sample(sorted(phys_idx), n_bad_phys))
        for s, d in enumerate(dates):
            seq += 1
            sid = f"PRL{y}{seq:05d}"
            bad_params = set()
            if s in bad_micro:
                bad_params = set(rng.sample([p[0] for p in MICRO], rng.choice([1, 1, 2])))
            for name, unit, lim in MICRO:
                bad = name in bad_params
                res = rng.randint(2, 40) if bad else 0
                conf = "non" if bad else ("oui" if fill_conforme else None)
                rows.append([sid, d, code, "microbiologique", name, res, unit, lim, conf])
            if s in phys_idx:
                bad_name = rng.choice(["Nitrates", "Turbidité"]) if s in bad_phys else None
                for name, unit, lim in PHYSICO:
                    res = _physico_value(rng, name, nitr_mean, bad_name == name)
                    bad = res > lim
                    conf = "non" if bad else ("oui" if fill_conforme else None)
                    rows.append([sid, d, code, "physico-chimique", name, res, unit, lim, conf])
    rows.sort(key=lambda r: (r[1], r[0]))
    sheet = Sheet(
        name="Résultats",
        columns=[
            "id_prelevement",
            "date_prelevement",
            "udi",
            "type_analyse",
            "parametre",
            "resultat",
            "unite",
            "limite_qualite",
            "conforme",
        ],
        headers={
            "id_prelevement": "ID prélèvement",
            "date_prelevement": "Date prélèvement",
            "udi": "UDI",
            "type_analyse": "Type analyse",
            "parametre": "Paramètre",
            "resultat": "Résultat",
            "unite": "Unité",
            "limite_qualite": "Limite qualité",
            "conforme": "Conforme",
        },
        rows=rows,
    )
    notice = [
        f"Notice – contrôle sanitaire de l'eau distribuée {y}",
        "Extraction des résultats du contrôle sanitaire (ARS) et de l'autosurveillance, un résultat par prélèvement et par paramètre.",
        "Colonne Conforme : oui / non ; laisser vide pour que la conformité soit déduite de la limite de qualité.",
        "Les résultats microbiologiques sont exprimés en nombre de germes pour 100 mL.",
    ]
    return Book(
        ctx.path(DEPARTMENT, "eau_qualite"), [sheet], notice=notice, title="Contrôle sanitaire"
    )


def _physico_value(rng, name: str, nitr_mean: float, bad: bool) -> float:
    if name == "Nitrates":
        return round(
            rng.uniform(50.5, 57) if bad else min(48.9, max(2.0, rng.gauss(nitr_mean, 4))), 1
        )
    if name == "Turbidité":
        return round(rng.uniform(1.2, 2.6) if bad else rng.uniform(0.05, 0.6), 2)
    if name == "Nitrites":
        return round(rng.choice([0, 0, 0.01, 0.02, 0.03]), 2)
    if name == "Chlorures":
        return round(rng.uniform(18, 62), 1)
    if name == "Sulfates":
        return round(rng.uniform(25, 110), 1)
    if name == "Fluorures":
        return round(rng.uniform(0.05, 0.45), 2)
    if name == "Pesticides totaux":
        return round(rng.choice([0, 0, 0.02, 0.04, 0.07, 0.11, 0.15]), 2)
    raise ValueError(name)


# --------------------------------------------------------------------------- assainissement_activite


def assainissement_activite(ctx: Ctx) -> Book:
    y = ctx.year
    rng = rng_for("assainissement_activite", y)
    communes = ctx.communes
    sales_season = [0.8, 0.85, 1.0, 1.05, 1.1, 1.15, 1.2, 0.8, 1.05, 1.1, 1.0, 0.9]
    cells = [(c, m) for c in communes for m in range(12)]

    def grid(total: int, commune_w, season) -> list[int]:
        return apportion(
            total, [commune_w(c) * season[m] * rng.uniform(0.3, 1.7) for c, m in cells]
        )

    spanc = grid(
        round(SPANC_SALES * year_factor("spanc", y, 0.08)),
        lambda c: c.pop * (1.0 if c.pop < 2000 else 0.35),
        sales_season,
    )
    boxes = grid(round(WW_BOXES * year_factor("ww_boxes", y, 0.12)), lambda c: c.pop, [1] * 12)
    storm = grid(round(STORMWATER * year_factor("stormwater", y, 0.15)), lambda c: c.pop, [1] * 12)
    names = {
        c.code: pick_variant(rng_for("assainissement_noms", y, c.code), c.name) for c in communes
    }
    rows = []
    for k, (c, m) in enumerate(cells):
        rows.append([names[c.code], month_fr(y, m + 1), spanc[k], boxes[k], storm[k]])
    sheet = Sheet(
        name="Activité",
        columns=[
            "commune",
            "mois",
            "controles_spanc_vente",
            "branchements_eu_crees",
            "demandes_eaux_pluviales",
        ],
        headers={
            "commune": "Commune",
            "mois": "Mois",
            "controles_spanc_vente": "Contrôles SPANC vente",
            "branchements_eu_crees": "Branchements EU créés",
            "demandes_eaux_pluviales": "Demandes eaux pluviales",
        },
        titles=[
            "Direction du Petit Cycle de l'Eau",
            f"Activité assainissement et SPANC – {y}",
            "",
        ],
        rows=rows,
    )
    return Book(
        ctx.path(DEPARTMENT, "assainissement_activite"), [sheet], title="Activité assainissement"
    )
