"""The naive peer of the benchmark: what a capable analyst would write in one afternoon.

One pandas script: ``pandas.read_excel`` on every delivered workbook, a header search, a
few vectorised clean-ups (French numbers, commune names), then the 61 derived indicators
of the catalogue with groupbys, plus the declared figures passed through. No validation
(a wrong cell becomes NaN or is silently dropped), no lineage, no history, no privacy, no
tests: it is the floor of "compute the same numbers with pandas", not a competitor in
features. ``bench/run.py`` checks that its values equal the project's.

    python bench/naive_peer.py SOURCES_DIR --communes communes.csv [--engine openpyxl]
                               [--out values.csv]

Prints one JSON line: seconds (reading, computing), rows read, values computed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import unicodedata
from pathlib import Path

import pandas as pd

# Headers that identify the data sheet of each detailed source (normalised).
KEY_HEADERS = {
    "eau_udi": {"udi", "nom_udi"},
    "eau_volumes": {"udi", "volume_produit_m3"},
    "eau_reseau": {"reseau", "lineaire_km"},
    "eau_qualite": {"id_prelevement", "parametre"},
    "assainissement_activite": {"controles_spanc_vente"},
    "dechets_collecte": {"flux", "tonnage_t"},
    "dechetteries_apports": {"decheterie", "fraction"},
    "dechets_prevention": {"id_action", "type_action"},
    "logements_sociaux": {"id_operation", "type_operation"},
    "amelioration_habitat": {"id_dossier", "dispositif"},
    "permis_de_louer": {"date_adhesion", "demandes"},
    "rh_effectifs": {"matricule", "statut"},
    "rh_formation": {"matricule", "nb_jours"},
    "rh_arretes": {"type_arrete", "nombre"},
    "indicateurs_declares": {"indicator_id", "valeur"},
}


def norm(text: object) -> str:
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return re.sub(r"[\s_]+", "_", text.strip().lower())


def commune_key(text: object) -> str:
    text = str(text).replace("œ", "oe").replace("Œ", "OE")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = re.sub(r"[-'’`.\s_]+", " ", text).split()
    subst = {"st": "saint", "ste": "sainte", "lez": "les"}
    return " ".join(subst.get(w, w) for w in words)


def number(series: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(float)
    cleaned = (
        series.astype(str)
        .str.replace(r"[\s\u00a0\u202f]|m3|m³|€|%|t$", "", regex=True)
        .str.replace(",", ".", regex=False)
    )
    return pd.to_numeric(cleaned, errors="coerce")


def read_source(path: Path, source_id: str, engine: str) -> pd.DataFrame:
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False, na_values=[""])
        frame.columns = [norm(c) for c in frame.columns]
        return _drop_totals(frame)
    wanted = KEY_HEADERS[source_id]
    sheets = pd.read_excel(path, sheet_name=None, header=None, engine=engine)
    for frame in sheets.values():
        for i in range(min(12, len(frame))):
            header = [norm(c) for c in frame.iloc[i].tolist()]
            if wanted <= set(header):
                data = frame.iloc[i + 1 :].copy()
                data.columns = header
                data = data.loc[:, [c for c in data.columns if c and c != "nan"]]
                return _drop_totals(data.dropna(how="all"))
    raise ValueError(f"{path}: no data sheet")


def _drop_totals(frame: pd.DataFrame) -> pd.DataFrame:
    first = frame.iloc[:, 0].astype(str).str.strip().str.lower()
    return frame[~first.str.startswith("total")]


def read_campaign(sources: Path, engine: str) -> dict[tuple[int, str], pd.DataFrame]:
    frames: dict[tuple[int, str], list[pd.DataFrame]] = {}
    for path in sorted(sources.glob("[0-9][0-9][0-9][0-9]/*/*")):
        if path.suffix.lower() not in (".xlsx", ".csv") or path.name.endswith(".rejet.csv"):
            continue
        source_id = next((s for s in KEY_HEADERS if path.name.startswith(s)), None)
        if source_id is None:
            continue
        frame = read_source(path, source_id, engine)
        frame["_department"] = path.parent.name
        frames.setdefault((int(path.parent.parent.name), source_id), []).append(frame)
    return {k: pd.concat(v, ignore_index=True) for k, v in frames.items()}


class Communes:
    def __init__(self, path: Path):
        ref = pd.read_csv(path, dtype={"code_insee": str})
        self.codes = ref["code_insee"].tolist()
        self.population = ref.set_index("code_insee")["population_municipale"].astype(float)
        self.by_key = {
            commune_key(n): c for n, c in zip(ref["nom"], ref["code_insee"], strict=True)
        }

    def resolve(self, frame: pd.DataFrame) -> pd.Series:
        if "code_insee" in frame.columns:
            return frame["code_insee"].map(
                lambda v: None if pd.isna(v) else str(int(v)) if isinstance(v, float) else str(v)
            )
        names = frame["commune"]
        keys = {v: self.by_key.get(commune_key(v)) for v in names.dropna().unique()}
        return names.map(keys)


def compute(data: dict[tuple[int, str], pd.DataFrame], communes: Communes) -> pd.DataFrame:
    out: list[pd.DataFrame] = []

    def emit(year: int, indicator: str, value: float, code: str | None = None) -> None:
        out.append(
            pd.DataFrame(
                {
                    "indicator_id": [indicator],
                    "year": [year],
                    "code_insee": [code],
                    "value": [float(value)],
                }
            )
        )

    def emit_by_commune(
        year: int, indicator: str, by_code: pd.Series, total: float | None = None
    ) -> None:
        values = by_code.reindex(communes.codes).fillna(0.0)
        frame = pd.DataFrame(
            {
                "indicator_id": indicator,
                "year": year,
                "code_insee": values.index,
                "value": values.to_numpy(dtype=float),
            }
        )
        out.append(frame)
        emit(year, indicator, values.sum() if total is None else total)

    years = sorted({y for y, _ in data})
    for year in years:
        get = data.get
        # --- water
        if (f := get((year, "eau_reseau"))) is not None:
            f = f.assign(
                code=communes.resolve(f),
                reseau=f["reseau"].str.strip().str.lower(),
                mode=f["mode_gestion"].str.strip().str.lower(),
            )
            for col in (
                "lineaire_km",
                "lineaire_unitaire_km",
                "lineaire_renouvele_km",
                "nb_abonnes",
                "investissement_eur",
            ):
                f[col] = number(f[col]).fillna(0.0)
            water, sewer = f[f.reseau == "eau_potable"], f[f.reseau == "assainissement"]
            emit_by_commune(
                year, "sewer_network_length", sewer.groupby("code")["lineaire_km"].sum()
            )
            emit_by_commune(
                year,
                "sewer_network_combined_length",
                sewer.groupby("code")["lineaire_unitaire_km"].sum(),
            )
            emit_by_commune(
                year, "water_network_length", water.groupby("code")["lineaire_km"].sum()
            )
            emit_by_commune(
                year,
                "water_network_in_house_length",
                water[water["mode"] == "regie"].groupby("code")["lineaire_km"].sum(),
            )
            emit_by_commune(
                year, "sanitation_network_capex", sewer.groupby("code")["investissement_eur"].sum()
            )
            emit_by_commune(
                year, "water_network_capex", water.groupby("code")["investissement_eur"].sum()
            )
            emit_by_commune(
                year,
                "water_network_renewed_length",
                water.groupby("code")["lineaire_renouvele_km"].sum(),
            )
            emit_by_commune(year, "water_subscribers", water.groupby("code")["nb_abonnes"].sum())
            emit_by_commune(
                year, "sanitation_subscribers", sewer.groupby("code")["nb_abonnes"].sum()
            )
            emit(
                year,
                "water_network_renewal_rate",
                100 * water["lineaire_renouvele_km"].sum() / water["lineaire_km"].sum(),
            )
        if (f := get((year, "assainissement_activite"))) is not None:
            f = f.assign(code=communes.resolve(f))
            for col, ind in (
                ("controles_spanc_vente", "sanitation_property_sale_inspections"),
                ("demandes_eaux_pluviales", "stormwater_parcel_requests"),
                ("branchements_eu_crees", "wastewater_connection_boxes_created"),
            ):
                emit_by_commune(year, ind, number(f[col]).groupby(f["code"]).sum())
        if (f := get((year, "eau_udi"))) is not None:
            emit(
                year,
                "udi_bethunois_communes_served",
                (f["udi"].str.strip() == "UDI-BETHUNOIS").sum(),
            )
        if (f := get((year, "eau_volumes"))) is not None:
            produced = number(f["volume_produit_m3"]).sum()
            imported = number(f["volume_importe_m3"]).fillna(0).sum()
            exported = number(f["volume_exporte_m3"]).fillna(0).sum()
            consumed = number(f["volume_consomme_autorise_m3"]).sum()
            emit(year, "water_volume_produced", produced)
            emit(year, "water_network_yield", 100 * (consumed + exported) / (produced + imported))
        if (f := get((year, "eau_qualite"))) is not None:
            declared = f["conforme"].astype(str).str.strip().str.lower()
            ok = declared.eq("oui") | (
                ~declared.eq("non") & (number(f["resultat"]) <= number(f["limite_qualite"]))
            )
            samples = (
                ok.groupby([f["id_prelevement"], f["type_analyse"].str.strip().str.lower()])
                .min()
                .reset_index(name="ok")
            )
            for kind, ind in (
                ("microbiologique", "water_microbiological_conformity"),
                ("physico-chimique", "water_physicochemical_conformity"),
            ):
                s = samples[samples["type_analyse"] == kind]["ok"]
                emit(year, ind, 100 * s.mean())
        # --- waste
        collected = deposited = None
        if (f := get((year, "dechets_collecte"))) is not None:
            f = f.assign(
                code=communes.resolve(f),
                t=number(f["tonnage_t"]),
                flux=f["flux"].str.strip().str.upper(),
            )
            collected = f["t"].sum()
            omr = f[f.flux == "OMR"].groupby("code")["t"].sum().reindex(communes.codes).fillna(0)
            emit_by_commune(
                year,
                "residual_waste_per_inhabitant",
                1000 * omr / communes.population,
                1000 * omr.sum() / communes.population.sum(),
            )
            emit_by_commune(
                year,
                "kerbside_sorted_waste_tonnage",
                f[f.flux.isin(["EMB_PAP", "VERRE", "BIODECHETS"])].groupby("code")["t"].sum(),
            )
        if (f := get((year, "dechetteries_apports"))) is not None:
            t = number(f["tonnage_t"])
            deposited = t.sum()
            emit(year, "recycling_centre_tonnage", deposited)
            emit(
                year,
                "recycling_centre_recovery_rate",
                100 * t[f["filiere"].str.strip().str.upper() != "ENFOUISSEMENT"].sum() / deposited,
            )
        if collected is not None and deposited is not None:
            emit(year, "household_waste_tonnage", collected + deposited)
            emit(
                year,
                "household_waste_per_inhabitant",
                1000 * (collected + deposited) / communes.population.sum(),
            )
        if (f := get((year, "dechets_prevention"))) is not None:
            f = f.assign(
                code=communes.resolve(f),
                q=number(f["quantite"]).fillna(0),
                h=number(f["foyers_sensibilises"]).fillna(0),
                kind=f["type_action"].str.strip().str.upper(),
            )
            for ind, kind, col in (
                ("composters_distributed", "COMPOSTEUR", "q"),
                ("bins_checked", "CONTROLE_BACS", "q"),
                ("households_sensitised_sorting_errors", "CONTROLE_BACS", "h"),
                ("waste_prevention_citizens_sensitised", "STAND", "q"),
                ("waste_pupils_sensitised", "ANIMATION_SCOLAIRE", "q"),
                ("waste_workshop_participants", "ATELIER", "q"),
            ):
                part = f[f.kind == kind]
                emit_by_commune(year, ind, part.groupby("code")[col].sum(), part[col].sum())
            for ind, kind in (("waste_prevention_stands", "STAND"), ("waste_workshops", "ATELIER")):
                part = f[f.kind == kind]
                emit_by_commune(
                    year, ind, part.groupby("code").size().astype(float), float(len(part))
                )
            emit(year, "bin_checks_communes", f[f.kind == "CONTROLE_BACS"]["code"].nunique())
        # --- housing
        if (f := get((year, "amelioration_habitat"))) is not None:
            f = f.assign(
                code=communes.resolve(f),
                scheme=f["dispositif"].str.strip().str.upper(),
                y=pd.to_datetime(f["date_engagement"], dayfirst=True, format="mixed").dt.year,
            )
            for col in ("nb_logements", "aide_agglo_eur", "aide_anah_eur", "montant_travaux_eur"):
                f[col] = number(f[col])
            opah = f[(f.scheme == "OPAH_RU") & f.y.between(2022, year)]
            mpr = f[(f.scheme == "MA_PRIME_RENOV_ACCOMPAGNE") & (f.y == year)]
            mpa = f[(f.scheme == "MA_PRIME_ADAPT") & (f.y == year)]
            for ind, part, col in (
                ("opah_ru_dwellings_subsidised", opah, "nb_logements"),
                ("opah_ru_agglo_aid", opah, "aide_agglo_eur"),
                ("opah_ru_anah_aid", opah, "aide_anah_eur"),
                ("opah_ru_works_generated", opah, "montant_travaux_eur"),
                ("mpr_anah_funding", mpr, "aide_anah_eur"),
                ("mpr_agglo_own_funds", mpr, "aide_agglo_eur"),
                ("mpa_adapted_dwellings", mpa, "nb_logements"),
                ("mpa_anah_credits", mpa, "aide_anah_eur"),
                ("mpa_agglo_subsidy", mpa, "aide_agglo_eur"),
                ("mpa_works_amount", mpa, "montant_travaux_eur"),
            ):
                emit_by_commune(year, ind, part.groupby("code")[col].sum())
            emit_by_commune(
                year, "mpr_accompanied_owners", mpr.groupby("code").size().astype(float)
            )
        if (f := get((year, "logements_sociaux"))) is not None:
            f = f.assign(code=communes.resolve(f), kind=f["type_operation"].str.strip().str.upper())
            f["n"] = number(f["nb_plai"]) + number(f["nb_plus"]) + number(f["nb_pls"])
            emit_by_commune(
                year,
                "social_housing_new_programmed",
                f[f.kind == "NEUF"].groupby("code")["n"].sum(),
            )
            emit_by_commune(
                year,
                "social_housing_acquired_improved_programmed",
                f[f.kind == "ACQUIS_AMELIORE"].groupby("code")["n"].sum(),
            )
            emit_by_commune(
                year,
                "social_housing_state_delegated_credits",
                number(f["credits_etat_eur"]).groupby(f["code"]).sum(),
            )
        if (f := get((year, "permis_de_louer"))) is not None:
            f = f.assign(code=communes.resolve(f))
            emit(year, "rental_permit_communes", f["code"].nunique())
            emit(
                year,
                "rental_permit_new_communes",
                (
                    pd.to_datetime(f["date_adhesion"], dayfirst=True, format="mixed").dt.year
                    == year
                ).sum(),
            )
            for col, ind in (
                ("logements_concernes", "rental_permit_dwellings_in_scope"),
                ("autorisations", "rental_permits_granted"),
                ("demandes", "rental_permit_requests"),
            ):
                emit_by_commune(year, ind, number(f[col]).groupby(f["code"]).sum())
        # --- human resources
        permanent_count = None
        if (f := get((year, "rh_effectifs"))) is not None:
            status = f["statut"].str.strip().str.upper()
            permanent = f[status != "NON_PERMANENT"]
            permanent_count = len(permanent)
            emit(year, "permanent_staff", permanent_count)
            emit(year, "apprenticeship_contracts", (status == "APPRENTI").sum())
            emit(year, "private_law_contracts", (status == "DROIT_PRIVE").sum())
            birth = pd.to_datetime(permanent["date_naissance"], dayfirst=True, format="mixed")
            at = pd.to_datetime(permanent["date_observation"], dayfirst=True, format="mixed")
            months = (
                (at.dt.year - birth.dt.year) * 12
                + (at.dt.month - birth.dt.month)
                - (at.dt.day < birth.dt.day)
            )
            emit(year, "average_agent_age", months.mean() / 12)
            emit(
                year,
                "staff_women_share",
                100 * (permanent["sexe"].str.strip().str.upper() == "F").mean(),
            )
            emit(year, "staff_fte", number(permanent["quotite"]).sum())
        if (f := get((year, "rh_formation"))) is not None:
            days = number(f["nb_jours"]).sum()
            emit(year, "training_days", days)
            if permanent_count:
                emit(year, "training_days_per_agent", days / permanent_count)
        if (f := get((year, "rh_arretes"))) is not None:
            emit(year, "individual_hr_orders", number(f["nombre"]).sum())
        # --- declared figures, passed through
        if (f := get((year, "indicateurs_declares"))) is not None:
            code = communes.resolve(f) if ("code_insee" in f or "commune" in f) else None
            out.append(
                pd.DataFrame(
                    {
                        "indicator_id": f["indicator_id"].astype(str).str.strip(),
                        "year": year,
                        "code_insee": code,
                        "value": number(f["valeur"]),
                    }
                )
            )
    return pd.concat(out, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("sources", type=Path)
    parser.add_argument("--communes", type=Path, required=True)
    parser.add_argument(
        "--engine", default="openpyxl", help="moteur de read_excel (openpyxl = défaut de pandas)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    data = read_campaign(args.sources, args.engine)
    read_seconds = time.perf_counter() - started
    values = compute(data, Communes(args.communes))
    if args.out:
        values.to_csv(args.out, index=False)
    total = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": round(total, 3),
                "read_seconds": round(read_seconds, 3),
                "rows_read": int(sum(len(f) for f in data.values())),
                "values": len(values),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
