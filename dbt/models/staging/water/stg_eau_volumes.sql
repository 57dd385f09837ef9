-- Volumes mensuels d'eau potable par UDI (livraisons en vigueur seulement).
with source as (
    {{ select_in_force('raw', 'eau_volumes') }}
),

renamed as (
    select
        {{ lineage_columns() }},
        cast(udi as varchar) as udi_code,
        cast(mois as date) as month,
        cast(volume_produit_m3 as {{ type_double() }}) as volume_produced_m3,
        cast(volume_importe_m3 as {{ type_double() }}) as volume_imported_m3,
        cast(volume_exporte_m3 as {{ type_double() }}) as volume_exported_m3,
        cast(volume_consomme_autorise_m3 as {{ type_double() }}) as volume_authorised_consumption_m3
    from source
)

select * from renamed
