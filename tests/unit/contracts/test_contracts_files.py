"""The contract files (sources/contracts/*.yml) match the collection kit.

The kit (../shared/spec/sources.md) is copied by hand in KIT below: for every
source, its department, its columns (name, type) in the kit's order, its grain
and its enumerations. Each contract must hold exactly these columns (none
renamed, dropped or added), this grain and department, and only the keys and
rule kinds documented in docs/contracts.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CONTRACTS_DIR = ROOT / "sources" / "contracts"
CONTRACTS_DOC = ROOT / "docs" / "contracts.md"

# source_id -> (department, [(column, type)], grain)
KIT: dict[str, tuple[str, list[tuple[str, str]], list[str]]] = {
    "eau_udi": (
        "water",
        [("udi", "text"), ("nom_udi", "text"), ("code_insee", "commune")],
        ["code_insee"],
    ),
    "eau_volumes": (
        "water",
        [
            ("udi", "text"),
            ("mois", "month"),
            ("volume_produit_m3", "number"),
            ("volume_importe_m3", "number"),
            ("volume_exporte_m3", "number"),
            ("volume_consomme_autorise_m3", "number"),
        ],
        ["udi", "mois"],
    ),
    "eau_reseau": (
        "water",
        [
            ("code_insee", "commune"),
            ("reseau", "text"),
            ("mode_gestion", "text"),
            ("lineaire_km", "number"),
            ("lineaire_unitaire_km", "number"),
            ("lineaire_renouvele_km", "number"),
            ("nb_abonnes", "integer"),
            ("investissement_eur", "number"),
        ],
        ["code_insee", "reseau"],
    ),
    "eau_qualite": (
        "water",
        [
            ("id_prelevement", "text"),
            ("date_prelevement", "date"),
            ("udi", "text"),
            ("type_analyse", "text"),
            ("parametre", "text"),
            ("resultat", "number"),
            ("unite", "text"),
            ("limite_qualite", "number"),
            ("conforme", "yes_no"),
        ],
        ["id_prelevement", "parametre"],
    ),
    "assainissement_activite": (
        "water",
        [
            ("code_insee", "commune"),
            ("mois", "month"),
            ("controles_spanc_vente", "integer"),
            ("branchements_eu_crees", "integer"),
            ("demandes_eaux_pluviales", "integer"),
        ],
        ["code_insee", "mois"],
    ),
    "dechets_collecte": (
        "waste",
        [
            ("code_insee", "commune"),
            ("mois", "month"),
            ("flux", "text"),
            ("tonnage_t", "number"),
        ],
        ["code_insee", "mois", "flux"],
    ),
    "dechetteries_apports": (
        "waste",
        [
            ("decheterie", "text"),
            ("mois", "month"),
            ("fraction", "text"),
            ("filiere", "text"),
            ("tonnage_t", "number"),
        ],
        ["decheterie", "mois", "fraction"],
    ),
    "dechets_prevention": (
        "waste",
        [
            ("id_action", "text"),
            ("date", "date"),
            ("code_insee", "commune"),
            ("type_action", "text"),
            ("quantite", "integer"),
            ("foyers_sensibilises", "integer"),
        ],
        ["id_action"],
    ),
    "logements_sociaux": (
        "housing",
        [
            ("id_operation", "text"),
            ("code_insee", "commune"),
            ("bailleur", "text"),
            ("type_operation", "text"),
            ("nb_plai", "integer"),
            ("nb_plus", "integer"),
            ("nb_pls", "integer"),
            ("credits_etat_eur", "number"),
            ("aide_agglo_eur", "number"),
            ("date_programmation", "date"),
        ],
        ["id_operation"],
    ),
    "amelioration_habitat": (
        "housing",
        [
            ("id_dossier", "text"),
            ("code_insee", "commune"),
            ("dispositif", "text"),
            ("nb_logements", "integer"),
            ("aide_agglo_eur", "number"),
            ("aide_anah_eur", "number"),
            ("montant_travaux_eur", "number"),
            ("date_engagement", "date"),
        ],
        ["id_dossier"],
    ),
    "permis_de_louer": (
        "housing",
        [
            ("code_insee", "commune"),
            ("date_adhesion", "date"),
            ("logements_concernes", "integer"),
            ("demandes", "integer"),
            ("autorisations", "integer"),
        ],
        ["code_insee"],
    ),
    "rh_effectifs": (
        "hr",
        [
            ("matricule", "text"),
            ("date_observation", "date"),
            ("date_naissance", "date"),
            ("sexe", "text"),
            ("statut", "text"),
            ("categorie", "text"),
            ("direction", "text"),
            ("quotite", "number"),
            ("date_entree", "date"),
        ],
        ["matricule"],
    ),
    "rh_formation": (
        "hr",
        [
            ("matricule", "text"),
            ("date_debut", "date"),
            ("nb_jours", "number"),
            ("intitule", "text"),
            ("organisme", "text"),
        ],
        ["matricule", "date_debut", "intitule"],
    ),
    "rh_arretes": (
        "hr",
        [("mois", "month"), ("type_arrete", "text"), ("nombre", "integer")],
        ["mois", "type_arrete"],
    ),
    "indicateurs_declares": (
        "any",
        [
            ("indicator_id", "text"),
            ("code_insee", "commune"),
            ("valeur", "number"),
            ("date_valeur", "date"),
            ("commentaire", "text"),
            ("source", "text"),
        ],
        ["indicator_id", "code_insee"],
    ),
}

# (source_id, column) -> the kit's enumerated values
KIT_ALLOWED: dict[tuple[str, str], list[str]] = {
    ("eau_reseau", "reseau"): ["eau_potable", "assainissement"],
    ("eau_reseau", "mode_gestion"): ["regie", "delegation"],
    ("eau_qualite", "type_analyse"): ["microbiologique", "physico-chimique"],
    ("dechets_collecte", "flux"): ["OMR", "EMB_PAP", "VERRE", "BIODECHETS", "ENCOMBRANTS"],
    ("dechetteries_apports", "fraction"): [
        "BOIS",
        "PLATRE",
        "GRAVATS",
        "DECHETS_VERTS",
        "DEEE",
        "CARTON",
        "FERRAILLE",
        "MOBILIER",
        "TOUT_VENANT",
        "DDS",
        "AUTRE",
    ],
    ("dechetteries_apports", "filiere"): [
        "REEMPLOI",
        "VALORISATION_MATIERE",
        "VALORISATION_ORGANIQUE",
        "VALORISATION_ENERGETIQUE",
        "ENFOUISSEMENT",
    ],
    ("dechets_prevention", "type_action"): [
        "CONTROLE_BACS",
        "COMPOSTEUR",
        "ATELIER",
        "ANIMATION_SCOLAIRE",
        "STAND",
    ],
    ("logements_sociaux", "type_operation"): ["NEUF", "ACQUIS_AMELIORE"],
    ("amelioration_habitat", "dispositif"): [
        "OPAH_RU",
        "MA_PRIME_ADAPT",
        "MA_PRIME_RENOV_ACCOMPAGNE",
        "AUTRE",
    ],
    ("rh_effectifs", "sexe"): ["F", "M"],
    ("rh_effectifs", "statut"): [
        "TITULAIRE",
        "STAGIAIRE",
        "CONTRACTUEL_PERMANENT",
        "APPRENTI",
        "DROIT_PRIVE",
        "NON_PERMANENT",
    ],
    ("rh_effectifs", "categorie"): ["A", "B", "C"],
}

# Columns the kit marks optional ("optional", "empty = 0", "or empty for ...").
KIT_OPTIONAL: set[tuple[str, str]] = {
    ("eau_volumes", "volume_importe_m3"),
    ("eau_volumes", "volume_exporte_m3"),
    ("eau_reseau", "lineaire_unitaire_km"),
    ("eau_qualite", "conforme"),
    ("dechets_prevention", "code_insee"),
    ("dechets_prevention", "foyers_sensibilises"),
    ("rh_effectifs", "categorie"),
    ("rh_formation", "organisme"),
    ("indicateurs_declares", "code_insee"),
    ("indicateurs_declares", "commentaire"),
}

# every HR source (rh_arretes too: its counts are often of fewer than 5 agents)
PERSONAL = {"rh_effectifs", "rh_formation", "rh_arretes"}

# What docs/contracts.md documents (checked against the doc's text below).
TOP_KEYS = {
    "source_id",
    "department",
    "direction_fr",
    "title_fr",
    "description_fr",
    "grain",
    "sensitivity",
    "columns",
    "rules",
}
COLUMN_KEYS = {
    "name",
    "type",
    "required",
    "default",
    "description_fr",
    "unit",
    "min",
    "max",
    "min_exclusive",
    "max_exclusive",
    "allow_negative",
    "step",
    "allowed",
    "unique",
    "date_range",
    "not_after",
    "privacy",
    "age_years_min",
    "age_years_max",
}
TYPES = {"text", "integer", "number", "date", "month", "commune", "yes_no"}
RULE_KEYS = {
    "references": ({"column", "source"}, {"source_column"}),
    "covers_all_communes": (set(), set()),
    "column_le": ({"column", "other"}, set()),
    "constant": ({"column"}, set()),
    "required_unless": ({"column", "other", "values"}, set()),
    "declared_indicator": ({"column"}, set()),
}
DATE_RANGE_KEYS = {"min_year", "not_future"}


def load(source_id: str) -> dict:
    with open(CONTRACTS_DIR / f"{source_id}.yml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def test_one_file_per_kit_source() -> None:
    assert sorted(p.stem for p in CONTRACTS_DIR.glob("*.yml")) == sorted(KIT)


def test_documented_vocabulary_is_in_the_doc() -> None:
    doc = CONTRACTS_DOC.read_text(encoding="utf-8")
    prose = re.sub(r"```.*?```", "", doc, flags=re.S)  # inline `...` spans only
    quoted = {w for span in re.findall(r"`([^`]+)`", prose) for w in re.findall(r"[a-z_]+", span)}
    in_yaml_example = set(re.findall(r"^\s*-?\s*([a-z_]+):", doc, flags=re.M))
    words = quoted | in_yaml_example
    for key in TOP_KEYS | COLUMN_KEYS | TYPES | set(RULE_KEYS) | DATE_RANGE_KEYS:
        assert key in words, f"{key!r} is not documented in docs/contracts.md"
    for required, optional in RULE_KEYS.values():
        for key in required | optional:
            assert key in words, f"rule key {key!r} is not documented"


@pytest.mark.parametrize("source_id", sorted(KIT))
def test_contract_matches_kit(source_id: str) -> None:
    department, kit_columns, grain = KIT[source_id]
    c = load(source_id)

    assert set(c) <= TOP_KEYS, f"undocumented keys: {set(c) - TOP_KEYS}"
    assert c["source_id"] == source_id
    assert c["department"] == department
    assert c["grain"] == grain
    assert c["sensitivity"] == ("personal" if source_id in PERSONAL else "public")
    for key in ("direction_fr", "title_fr", "description_fr"):
        assert isinstance(c[key], str) and c[key].strip()

    columns = c["columns"]
    assert [(col["name"], col["type"]) for col in columns] == kit_columns
    names = [col["name"] for col in columns]
    assert len(names) == len(set(names))
    assert set(grain) <= set(names)

    for col in columns:
        where = f"{source_id}.{col['name']}"
        assert set(col) <= COLUMN_KEYS, f"{where}: undocumented keys {set(col) - COLUMN_KEYS}"
        assert col["type"] in TYPES
        assert isinstance(col.get("description_fr"), str) and col["description_fr"].strip(), where
        optional = (source_id, col["name"]) in KIT_OPTIONAL
        assert col.get("required", True) is (not optional), where
        if "default" in col:
            assert col.get("required") is False, f"{where}: a default needs required: false"
        expected = KIT_ALLOWED.get((source_id, col["name"]))
        if expected is None:
            assert "allowed" not in col, f"{where}: the kit gives no enumeration"
        else:
            assert col["allowed"] == expected, where
            assert all(isinstance(v, str) for v in col["allowed"]), where
        if "date_range" in col:
            assert col["type"] in {"date", "month"}, where
            dr = col["date_range"]
            assert dr in ("campaign_year", "any") or (
                isinstance(dr, dict) and set(dr) <= DATE_RANGE_KEYS
            ), where
        if "not_after" in col:
            assert col["not_after"] in names and col["not_after"] != col["name"], where
        if "privacy" in col:
            p = col["privacy"]
            assert p == "pseudonymise" or (
                isinstance(p, dict) and set(p) == {"age_months_at"} and p["age_months_at"] in names
            ), where
            assert source_id in PERSONAL, where
        for key in ("min", "max", "min_exclusive", "max_exclusive", "step"):
            if key in col:
                assert col["type"] in {"integer", "number"}, where
                assert isinstance(col[key], (int, float)) and not isinstance(col[key], bool)

    for rule in c.get("rules") or []:
        kind = rule["kind"]
        assert kind in RULE_KEYS, f"{source_id}: undocumented rule kind {kind!r}"
        required, optional = RULE_KEYS[kind]
        keys = set(rule) - {"kind"}
        assert required <= keys <= required | optional, f"{source_id}: {kind} keys {keys}"
        for key in ("column", "other"):
            if key in rule:
                assert rule[key] in names, f"{source_id}: {kind}.{key} {rule[key]!r}"
        if kind == "references":
            assert rule["source"] in KIT
            target = [col["name"] for col in load(rule["source"])["columns"]]
            assert rule.get("source_column", rule["column"]) in target


# Details of the kit that the generic checks above do not pin down.
def _col(source_id: str, name: str) -> dict:
    return next(col for col in load(source_id)["columns"] if col["name"] == name)


def _rules(source_id: str) -> list[dict]:
    return load(source_id).get("rules") or []


def test_kit_specific_rules() -> None:
    assert {"kind": "covers_all_communes"} in _rules("eau_udi")
    for sid in ("eau_volumes", "eau_qualite"):
        refs = [r for r in _rules(sid) if r["kind"] == "references"]
        assert refs and refs[0]["column"] == "udi" and refs[0]["source"] == "eau_udi"
    assert _col("eau_reseau", "lineaire_unitaire_km")["default"] == 0
    for sid, name in [
        ("eau_volumes", "volume_importe_m3"),
        ("eau_volumes", "volume_exporte_m3"),
        ("dechets_prevention", "foyers_sensibilises"),
    ]:
        assert _col(sid, name)["default"] == 0
    assert _col("eau_qualite", "limite_qualite")["min_exclusive"] == 0
    assert _col("dechets_prevention", "id_action")["unique"] is True
    assert _col("logements_sociaux", "id_operation")["unique"] is True
    assert _col("amelioration_habitat", "id_dossier")["unique"] is True
    assert _col("amelioration_habitat", "nb_logements")["min"] == 1
    assert _col("amelioration_habitat", "date_engagement")["date_range"] == {
        "min_year": 2015,
        "not_future": True,
    }
    assert _col("permis_de_louer", "date_adhesion")["date_range"] == {
        "min_year": 2017,
        "not_future": True,
    }
    assert {"kind": "column_le", "column": "autorisations", "other": "demandes"} in _rules(
        "permis_de_louer"
    )

    assert _col("rh_effectifs", "matricule")["privacy"] == "pseudonymise"
    assert _col("rh_effectifs", "matricule")["unique"] is True
    assert _col("rh_formation", "matricule")["privacy"] == "pseudonymise"
    naissance = _col("rh_effectifs", "date_naissance")
    assert naissance["privacy"] == {"age_months_at": "date_observation"}
    assert (naissance["age_years_min"], naissance["age_years_max"]) == (15, 75)
    assert naissance["date_range"] == "any"
    assert {"kind": "constant", "column": "date_observation"} in _rules("rh_effectifs")
    assert {
        "kind": "required_unless",
        "column": "categorie",
        "other": "statut",
        "values": ["APPRENTI", "DROIT_PRIVE"],
    } in _rules("rh_effectifs")
    quotite = _col("rh_effectifs", "quotite")
    assert (quotite["min_exclusive"], quotite["max"]) == (0, 1)
    entree = _col("rh_effectifs", "date_entree")
    assert (entree["date_range"], entree["not_after"]) == ("any", "date_observation")
    nb_jours = _col("rh_formation", "nb_jours")
    assert (nb_jours["min_exclusive"], nb_jours["step"]) == (0, 0.5)

    assert _col("indicateurs_declares", "valeur")["allow_negative"] is True
    assert {"kind": "declared_indicator", "column": "indicator_id"} in _rules(
        "indicateurs_declares"
    )
    assert load("indicateurs_declares")["direction_fr"] == "Toute direction"


def test_directions() -> None:
    expected = {
        "water": "Direction du Petit Cycle de l'Eau",
        "waste": "Direction Déchets et Économie Circulaire",
        "housing": "Direction de l'Habitat",
        "hr": "Direction des Ressources Humaines",
        "any": "Toute direction",
    }
    for sid in KIT:
        c = load(sid)
        assert c["direction_fr"] == expected[c["department"]], sid
