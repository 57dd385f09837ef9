"""The package's shape: dependencies point one way, no import cycle, nothing runs at import.

Layers, from the foundation up (docs/dev/architecture.md): a module may import its own
package and the layers below it, never one above. The demo generator serves the CLI and the
tests only.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "dagster_project"

LAYERS = [
    {"settings", "lib"},
    {"contracts"},
    {"warehouse"},
    {"ingest"},
    {"quality"},
    {"release"},
    {"campaign"},
    {"defs"},
    {"portal"},
    {"cli", "definitions"},
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
DEMO_USERS = {"cli"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """{module: dagster_project modules it imports}, imports inside functions included."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - node.level + 1]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            for candidate in candidates:
                if candidate in modules and candidate != name:
                    found.add(candidate)
        graph[name] = found
    return graph


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


GRAPH = _imports()


def test_every_top_level_part_has_a_layer():
    parts = {_part(m) for m in GRAPH} - {""}
    assert parts <= set(RANK) | {"demo"}, sorted(parts - set(RANK))


def test_dependencies_point_down_the_layers():
    upward = []
    for module, targets in GRAPH.items():
        source = _part(module)
        for target in targets:
            dest = _part(target)
            if dest == "demo":
                if source not in DEMO_USERS | {"demo"}:
                    upward.append(f"{module} -> {target} (demo: CLI and tests only)")
            elif source == "demo":
                if RANK.get(dest, 99) > RANK["contracts"]:
                    upward.append(f"{module} -> {target} (demo uses settings/lib/contracts)")
            elif source and dest and source != dest and RANK[dest] > RANK[source]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(upward))


def test_no_import_cycle():
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in GRAPH:
        if node not in index:
            visit(node)
    # a package's __init__ re-exporting its own modules is not a cycle of the design
    cycles = [c for c in cycles if not all(m.startswith(c[0] + ".") or m == c[0] for m in c)]
    assert not cycles, f"import cycles: {cycles}"


IMPORT_EVERYTHING = """
import importlib, os, pkgutil, subprocess, sys
import dagster_project
PACKAGE = os.path.dirname(dagster_project.__file__)
original = subprocess.Popen.__init__
def guarded(self, *args, **kwargs):  # libraries may start processes at import, we may not
    frame = sys._getframe(1)
    while frame:
        if frame.f_code.co_filename.startswith(PACKAGE):
            raise RuntimeError(f"{frame.f_code.co_filename} starts a process at import: {args[:1]}")
        frame = frame.f_back
    original(self, *args, **kwargs)
subprocess.Popen.__init__ = guarded
for info in pkgutil.walk_packages(dagster_project.__path__, "dagster_project."):
    if info.name.endswith("__main__"):
        continue
    importlib.import_module(info.name)
print("ok")
"""


@pytest.mark.parametrize("script", [IMPORT_EVERYTHING])
def test_importing_any_module_starts_no_process(script):
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
