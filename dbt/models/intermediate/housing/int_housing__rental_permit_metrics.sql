-- Indicateurs du permis de louer (source permis_de_louer, une ligne par commune adhérente),
-- en colonnes nommées comme les indicateurs du catalogue. Une ligne par année livrée et par
-- commune membre (0 pour une commune non adhérente) plus la ligne d'agglomération
-- (code_insee NULL), somme des communes. Le nombre de communes adhérentes et de nouvelles
-- communes n'existe qu'à la maille agglomération (NULL sur les lignes communales).
-- Une année sans livraison en vigueur ne donne aucune ligne (macro commune_breakdown).

{%- set metrics = {
    'rental_permit_dwellings_in_scope': "sum(dwellings_in_scope)",
    'rental_permits_granted': "sum(permits_granted)",
    'rental_permit_requests': "sum(permit_requests)",
} %}
{#- Par commune : 1 si elle est dans le fichier (resp. y a adhéré dans l'année), 0 sinon. #}
{%- set agglomeration_metrics = {
    'rental_permit_communes': "count(distinct code_insee)",
    'rental_permit_new_communes':
        "case when extract(year from min(membership_date)) = campaign_year then 1 else 0 end",
} %}

{{ commune_breakdown(
    'permis_de_louer',
    ref('stg_permis_de_louer'),
    metrics,
    agglomeration_metrics=agglomeration_metrics,
) }}
