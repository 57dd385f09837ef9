"""From checked values to frozen releases: the gate (blocking checks, waivers), the freeze
(values, manifest, anchor, recovery of an interrupted freeze), diffs, verification, lineage
(``kpi trace``) and the exports published with each release.
"""
