"""What the processes of one test session share. `make test` runs pytest on 2 processes
(pytest-xdist, ``-n 2``): a session fixture is then set up once per process, and an expensive
one (a whole `kpi run`) is built once for the session by whichever process asks first, in a
folder every process sees, the others waiting for it (``session_dir``, ``exclusive``)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


def session_dir(tmp_path_factory) -> Path:
    """The session's temporary folder: pytest's base temporary folder, or under pytest-xdist
    its parent, the controller's, which every worker sees (each worker's own is a
    ``popen-gwN`` folder below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Held by one process at a time (an advisory lock on the file ``lock``, released when the
    block ends or the process dies)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
