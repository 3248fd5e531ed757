"""The project's packages import one way: no module of bot/, actions/ or web/ imports, even lazily
inside a function, a module that imports it back (directly or through others)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "actions", "web")


def _modules(root: Path) -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module → project modules it imports anywhere in its body (functions included)."""
    modules = _modules(root)

    def known(name: str) -> str | None:  # `bot.answering.composer.Answer` → `bot.answering.composer`
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        deps: set[str | None] = set()
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                source = ".".join([*base, *([node.module] if node.module else [])])
                deps.update(known(f"{source}.{alias.name}") for alias in node.names)
        graph[module] = {d for d in deps if d and d != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_the_projects_modules():
    graph = import_graph()
    assert "actions.answer" in graph and "web.widget" in graph
    assert cycles(graph) == []


def test_packages_depend_one_way():
    edges = {(m.split(".")[0], d.split(".")[0]) for m, deps in import_graph().items() for d in deps}
    assert not {(a, b) for a, b in edges if a != b and (b, a) in edges}


def test_a_lazy_import_back_is_a_cycle(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "actions" / "a.py").write_text("from actions.b import f\n")
    (tmp_path / "actions" / "b.py").write_text("def f():\n    from . import a\n")
    (tmp_path / "web" / "c.py").write_text("import bot\n")
    graph = import_graph(tmp_path)
    assert cycles(graph) == [["actions.a", "actions.b"]]
    assert graph["web.c"] == {"bot"}
