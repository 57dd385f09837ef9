-- Indicateurs des aides à l'amélioration de l'habitat privé (source amelioration_habitat), en
-- colonnes nommées comme les indicateurs du catalogue. Une ligne par année livrée et par
-- commune membre (0 pour une commune sans dossier) plus la ligne d'agglomération
-- (code_insee NULL), somme des communes. On lit les dossiers de la livraison en vigueur de
-- l'année de campagne, qui reprend aussi les dossiers des années précédentes :
--   - OPAH-RU, cumul 2022 -> année de campagne : dossiers dont l'année d'engagement est
--     comprise entre 2022 et l'année de campagne ;
--   - MaPrimeRénov' accompagné et MaPrimeAdapt' : dossiers dont l'année d'engagement est
--     l'année de campagne.
-- Une année sans livraison en vigueur ne donne aucune ligne (macro commune_breakdown).
-- Les montants (doubles) sont additionnés exactement (macro exact_sum) : le même total quel
-- que soit l'ordre des lignes.

{%- set commitment_year = "cast(extract(year from commitment_date) as integer)" %}
{%- set opah_ru = "aid_scheme = 'OPAH_RU' and " ~ commitment_year ~ " between 2022 and campaign_year" %}
{%- set mpr = "aid_scheme = 'MA_PRIME_RENOV_ACCOMPAGNE' and " ~ commitment_year ~ " = campaign_year" %}
{%- set mpa = "aid_scheme = 'MA_PRIME_ADAPT' and " ~ commitment_year ~ " = campaign_year" %}
{%- set metrics = {
    'opah_ru_dwellings_subsidised': "sum(dwellings) filter (where " ~ opah_ru ~ ")",
    'opah_ru_agglo_aid': exact_sum('agglo_aid_eur', opah_ru),
    'opah_ru_anah_aid': exact_sum('anah_aid_eur', opah_ru),
    'opah_ru_works_generated': exact_sum('works_amount_eur', opah_ru),
    'mpr_accompanied_owners': "count(*) filter (where " ~ mpr ~ ")",
    'mpr_anah_funding': exact_sum('anah_aid_eur', mpr),
    'mpr_agglo_own_funds': exact_sum('agglo_aid_eur', mpr),
    'mpa_adapted_dwellings': "sum(dwellings) filter (where " ~ mpa ~ ")",
    'mpa_anah_credits': exact_sum('anah_aid_eur', mpa),
    'mpa_agglo_subsidy': exact_sum('agglo_aid_eur', mpa),
    'mpa_works_amount': exact_sum('works_amount_eur', mpa),
} %}

{{ commune_breakdown('amelioration_habitat', ref('stg_amelioration_habitat'), metrics) }}
