"""The package's import structure: no import circles, and no module importing the package face back."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "staticst"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    if (PACKAGE / "_kernel").is_dir():  # the compiled kernel: C sources, imports nothing of the package
        modules["staticst._kernel"] = PACKAGE / "_kernel"
    return modules


def _imports(path: Path, known: set[str]) -> set[str]:
    """staticst modules imported by ``path`` anywhere in it (function-level and TYPE_CHECKING imports included)."""
    found: set[str] = set()
    if path.is_dir():
        return found
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return {name for name in found if name in known}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, known) - {name} for name, path in modules.items()}


def test_graph_reader_sees_the_package() -> None:
    graph = _graph()
    assert "staticst.model" in graph and "staticst.engine" in graph["staticst.model"]
    assert "staticst.pooling" in graph["staticst.engine"]


def test_no_module_imports_the_package_face() -> None:
    offenders = sorted(name for name, deps in _graph().items() if "staticst" in deps and name != "staticst")
    assert not offenders, f"modules importing the package face `staticst`: {offenders}"


def test_no_import_circles() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if dep == "staticst":  # the face imports everything; checked by the test above
                continue
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, f"import circles: {cycles}"
