-- Indicateurs des actions de prévention et de sensibilisation (source dechets_prevention),
-- en colonnes nommées comme les indicateurs du catalogue. Une ligne par année livrée et par
-- commune membre (0 pour une commune sans action) plus la ligne d'agglomération
-- (code_insee NULL). Les actions sans commune (menées à l'échelle de l'agglomération) ne
-- comptent que dans la ligne d'agglomération ; bin_checks_communes n'existe qu'à cette
-- maille. Une année sans livraison en vigueur ne donne aucune ligne (macro commune_breakdown).

{%- set metrics = {
    'composters_distributed': "sum(quantity) filter (where action_type = 'COMPOSTEUR')",
    'bins_checked': "sum(quantity) filter (where action_type = 'CONTROLE_BACS')",
    'households_sensitised_sorting_errors': "sum(households_sensitised) filter (where action_type = 'CONTROLE_BACS')",
    'waste_prevention_stands': "count(*) filter (where action_type = 'STAND')",
    'waste_prevention_citizens_sensitised': "sum(quantity) filter (where action_type = 'STAND')",
    'waste_pupils_sensitised': "sum(quantity) filter (where action_type = 'ANIMATION_SCOLAIRE')",
    'waste_workshops': "count(*) filter (where action_type = 'ATELIER')",
    'waste_workshop_participants': "sum(quantity) filter (where action_type = 'ATELIER')",
} %}
{#- 1 par commune contrôlée, 0 sinon (et pour les actions sans commune) : la somme compte les communes. #}
{%- set agglomeration_metrics = {
    'bin_checks_communes': "count(distinct code_insee) filter (where action_type = 'CONTROLE_BACS')",
} %}

{{ commune_breakdown(
    'dechets_prevention',
    ref('stg_dechets_prevention'),
    metrics,
    agglomeration_metrics=agglomeration_metrics,
    rows_without_commune=true,
) }}
