"""``controles.html``: the release's checks in French, for auditors, beside GX's Data Docs.

One page, self-contained (inline style, no script, no external address), in the release
folder: a summary of the suites, the method, then one section per suite (its French
description, the asset it checks, blocking or warning, passed or failed, rows checked) with
each expectation, its French description and its result; under each failed expectation, the
rows concerned, named as a reader names them: indicator (id and label), commune (INSEE code
and name, or the agglomeration), year, value with its unit.

Personal data (suites ``sensitivity: personal``, HR): counts only, as in the Data Docs; the
dataset is never read and no value, row or pseudonym appears.

Deterministic: suites in the given order, expectations in the suite's order, rows sorted by
what is shown, no wall-clock time (the date shown is the release's fixed time).

One job per module (nothing is re-exported here: import from the module that does it):
``page.py`` the page itself, written at the freeze (``write_checks_page``); ``suites.py``
one section per suite; ``rows.py`` the failed rows found again in the release's warehouse,
and the labels that name them; ``tables.py`` those rows (or the recorded values) as HTML
tables; ``values.py`` a value as a French reader reads it.
"""
