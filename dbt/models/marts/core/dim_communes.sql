-- Les 100 communes membres (Code officiel géographique), noms de colonnes en anglais.
with communes as (
    select * from {{ ref('communes') }}
)

select
    cast(code_insee as varchar) as code_insee,
    cast(nom as varchar) as commune_name,
    cast(siren as varchar) as siren,
    cast(codes_postaux as varchar) as postal_codes,
    cast(population_municipale as integer) as municipal_population,
    cast(population_totale as integer) as total_population
from communes
