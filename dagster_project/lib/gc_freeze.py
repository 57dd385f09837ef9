"""Python's garbage collector kept off the objects a long step does not create.

A run's process holds several hundred MB of long-lived objects (Dagster, dagster-dbt, dbt-core,
Great Expectations, pandas, the definitions). Every full collection of Python's cyclic garbage
collector walks all of them again, and dbt or a run's event handling allocate enough to
trigger many: ≈ 1-2 s of a run at SF1 (measured with ``gc.callbacks``, bench/README.md).
``frozen()`` moves the objects that exist when it starts to the collector's permanent
generation (``gc.freeze``) for the duration of the block; they are handed back (``gc.unfreeze``)
at its end, so a long-lived process (the test suite, a code server) collects them afterwards
as before. Nested blocks hand everything back only at the outermost one's end.
"""

from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def frozen():
    outermost = gc.get_freeze_count() == 0
    gc.freeze()
    try:
        yield
    finally:
        if outermost:
            gc.unfreeze()
