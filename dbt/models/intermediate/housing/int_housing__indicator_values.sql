-- Valeurs des 19 indicateurs dérivés de la direction housing, au format commun
-- (voir la macro unpivot_indicator_groups) : les calculs sont dans les modèles larges
-- int_housing__*_metrics, rangés ici par modèle. Date de valeur : 31 décembre de l'année
-- (y compris pour les cumuls OPAH-RU, arrêtés à la fin de l'année de campagne).
{{ unpivot_indicator_groups([
    {
        'model': 'int_housing__habitat_improvement_metrics',
        'source_ids': 'amelioration_habitat',
        'by_commune': true,
        'indicators': [
            'opah_ru_dwellings_subsidised',
            'opah_ru_agglo_aid',
            'opah_ru_anah_aid',
            'opah_ru_works_generated',
            'mpr_accompanied_owners',
            'mpr_anah_funding',
            'mpr_agglo_own_funds',
            'mpa_adapted_dwellings',
            'mpa_anah_credits',
            'mpa_agglo_subsidy',
            'mpa_works_amount',
        ],
    },
    {
        'model': 'int_housing__social_housing_metrics',
        'source_ids': 'logements_sociaux',
        'by_commune': true,
        'indicators': [
            'social_housing_new_programmed',
            'social_housing_acquired_improved_programmed',
            'social_housing_state_delegated_credits',
        ],
    },
    {
        'model': 'int_housing__rental_permit_metrics',
        'source_ids': 'permis_de_louer',
        'by_commune': true,
        'indicators': [
            'rental_permit_communes',
            'rental_permit_new_communes',
            'rental_permit_dwellings_in_scope',
            'rental_permits_granted',
            'rental_permit_requests',
        ],
    },
]) }}
