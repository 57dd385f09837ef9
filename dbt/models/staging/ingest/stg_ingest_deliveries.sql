-- Journal des livraisons (toutes, acceptées ou rejetées), renommé et typé.
with source as (
    select * from {{ source('ingest', 'deliveries') }}
),

renamed as (
    select
        cast(delivery_id as varchar) as delivery_id,
        cast(campaign_year as integer) as campaign_year,
        cast(department as varchar) as department,
        cast(source_id as varchar) as source_id,
        cast(file_path as varchar) as file_path,
        cast(file_name as varchar) as file_name,
        cast(file_sha256 as varchar) as file_sha256,
        cast(received_at as timestamp) as received_at,
        cast(processed_at as timestamp) as processed_at,
        cast(outcome as varchar) as outcome,
        cast(row_count as integer) as row_count,
        cast(problem_count as integer) as problem_count,
        cast(sheet as varchar) as sheet_name,
        cast(report_path as varchar) as report_path,
        coalesce(cast(in_force as boolean), false) as is_in_force
    from source
)

select * from renamed
