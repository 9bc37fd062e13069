"""The house plan of docs/architecture.md, checked on the source: imports point only downward, and no module
imports itself back through others (no import circle), counting imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import llmagentos

SRC = Path(llmagentos.__file__).parent

#: the layers, lowest first; a module may import its own layer and those below it
LAYERS = ["core", "envs", "learners", "lifelong", "kernel", "jobs", "ui", "top"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "top"


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The project's modules ``path`` imports anywhere in it (``from a import b`` counts a.b when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base == "llmagentos" and [a.name for a in node.names] == ["__version__"]:
                continue  # the package's version string, the one name every layer may read from the root
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:  # `import llmagentos.core.loop as x` counts the module itself
                name = name.rpartition(".")[0]
            if name.startswith("llmagentos"):
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in SRC.rglob("*.py")}
    modules = set(paths)
    return {name: imports_of(path, modules) - {name} for name, path in paths.items()}


def test_imports_point_only_downward():
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = sorted(f"{m} ({layer(m)}) imports {t} ({layer(t)})" for m, targets in import_graph().items()
                    for t in targets if t != "llmagentos" and rank[layer(t)] > rank[layer(m)])
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_no_import_circle():
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                circles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_layer_test_sees_imports_inside_functions():
    graph = import_graph()
    # jobs.train reaches the multi-agent loop at module level, the transfer job the kernel inside a function
    assert "llmagentos.jobs.multiagent" in graph["llmagentos.jobs.train"]
    assert "llmagentos.kernel.run" in graph["llmagentos.jobs.transfer"]


def test_algorithm_names_are_written_once_in_the_registry():
    """An agent class reads its ``algo`` from its registry line (``RegisteredName``); no learner spells it again."""
    from llmagentos.learners import registry

    for entry in registry.ALGORITHMS.values():
        if entry.kind in ("agent", "multiagent"):
            assert registry.load(entry.target).algo == entry.name
    for path in (SRC / "learners").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    if isinstance(statement, ast.Assign) and any(getattr(t, "id", "") == "algo" for t in statement.targets):
                        assert not isinstance(statement.value, ast.Constant), f"{path.name}: {node.name}.algo is spelled out"
