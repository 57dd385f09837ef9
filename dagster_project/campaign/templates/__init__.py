"""Blank workbooks of the yearly collection campaign, derived from the source contracts.

``write_templates`` writes, for each department, one ``.xlsx`` per source it delivers:
``<out_dir>/<department>/<source_id>_<year>.xlsx``. The four departments of the detailed
sources (the contracts' ``department``) get those sources; every department owning
``declared`` indicators of the catalogue gets an ``indicateurs_declares`` workbook
pre-filled with its indicator ids.

Each workbook has, in this order:

- ``Notice``: what the file is, the deadline and where to send it, the rules of the kit in
  plain French, and a table of the columns (meaning, type, unit, required, allowed values);
- ``Données``: the header row the ingestion expects (exactly the contract's column names,
  ``code_insee`` for communes) and Excel data validation (commune and value lists, numeric
  bounds, dates of the campaign year) on rows 2 to 5000;
- ``Indicateurs`` (declared figures only): id, label, unit, nature and last published figure
  of the department's indicators;
- ``Listes`` (hidden): the 100 member communes (code and name) and the lists used by the
  dropdowns.

The Notice never holds a row that could pass for the data header, so the ingestion always
picks ``Données``. Output is deterministic: the same arguments give byte-identical files.

The modules, in the order they build on each other: ``layout`` (sheet names, data rows,
styles), ``wording`` (a column described in plain French, examples moved to the campaign
year), ``notice`` (the ``Notice`` sheet), ``sheets`` (``Données``, ``Indicateurs``,
``Listes`` and the data validation), ``workbook`` (``build_workbook``, ``write_templates``
and the deterministic save). The communes and the declared indicators they list are read by
``dagster_project.contracts.reference``.
"""
