"""Dagster assets: ingestion (one per contract), dbt models, validation checks."""
