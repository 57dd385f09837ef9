-- Valeurs des 15 indicateurs dérivés de la direction waste, au format commun
-- (voir la macro unpivot_indicator_groups) : les calculs sont dans les modèles larges
-- int_waste__*_metrics, rangés ici par modèle. Date de valeur : 31 décembre de l'année.
{{ unpivot_indicator_groups([
    {
        'model': 'int_waste__prevention_metrics',
        'source_ids': 'dechets_prevention',
        'by_commune': true,
        'indicators': [
            'composters_distributed',
            'bin_checks_communes',
            'bins_checked',
            'households_sensitised_sorting_errors',
            'waste_prevention_stands',
            'waste_prevention_citizens_sensitised',
            'waste_pupils_sensitised',
            'waste_workshops',
            'waste_workshop_participants',
        ],
    },
    {
        'model': 'int_waste__collection_metrics',
        'source_ids': 'dechets_collecte',
        'by_commune': true,
        'indicators': ['residual_waste_per_inhabitant', 'kerbside_sorted_waste_tonnage'],
    },
    {
        'model': 'int_waste__recycling_centre_metrics',
        'source_ids': 'dechetteries_apports',
        'by_commune': false,
        'indicators': ['recycling_centre_tonnage', 'recycling_centre_recovery_rate'],
    },
    {
        'model': 'int_waste__household_waste_metrics',
        'source_ids': 'dechets_collecte,dechetteries_apports',
        'by_commune': false,
        'indicators': ['household_waste_tonnage', 'household_waste_per_inhabitant'],
    },
]) }}
