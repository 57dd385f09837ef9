"""The demo-campaign generator: deterministic, and its 2025 workbooks
reproduce the figures of the 2025 report (recomputed here in plain Python
from the workbooks, independently of the ingestion engine)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from dagster_project.demo import DETAILED_SOURCES, generate_demo
from dagster_project.demo._common import kit_name_key, load_catalogue, load_communes

YEARS = (2023, 2024, 2025)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo_a")
    generate_demo(out, YEARS)
    return out


@pytest.fixture(scope="module")
def catalogue() -> dict[str, dict[str, str]]:
    return {r["indicator_id"]: r for r in load_catalogue()}


# --------------------------------------------------------------------------- a small reader


def _norm(header: object) -> str:
    s = unicodedata.normalize("NFD", str(header).replace("œ", "oe"))
    s = "".join(c for c in s if unicodedata.category(c) != "Mn").strip().lower()
    return re.sub(r"[\s_]+", "_", s)


def _num(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    s = str(value).strip()
    s = re.sub(r"\s*(€|m3|m³|t|%)$", "", s)
    s = s.replace("\u00a0", "").replace("\u202f", "").replace(" ", "").replace(",", ".")
    return float(s)


def _date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    s = str(value).strip()
    if re.match(r"^\d{2}/\d{2}/\d{4}$", s):
        d, m, y = s.split("/")
        return dt.date(int(y), int(m), int(d))
    return dt.date.fromisoformat(s)


def read_rows(path: Path, required: list[str]) -> list[dict[str, object]]:
    """Rows of the first sheet whose header (within the first 11 rows)
    holds every required column, keyed by normalised header; control total
    rows are dropped."""
    wb = CalamineWorkbook.from_path(str(path))
    for name in wb.sheet_names:
        rows = wb.get_sheet_by_name(name).to_python()
        for h in range(min(11, len(rows))):
            heads = [_norm(c) for c in rows[h]]
            if all(r in heads for r in required):
                out = []
                for row in rows[h + 1 :]:
                    first = next((c for c in row if c not in ("", None)), None)
                    if first is None or str(first).strip().lower().startswith("total"):
                        continue
                    out.append({k: v for k, v in zip(heads, row, strict=False) if k})
                return out
    raise AssertionError(f"{path.name}: no header with {required}")


def total_row(path: Path) -> list[object]:
    wb = CalamineWorkbook.from_path(str(path))
    for name in wb.sheet_names:
        for row in wb.get_sheet_by_name(name).to_python():
            if row and str(row[0]).strip().lower().startswith("total"):
                return row
    raise AssertionError("no total row")


def src(root: Path, year: int, source_id: str) -> Path:
    return root / str(year) / DETAILED_SOURCES[source_id] / f"{source_id}_{year}.xlsx"


def matches(value: float, published: str, qualifier: str) -> bool:
    p = float(published)
    decimals = len(published.split(".")[1]) if "." in published else 0
    if qualifier in ("eq", "target"):
        return round(value, decimals) == p
    if qualifier == "gte":
        return p <= value < 1.1 * p
    if qualifier == "approx":
        return abs(value - p) <= 0.05 * abs(p)
    raise AssertionError(qualifier)


def check(catalogue, figures: dict[str, float]) -> None:
    bad = {}
    for indicator_id, value in figures.items():
        row = catalogue[indicator_id]
        if not matches(value, row["published_2025"], row["published_qualifier"]):
            bad[indicator_id] = (value, row["published_qualifier"], row["published_2025"])
    assert not bad, bad


def s(rows, col, **where) -> float:
    return sum(_num(r.get(col)) or 0 for r in rows if all(r.get(k) == v for k, v in where.items()))


# --------------------------------------------------------------------------- determinism and tree


def test_two_runs_are_byte_identical(demo_dir, tmp_path):
    other = tmp_path / "demo_b"
    paths_b = generate_demo(other, YEARS)
    files_a = sorted(p.relative_to(demo_dir) for p in demo_dir.rglob("*.xlsx"))
    files_b = sorted(p.relative_to(other) for p in paths_b)
    assert files_a == files_b
    different = [f for f in files_a if (demo_dir / f).read_bytes() != (other / f).read_bytes()]
    assert not different


def test_tree_has_every_source_and_declared_file(demo_dir, catalogue):
    declared_depts = {r["department"] for r in catalogue.values() if r["computation"] == "declared"}
    for year in YEARS:
        for source_id in DETAILED_SOURCES:
            assert src(demo_dir, year, source_id).is_file()
        got = {
            p.parent.name
            for p in (demo_dir / str(year)).glob(f"*/indicateurs_declares_{year}.xlsx")
        }
        assert got == declared_depts


def test_rerun_removes_stale_owned_files_only(tmp_path):
    (tmp_path / "contracts").mkdir()
    keep = [tmp_path / "contracts" / "eau_udi.yml", tmp_path / "2025" / "water" / "notes_2025.xlsx"]
    stale = [
        tmp_path / "2025" / "culture" / "eau_udi_2025.xlsx",
        tmp_path / "2025" / "oldies" / "indicateurs_declares_2025.xlsx",
    ]
    for p in keep + stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    written = generate_demo(tmp_path, (2025,))
    assert all(p.read_bytes() == b"x" for p in keep)
    assert not any(p.exists() for p in stale)
    assert all(p.name.endswith("_2025.xlsx") for p in written)


# --------------------------------------------------------------------------- water


def test_water_2025_reproduces_the_report(demo_dir, catalogue):
    path = src(demo_dir, 2025, "eau_reseau")
    rows = read_rows(path, ["code_insee", "reseau", "lineaire_km"])
    assert len(rows) == 200
    water = [r for r in rows if r["reseau"] == "eau_potable"]
    sewer = [r for r in rows if r["reseau"] == "assainissement"]
    check(
        catalogue,
        {
            "sewer_network_length": s(sewer, "lineaire_km"),
            "sewer_network_combined_length": s(sewer, "lineaire_unitaire_km"),
            "water_network_length": s(water, "lineaire_km"),
            "water_network_in_house_length": sum(
                _num(r["lineaire_km"]) for r in water if str(r["mode_gestion"]).lower() == "regie"
            ),
            "water_network_renewed_length": s(water, "lineaire_renouvele_km"),
            "water_network_capex": s(water, "investissement_eur"),
            "sanitation_network_capex": s(sewer, "investissement_eur"),
        },
    )
    # the control total row equals the column sums (to 0.01)
    heads = [_norm(h) for h in read_header(path)]
    tot = total_row(path)
    for col in (
        "lineaire_km",
        "lineaire_unitaire_km",
        "lineaire_renouvele_km",
        "nb_abonnes",
        "investissement_eur",
    ):
        assert abs(tot[heads.index(col)] - s(rows, col)) <= 0.01
    assert all(float(r["nb_abonnes"]).is_integer() for r in rows)

    udi = read_rows(src(demo_dir, 2025, "eau_udi"), ["udi", "commune"])
    assert len(udi) == 100
    assert sum(r["udi"] == "UDI-BETHUNOIS" for r in udi) == 11
    keys = {kit_name_key(c.name): c.code for c in load_communes()}
    assert {keys[kit_name_key(r["commune"])] for r in udi} == {c.code for c in load_communes()}

    act = read_rows(src(demo_dir, 2025, "assainissement_activite"), ["commune", "mois"])
    check(
        catalogue,
        {
            "sanitation_property_sale_inspections": s(act, "controles_spanc_vente"),
            "wastewater_connection_boxes_created": s(act, "branchements_eu_crees"),
            "stormwater_parcel_requests": s(act, "demandes_eaux_pluviales"),
        },
    )


def read_header(path: Path) -> list[object]:
    wb = CalamineWorkbook.from_path(str(path))
    for row in wb.get_sheet_by_index(0).to_python():
        if row and _norm(row[0]) == "code_insee":
            return row
    raise AssertionError("header not found")


def test_water_quality_and_volumes_are_plausible(demo_dir):
    q = read_rows(src(demo_dir, 2025, "eau_qualite"), ["id_prelevement", "parametre"])
    assert 2000 <= len(q) <= 4000
    assert len({(r["id_prelevement"], r["parametre"]) for r in q}) == len(q)
    samples = defaultdict(lambda: True)
    for r in q:
        if r["type_analyse"] == "microbiologique":
            ok = r["conforme"] != "non" and _num(r["resultat"]) <= _num(r["limite_qualite"])
            samples[r["id_prelevement"]] &= ok
    rate = 100 * sum(samples.values()) / len(samples)
    assert 98.5 <= rate < 100
    v = read_rows(src(demo_dir, 2025, "eau_volumes"), ["udi", "mois", "volume_produit_m3"])
    inflow = s(v, "volume_produit_m3") + s(v, "volume_importe_m3")
    yld = 100 * (s(v, "volume_consomme_autorise_m3") + s(v, "volume_exporte_m3")) / inflow
    assert 75 <= yld <= 86


# --------------------------------------------------------------------------- waste


def test_waste_2025_reproduces_the_report(demo_dir, catalogue):
    apports = read_rows(
        src(demo_dir, 2025, "dechetteries_apports"), ["decheterie", "mois", "fraction"]
    )
    prev = read_rows(src(demo_dir, 2025, "dechets_prevention"), ["id_action", "type_action"])

    def of(t):
        return [r for r in prev if r["type_action"] == t]

    check(
        catalogue,
        {
            "recycling_centre_tonnage": s(apports, "tonnage_t"),
            "bins_checked": s(of("CONTROLE_BACS"), "quantite"),
            "bin_checks_communes": len({kit_name_key(r["commune"]) for r in of("CONTROLE_BACS")}),
            "households_sensitised_sorting_errors": s(of("CONTROLE_BACS"), "foyers_sensibilises"),
            "composters_distributed": s(of("COMPOSTEUR"), "quantite"),
            "waste_prevention_stands": len(of("STAND")),
            "waste_prevention_citizens_sensitised": s(of("STAND"), "quantite"),
            "waste_pupils_sensitised": s(of("ANIMATION_SCOLAIRE"), "quantite"),
            "waste_workshops": len(of("ATELIER")),
            "waste_workshop_participants": s(of("ATELIER"), "quantite"),
        },
    )
    collecte = read_rows(src(demo_dir, 2025, "dechets_collecte"), ["code_insee", "mois", "flux"])
    assert len(collecte) == 100 * 12 * 5
    pop = sum(c.pop for c in load_communes())
    dma = 1000 * (s(collecte, "tonnage_t") + s(apports, "tonnage_t")) / pop
    assert 560 <= dma <= 640


# --------------------------------------------------------------------------- housing


def test_housing_2025_reproduces_the_report(demo_dir, catalogue):
    reg = read_rows(src(demo_dir, 2025, "amelioration_habitat"), ["id_dossier", "dispositif"])
    assert len({r["id_dossier"] for r in reg}) == len(reg)
    opah = [
        r
        for r in reg
        if r["dispositif"] == "OPAH_RU" and 2022 <= _date(r["date_engagement"]).year <= 2025
    ]
    mpr = [
        r
        for r in reg
        if r["dispositif"] == "MA_PRIME_RENOV_ACCOMPAGNE"
        and _date(r["date_engagement"]).year == 2025
    ]
    mpa = [
        r
        for r in reg
        if r["dispositif"] == "MA_PRIME_ADAPT" and _date(r["date_engagement"]).year == 2025
    ]
    assert min(_date(r["date_engagement"]) for r in reg).year == 2015
    assert max(_date(r["date_engagement"]) for r in reg) <= dt.date(2025, 12, 31)
    check(
        catalogue,
        {
            "opah_ru_dwellings_subsidised": s(opah, "nb_logements"),
            "opah_ru_agglo_aid": s(opah, "aide_agglo_eur"),
            "opah_ru_anah_aid": s(opah, "aide_anah_eur"),
            "opah_ru_works_generated": s(opah, "montant_travaux_eur"),
            "mpr_accompanied_owners": len(mpr),
            "mpr_anah_funding": s(mpr, "aide_anah_eur"),
            "mpr_agglo_own_funds": s(mpr, "aide_agglo_eur"),
            "mpa_adapted_dwellings": s(mpa, "nb_logements"),
            "mpa_anah_credits": s(mpa, "aide_anah_eur"),
            "mpa_agglo_subsidy": s(mpa, "aide_agglo_eur"),
            "mpa_works_amount": s(mpa, "montant_travaux_eur"),
        },
    )
    # the 2024 register is the 2025 one cut at 31/12/2024
    reg24 = read_rows(src(demo_dir, 2024, "amelioration_habitat"), ["id_dossier", "dispositif"])
    assert {r["id_dossier"] for r in reg24} == {
        r["id_dossier"] for r in reg if _date(r["date_engagement"]).year <= 2024
    }

    permis = read_rows(src(demo_dir, 2025, "permis_de_louer"), ["commune", "date_adhesion"])
    assert all(_num(r["autorisations"]) <= _num(r["demandes"]) for r in permis)
    check(
        catalogue,
        {
            "rental_permit_communes": len(permis),
            "rental_permit_new_communes": sum(
                _date(r["date_adhesion"]).year == 2025 for r in permis
            ),
            "rental_permit_dwellings_in_scope": s(permis, "logements_concernes"),
            "rental_permits_granted": s(permis, "autorisations"),
            "rental_permit_requests": s(permis, "demandes"),
        },
    )
    social = read_rows(src(demo_dir, 2025, "logements_sociaux"), ["id_operation", "type_operation"])

    def units(t):
        return sum(
            s([r], "nb_plai") + s([r], "nb_plus") + s([r], "nb_pls")
            for r in social
            if r["type_operation"] == t
        )

    check(
        catalogue,
        {
            "social_housing_new_programmed": units("NEUF"),
            "social_housing_acquired_improved_programmed": units("ACQUIS_AMELIORE"),
            "social_housing_state_delegated_credits": s(social, "credits_etat_eur"),
        },
    )


# --------------------------------------------------------------------------- hr


def _months(birth: dt.date, at: dt.date) -> int:
    return (at.year - birth.year) * 12 + at.month - birth.month - (at.day < birth.day)


def test_hr_2025_reproduces_the_report(demo_dir, catalogue):
    staff = read_rows(src(demo_dir, 2025, "rh_effectifs"), ["matricule", "statut"])
    assert 1050 <= len(staff) <= 1200
    assert len({r["matricule"] for r in staff}) == len(staff)
    assert all(re.fullmatch(r"M\d{6}", r["matricule"]) for r in staff)
    obs = {_date(r["date_observation"]) for r in staff}
    assert obs == {dt.date(2025, 10, 1)}
    perm = [r for r in staff if r["statut"] != "NON_PERMANENT"]
    ages = [_months(_date(r["date_naissance"]), dt.date(2025, 10, 1)) for r in staff]
    assert min(ages) >= 18 * 12 and max(ages) < 67 * 12
    counts = Counter(r["statut"] for r in staff)
    check(
        catalogue,
        {
            "permanent_staff": len(perm),
            "apprenticeship_contracts": counts["APPRENTI"],
            "private_law_contracts": counts["DROIT_PRIVE"],
            "average_agent_age": round(
                sum(_months(_date(r["date_naissance"]), dt.date(2025, 10, 1)) for r in perm)
                / len(perm)
                / 12,
                2,
            ),
        },
    )
    women = 100 * sum(r["sexe"] == "F" for r in perm) / len(perm)
    assert 40 <= women <= 50
    training = read_rows(
        src(demo_dir, 2025, "rh_formation"), ["matricule", "date_debut", "intitule"]
    )
    orders = read_rows(src(demo_dir, 2025, "rh_arretes"), ["mois", "type_arrete", "nombre"])
    check(
        catalogue,
        {"training_days": s(training, "nb_jours"), "individual_hr_orders": s(orders, "nombre")},
    )


def test_earlier_years_are_plausible(demo_dir):
    def staff(year):
        rows = read_rows(src(demo_dir, year, "rh_effectifs"), ["matricule", "statut"])
        return sum(r["statut"] != "NON_PERMANENT" for r in rows)

    def water_km(year):
        rows = read_rows(src(demo_dir, year, "eau_reseau"), ["code_insee", "reseau", "lineaire_km"])
        return s(rows, "lineaire_km", reseau="eau_potable")

    for year in (2023, 2024):
        assert 0.85 <= staff(year) / staff(2025) <= 1.15
        assert 0.85 <= water_km(year) / water_km(2025) <= 1.0


# --------------------------------------------------------------------------- declared


def test_declared_files_hold_their_department_figures(demo_dir, catalogue):
    by_dept = defaultdict(set)
    for r in catalogue.values():
        if r["computation"] == "declared":
            by_dept[r["department"]].add(r["indicator_id"])
    for year in YEARS:
        for dept, ids in by_dept.items():
            path = demo_dir / str(year) / dept / f"indicateurs_declares_{year}.xlsx"
            rows = read_rows(path, ["indicator_id", "valeur", "date_valeur", "source"])
            assert {r["indicator_id"] for r in rows} == ids, (year, dept)
            assert len(rows) == len(ids)
            assert all(r["code_insee"] in ("", None) for r in rows)
            assert all(_date(r["date_valeur"]).year == year for r in rows)
            assert all(str(r["source"]).startswith("Direction") for r in rows)
            if year == 2025:
                check(catalogue, {r["indicator_id"]: _num(r["valeur"]) for r in rows})
            else:  # targets do not move between campaigns
                for r in rows:
                    if catalogue[r["indicator_id"]]["kind"] == "target":
                        assert _num(r["valeur"]) == float(
                            catalogue[r["indicator_id"]]["published_2025"]
                        )
