"""The Dagster UI's column schema says a column's rules in the very words of the blank
templates (``contracts.wording.column_rules_fr``), written once."""

from __future__ import annotations

from dagster_project.campaign.templates.wording import constraints_fr
from dagster_project.defs.assets.ingestion import column_schema

# what only a template says: the lists its cells offer
TEMPLATE_ONLY = {"oui ou non", "une des 100 communes de l'agglomération (liste déroulante)"}


def _shown(contract) -> dict[str, list[str]]:
    return {c.name: c.constraints.other for c in column_schema(contract).columns if c.constraints}


def test_the_ui_says_every_rule_of_a_column_as_the_templates_do(contracts):
    missing = []
    for contract in contracts.values():
        shown = _shown(contract)
        for column in contract.columns:
            if not column.stored_name:  # never reaches the warehouse
                continue
            clauses = constraints_fr(column, contract, 2025).split(" ; ")
            # a rule naming the campaign's year is said for every year (next test)
            missing += [
                f"{contract.source_id}.{column.name} : {clause}"
                for clause in clauses
                if clause and clause not in TEMPLATE_ONLY and "2025" not in clause
                if clause not in shown[column.stored_name]
            ]
    assert not missing, "\n".join(missing)


def test_the_ui_says_a_campaign_rule_for_every_year(contracts):
    udi = _shown(contracts["eau_qualite"])["udi"]
    assert "doit exister dans la livraison « eau_udi » de la même campagne" in udi
    template = constraints_fr(
        contracts["eau_qualite"].column("udi"), contracts["eau_qualite"], 2026
    )
    assert "doit exister dans la livraison « eau_udi » de 2026" in template
    months = [
        rule
        for contract in contracts.values()
        for column in contract.columns
        if column.type == "month" and column.effective_date_range == "campaign_year"
        for rule in _shown(contract).get(column.stored_name, [])
    ]
    assert "mois de l'année de campagne" in months
    assert not any("2025" in rule or "2026" in rule for rule in months)
    # what the templates show in columns of their own: the default and the unit's label
    volumes = _shown(contracts["eau_volumes"])
    assert any(rule == "unité : m³" for rules in volumes.values() for rule in rules)
