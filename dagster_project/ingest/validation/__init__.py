"""Validation of one delivered file against its contract (``driver.validate_delivery``).

``validate_delivery`` applies every common rule of the collection kit and every rule of the
contract. It never raises on bad data: it returns the parsed rows (when there is no problem)
and the list of problems, each locating file, sheet, row, column and value, with a French
reason. A delivery is accepted only when that list is empty.

The modules, in the order a delivery goes through them: ``driver`` (read the file, find the
data sheet, judge its rows chunk by chunk, then the whole table), ``header`` (the data sheet
and its header row), ``layout`` (what around the cells would be read otherwise than it is
seen: other sheets, hidden or merged columns, rows above the header), ``chunks`` and
``arrow_chunks`` (the rows, ``CHUNK_ROWS`` at a time, cell by cell or in Arrow columns),
``columns`` and ``cells`` (each distinct value of a column judged once, by the rules of its
type), ``rows`` (what a row is, the rules between its cells), ``table`` (the rules on the
whole table of accepted rows, then privacy). ``context`` and ``results``: what a delivery is
judged against, and what the judgement says.
"""
