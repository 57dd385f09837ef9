"""The contract of every departmental spreadsheet (``sources/contracts/*.yml``), read into
``Contract`` and ``Column``: the single source from which ingestion, templates, expectations
and the dbt sources are derived.
"""
