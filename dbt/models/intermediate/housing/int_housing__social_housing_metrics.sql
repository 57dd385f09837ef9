-- Indicateurs de la programmation du logement social (source logements_sociaux), en colonnes
-- nommées comme les indicateurs du catalogue. Une ligne par année livrée et par commune
-- membre (0 pour une commune sans opération) plus la ligne d'agglomération (code_insee NULL),
-- somme des communes. Toutes les opérations de la livraison en vigueur de l'année comptent
-- (leur date de programmation est dans l'année de campagne, règle du contrat).
-- Une année sans livraison en vigueur ne donne aucune ligne (macro commune_breakdown).

{%- set metrics = {
    'social_housing_new_programmed':
        "sum(plai_dwellings + plus_dwellings + pls_dwellings) filter (where operation_type = 'NEUF')",
    'social_housing_acquired_improved_programmed':
        "sum(plai_dwellings + plus_dwellings + pls_dwellings) filter (where operation_type = 'ACQUIS_AMELIORE')",
    'social_housing_state_delegated_credits': exact_sum('state_credits_eur'),
} %}

{{ commune_breakdown('logements_sociaux', ref('stg_logements_sociaux'), metrics) }}
