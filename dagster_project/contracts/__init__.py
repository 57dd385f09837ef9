"""The contract of every departmental spreadsheet (``sources/contracts/*.yml``), read into
``Contract`` and ``Column``: the single source from which ingestion, templates, expectations
and the dbt sources are derived. ``reference`` reads the reference data beside them: the
member communes, the declared indicators of the catalogue, the French names of the
directions.
"""
