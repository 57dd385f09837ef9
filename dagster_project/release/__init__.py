"""From checked values to frozen releases: the gate (blocking checks, waivers: ``gate``), the
freeze (``freeze``: values, manifest, anchor, recovery of an interrupted freeze, in
``manifest``, ``anchor``, ``recovery``), the release tables (``records``), diffs (``diff``),
verification (``verify``), lineage (``kpi trace``: ``lineage``) and the exports published
with each release (``exports``).
"""
