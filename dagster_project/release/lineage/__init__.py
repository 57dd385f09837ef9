"""Where a published value comes from (``kpi trace``).

For one value (indicator, year, commune or agglomeration) of a release — the latest version
of the year unless one is named — or of the warehouse when the year has no release yet:

* the release (id, version, when it was frozen) and the value with its review status;
* the dbt model that computed it: the ``int_<department>__indicator_values`` model found in
  dbt's manifest (``dbt/target/manifest.json``), with the wide model holding the
  indicator's column, or, without a manifest, the name the catalogue implies
  (``computation`` = declared → ``int_declared__indicator_values``, else the department);
* the deliveries it was computed from (file, SHA-256, reception time, department):
  ``DELIVERIES_SQL``, the query documented in docs/audit.md;
* the source rows: for a declared figure the exact declared row of
  ``raw.indicateurs_declares``; for a derived figure the rows of the contributing deliveries
  in the raw tables of its sources that its computation reads — the indicator's row filter
  of ``dbt/indicator_source_rows.yml`` (e.g. ``reseau = eau_potable``), restricted to the
  commune for a commune value — as sheet + row-number ranges with a count, and per source
  how many rows feed the value and by which filter (French). Only lineage columns are
  printed, so nothing personal (pseudonyms, ages of ``raw_restricted``) ever is.

The row filters are declarative (one entry per derived indicator, in terms of the delivered
files' columns); the dbt models stay the computation's only source of truth:
``recompute_value`` re-derives a value from the filtered rows, and the test suite checks that
it equals dbt's for every derived value of the demo campaign, so a filter cannot drift from
the SQL unnoticed.

The modules: ``filters`` (``dbt/indicator_source_rows.yml`` parsed, and the source-rows
query a filter gives), ``recompute`` (a value re-derived from its filtered rows),
``model`` (the dbt model that computes an indicator), ``trace`` (everything that leads to
one value) and ``report`` (the trace as French text or JSON).
"""
