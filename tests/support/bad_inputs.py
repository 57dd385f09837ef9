"""The bad-input corpus: tests/bad_inputs/generate.py loaded as ``corpus_def`` (its cases,
the heavy ones apart), for the corpus tests (fast) and the bounded time and memory test
(slow)."""

from __future__ import annotations

import importlib.util
import sys

from support import TESTS_DIR

BAD_INPUTS = TESTS_DIR / "bad_inputs"


def load_generator():
    spec = importlib.util.spec_from_file_location("bad_inputs_generate", BAD_INPUTS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


corpus_def = load_generator()


CASES = {case.name: case for case in corpus_def.CASES}
HEAVY = [name for name, case in CASES.items() if case.heavy]
