"""A contract's rules on a column, in plain French, written once for every reader.

``column_rules_fr`` says what a column accepts: allowed values, bounds, dates, ages,
uniqueness, the rules across columns and sources, pseudonymisation. The blank templates show
it in their Notice and input help (``campaign.templates.wording.constraints_fr``, for one
campaign year: « dans l'année 2025 »); the Dagster UI shows it in the raw tables' column
schema (``defs.assets.ingestion.column_schema``, for every year: « dans l'année de
campagne »).
"""

from __future__ import annotations

from dagster_project.contracts.model import Column, Contract


def num_fr(value: float) -> str:
    """A bound written the French way (0,5 ; 1 000)."""
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", " ")
    return str(value).replace(".", ",")


def value_fr(value) -> str:
    """A value of the contract (a default) as a French reader writes it: numbers as ``num_fr``."""
    return num_fr(value) if isinstance(value, int | float) else str(value)


def _campaign_fr(year: int | None) -> str:
    return f"l'année {year}" if year is not None else "l'année de campagne"


def _date_rule_fr(column: Column, year: int | None) -> list[str]:
    rule = column.effective_date_range
    parts: list[str] = []
    if rule == "campaign_year":
        parts.append(
            f"mois de {_campaign_fr(year)}"
            if column.type == "month"
            else f"dans {_campaign_fr(year)}"
        )
    elif isinstance(rule, dict):
        if rule.get("min_year"):
            parts.append(f"à partir de {rule['min_year']}")
        if rule.get("not_future"):
            parts.append("jamais dans le futur")
    return parts


def _number_rules_fr(column: Column, contract: Contract) -> list[str]:
    parts: list[str] = []
    low = column.lower_bound
    if low is not None:
        parts.append(f"≥ {num_fr(low)}")
    if column.min_exclusive is not None:
        parts.append(f"> {num_fr(column.min_exclusive)}")
    if column.max is not None:
        parts.append(f"≤ {num_fr(column.max)}")
    if column.max_exclusive is not None:
        parts.append(f"< {num_fr(column.max_exclusive)}")
    if column.step:
        parts.append(f"multiple de {num_fr(column.step)}")
    if column.allow_negative and low is None and column.min_exclusive is None:
        if declared_value_column(contract) == column.name:
            parts.append(
                "négatif seulement pour les indicateurs qui l'autorisent (feuille Indicateurs)"
            )
        else:
            parts.append("valeur négative acceptée")
    return parts


def _cross_rules_fr(column: Column, contract: Contract, year: int | None) -> list[str]:
    """The contract's rules naming this column: other columns, other sources."""
    parts: list[str] = []
    campaign = str(year) if year is not None else "la même campagne"
    for rule in contract.rules_of("references"):
        if rule["column"] == column.name:
            parts.append(f"doit exister dans la livraison « {rule['source']} » de {campaign}")
    for rule in contract.rules_of("column_le"):
        if rule["column"] == column.name:
            parts.append(f"≤ « {rule['other']} » de la même ligne")
    for rule in contract.rules_of("constant"):
        if rule["column"] == column.name:
            parts.append("identique sur toutes les lignes")
    for rule in contract.rules_of("required_unless"):
        if rule["column"] == column.name:
            parts.append(
                f"vide seulement si « {rule['other']} » vaut " + " ou ".join(rule["values"])
            )
    for rule in contract.rules_of("declared_indicator"):
        if rule["column"] == column.name:
            parts.append("un identifiant de la feuille Indicateurs (indicateur de votre direction)")
    return parts


def column_rules_fr(column: Column, contract: Contract, year: int | None = None) -> list[str]:
    """What ``contract`` accepts in ``column``, in plain French, one clause per rule.

    ``year``: the campaign the reader fills (a blank template); None for every campaign
    (« dans l'année de campagne »)."""
    parts: list[str] = []
    if column.allowed is not None:
        parts.append("valeurs : " + ", ".join(column.allowed))
    if column.type in ("integer", "number"):
        parts.extend(_number_rules_fr(column, contract))
    if column.type in ("date", "month"):
        parts.extend(_date_rule_fr(column, year))
    if column.not_after:
        parts.append(f"au plus tard la date « {column.not_after} » de la même ligne")
    if column.age_reference:
        low, high = column.age_years_min, column.age_years_max
        if low is not None and high is not None:
            parts.append(
                f"âge entre {num_fr(low)} et {num_fr(high)} ans "
                f"à la date « {column.age_reference} »"
            )
    if column.unique:  # checked in each delivery; a raw table keeps several deliveries
        parts.append("valeur unique dans chaque livraison (pas de doublon)")
    parts.extend(_cross_rules_fr(column, contract, year))
    if column.is_pseudonymised:
        parts.append(
            "pseudonymisé à l'intégration : la valeur en clair n'entre pas dans l'entrepôt"
        )
    return parts


def declared_value_column(contract: Contract) -> str | None:
    """The value column of a contract of declared indicators (None for any other)."""
    rules = contract.rules_of("declared_indicator")
    return rules[0].get("value_column", "valeur") if rules else None
