"""The package's import structure: no import circles, and no module importing the package face back."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "staticst"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    sources = PACKAGE.parent / "csrc"
    if sources.is_dir():  # the compiled kernel staticst._kernel: C sources outside the package, import nothing of it
        modules["staticst._kernel"] = sources
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


ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"


def _group(module: str) -> str:
    """A module's name in docs/architecture.md's drawing: ``model``, ``server/`` (a folder), ``__init__``."""
    parts = module.split(".")[1:]
    if not parts:
        return "__init__"
    return f"{parts[0]}/" if (PACKAGE / parts[0]).is_dir() else parts[0]


def _drawing() -> dict[str, set[str]]:
    """The import arrows drawn in docs/architecture.md: ``name ---> dep, dep`` lines of its first code block."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.split("```\n", 2)[1]
    lines: list[str] = []
    for line in block.splitlines():
        if line.startswith(" ") and lines:  # a continued line
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    drawn: dict[str, set[str]] = {}
    for line in lines:
        line = re.sub(r"\([^)]*\)", "", line)  # remarks in parentheses
        if ": no staticst import" in line:
            for name in line.split(":")[0].split(","):
                drawn[name.strip().removesuffix(".py")] = set()
            continue
        source, _, deps = line.partition("->")
        name = source.split()[0].rstrip("-").removesuffix(".py")
        drawn[name] = {d.strip().removesuffix(".py") for d in deps.lstrip("->").split(",") if d.strip()}
    return drawn


def test_the_architecture_drawing_is_the_import_graph() -> None:
    """docs/architecture.md names every module under staticst/ and draws exactly the imports between them."""
    actual: dict[str, set[str]] = {}
    for module, deps in _graph().items():
        group = _group(module)
        actual.setdefault(group, set()).update(_group(d) for d in deps)
    for group, deps in actual.items():
        deps.discard(group)
    drawn = _drawing()
    assert sorted(drawn) == sorted(actual), "modules drawn in docs/architecture.md differ from staticst/'s"
    wrong = {name: (sorted(drawn[name]), sorted(deps)) for name, deps in actual.items() if drawn[name] != deps}
    assert not wrong, f"docs/architecture.md draws other imports than the code has (drawn, actual): {wrong}"
    for path in PACKAGE.rglob("*.py"):  # and the layer table names every module file
        if path.name != "__init__.py":
            assert re.search(rf"\b{re.escape(path.stem)}\b", ARCHITECTURE.read_text(encoding="utf-8")), path
