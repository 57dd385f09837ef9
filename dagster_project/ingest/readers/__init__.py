"""Reading a delivered file into sheets of cell values (``readers.file.read_file``).

``.xlsx`` is read with python-calamine (the fastest Python reader, see notes/stack.md); a
long clean worksheet with fastexcel (the same calamine, with Arrow output) into typed columns
(``xlsx_file._fastexcel_sheet``), python-calamine's values being read only if the engine asks
for them. Before calamine sees the file, the archive is checked without trusting it (limits
documented in docs/ingestion.md):

1. the zip directory (``archive``): number of parts, encryption, compression method,
   declared sizes (total and compression ratio per part) -- nothing is decompressed yet;
2. one streaming pass over every part (``scan``), decompressing at most ``_CHUNK`` bytes at
   a time: a part that inflates beyond its declared size (a zip bomb with forged headers) or
   beyond the limits is rejected as soon as the excess is seen; a sheet whose
   ``<dimension>`` or whose counted rows exceed the limits is rejected at that point, without
   decompressing the rest. The same pass records what calamine does not report: Excel error
   cells (calamine turns ``#DIV/0!`` into an empty string), formulas without a cached value,
   hidden rows and merged cells, and the number formats that show more than the number
   (``number_formats``).

The checks and calamine's parse of a workbook still to ingest may run ahead of time, in a
thread (``readahead``), in the same order: nothing reaches calamine before steps 1 and 2
have passed.

``.csv`` is read in UTF-8 or Windows-1252 with ``;`` or ``,`` as separator (``csv_file``).

The modules, in the order a file goes through them: ``file`` (which reader, by format),
``archive``, ``scan`` and ``number_formats`` (steps 1 and 2), ``xlsx_file`` (calamine's parse,
fastexcel's Arrow columns), ``readahead``, ``csv_file``. ``sheet`` holds what every reader
gives (``Sheet``, ``ReadError``), the limits and the cell references.
"""
