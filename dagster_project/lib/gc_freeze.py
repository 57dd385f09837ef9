"""Python's garbage collector kept off the objects a long step does not create.

A run's process holds several hundred MB of long-lived objects (Dagster, dagster-dbt, dbt-core,
Great Expectations, pandas, the definitions). Every full collection of Python's cyclic garbage
collector walks all of them again, and dbt or a run's event handling allocate enough to
trigger many: ≈ 1-2 s of a run at SF1 (measured with ``gc.callbacks``, bench/README.md).
``frozen()`` moves the objects that exist when it starts to the collector's permanent
generation (``gc.freeze``) for the duration of the block; they are handed back (``gc.unfreeze``)
at its end, so a long-lived process (the test suite, a code server) collects them afterwards
as before. Nested blocks hand everything back only at the outermost one's end.

``freeze_for_good()`` is for a process whose loaded objects are never collected again (the
warm process, cli/warm_server.py, before it forks its runs): a ``frozen()`` block in it or in
its copies hands nothing back.

Which block is the outermost is counted here, not asked of ``gc.get_freeze_count()``: that
function walks every frozen object, and in a copy of the warm process (millions of objects,
shared with it until written) the walk cost ≈ 60 ms per block and copied every page it
touched (bench/README.md, « 6 December 2026, seventh session »).
"""

from __future__ import annotations

import contextlib
import gc
import threading

_lock = threading.Lock()
_depth = 0  # frozen() blocks open in this process
_for_good = False  # freeze_for_good() was called: nothing is ever handed back


@contextlib.contextmanager
def frozen():
    global _depth
    with _lock:
        _depth += 1
        gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and not _for_good:
                gc.unfreeze()


def freeze_for_good() -> None:
    """Collect what is garbage now, then set everything else aside for the rest of this
    process and of the processes it forks."""
    global _for_good
    gc.collect()
    with _lock:
        gc.freeze()
        _for_good = True
