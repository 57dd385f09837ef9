"""Dagster assets: ingestion (one per contract), dbt models, atypical values."""
