"""plw's packages form layers, each importing only its own layer and those below it:

    base < data < loss < training < evaluation < analysis < report < experiment < cli

base is the top-level modules plw/config.py, errors.py, files.py, batch.py, preemption.py and
lazy.py, and the package front plw/__init__.py (whose lazy names point upwards by design: it is what
`import plw` shows the user); plw/__main__.py runs the CLI and sits with cli; plw/models.py (the
model and tokenizer loader, which applies the data layer's chat templates) sits with data. The
analysis and the report are libraries over results tables, below the experiment, which runs them
(study planning's power analysis, the quickstart's report).

Every `import` / `from ... import` in src/plw is checked, at module level, inside functions (lazy
imports) and under TYPE_CHECKING alike, so a lower layer never reaches up, not even lazily. The lazy
package fronts (`_LAZY` maps of plw.<package>/__init__.py) may name only names defined in modules of
their own package, and importing them loads nothing heavy. And the module-level imports must have
no loop, so that any module imports on its own.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from support import REPO

SRC = REPO / "src"
LAYERS = ("base", "data", "loss", "training", "evaluation", "analysis", "report", "experiment", "cli")
BASE = {"__init__", "config", "errors", "files", "batch", "preemption", "lazy"}
DATA = {"models"}
ROOT_FRONT = "plw"  # plw/__init__.py: its lazy names reach up by design

# Imports from a higher layer that were there when this test was written: each is a place to fix
# (move the module up, or what it needs down), then to delete from this list. Listed entries that no
# longer occur fail the test too, so the list only shrinks. Empty since the analysis and the report
# sit below the experiment.
KNOWN: dict[str, set[str]] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted((SRC / "plw").rglob("*.py"))}


def layer(module: str) -> str:
    """The layer of a plw module; unassigned ones fail, so a new top-level module gets a place here."""
    top = module.split(".")[1] if "." in module else "__init__"
    if top == "__main__":
        return "cli"
    if top in BASE:
        return "base"
    if top in DATA:
        return "data"
    assert top in LAYERS, f"plw.{top} has no layer: add it to tests/test_layers.py"
    return top


def resolve(name: str) -> str:
    """The plw module an imported name loads: the module itself, else the package it is taken from."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported plw module, line, at module level) of every import statement in `module`."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    top_level = {id(node) for node in tree.body}
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base])
            names = [f"{base.rstrip('.')}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "plw" or name.startswith("plw."):
                found.append((resolve(name), node.lineno, id(node) in top_level))
    return found


def known(module: str) -> set[str]:
    """KNOWN's targets of `module` as module names (a bare name is a plw.analysis module)."""
    return {t if t.startswith("plw.") else f"plw.analysis.{t}" for t in KNOWN.get(module, ())}


def upward_imports() -> dict[str, dict[str, int]]:
    """module -> {imported module of a higher layer: first line}."""
    found: dict[str, dict[str, int]] = {}
    for module in MODULES:
        if module == ROOT_FRONT:
            continue
        rank = LAYERS.index(layer(module))
        for target, line, _ in imports(module):
            if target != ROOT_FRONT and LAYERS.index(layer(target)) > rank:
                found.setdefault(module, {}).setdefault(target, line)
    return found


def test_no_layer_imports_a_higher_one():
    new = [
        f"{MODULES[module].relative_to(SRC)}:{line}: {module} imports {target}"
        for module, targets in upward_imports().items()
        for target, line in targets.items()
        if target not in known(module)
    ]
    assert not new, "imports from a higher layer:\n" + "\n".join(new)


def test_known_upward_imports_still_occur():
    found = upward_imports()
    gone = [f"{m} -> {t}" for m in KNOWN for t in sorted(known(m) - set(found.get(m, {})))]
    assert not gone, "fixed, so delete from KNOWN in tests/test_layers.py:\n" + "\n".join(gone)


def lazy_map(path: Path) -> dict[str, str]:
    """A package front's `_LAZY = {name: module}` map (empty without one)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_LAZY" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def top_level_names(module: str) -> set[str]:
    """Names a module binds at its top level (definitions, assignments, imports)."""
    names = set()
    for node in ast.parse(MODULES[module].read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def test_package_fronts_name_only_their_own_modules():
    stray = [
        f"{module}: {name} -> {target}"
        for module, path in MODULES.items()
        if path.name == "__init__.py" and module != ROOT_FRONT
        for name, target in lazy_map(path).items()
        if not target.startswith(module + ".") or target not in MODULES or name not in top_level_names(target)
    ]
    assert not stray, "lazy names outside their package, or not defined where named:\n" + "\n".join(stray)


def test_package_fronts_import_nothing_heavy():
    code = (
        "import sys, plw.analysis, plw.evaluation, plw.experiment\n"
        "assert 'evaluate' in dir(plw.evaluation) and 'ResultStore' in dir(plw.experiment)\n"
        "print(sorted(m for m in ('pandas', 'torch', 'statsmodels', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_module_level_imports_have_no_loop():
    graph = {m: {t for t, _, top in imports(m) if top and t != m} for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target] if target in path else [module, target]
            if target not in state and (loop := visit(target, [*path, target])):
                return loop
        state[module] = 2
        return None

    for module in MODULES:
        if module not in state and (loop := visit(module, [module])):
            raise AssertionError("import loop: " + " -> ".join(loop))


def test_every_module_has_a_layer():
    assert {layer(m) for m in MODULES} <= set(LAYERS)
