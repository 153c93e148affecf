"""The compiled kernel's typed face, staticst/_kernel.pyi, matches the module built from csrc/*.c.

Two checks, so a change to the C code without the same change to the stub fails the suite:

- mypy's stubtest against the built module (names, kinds, final classes, constants' types), as ``.ci/run`` runs it;
- what stubtest cannot see in a C extension (its functions carry no signature): every method's and constructor's
  parameters as the C parser reads them (``kwlist`` names, the optional ones after ``|`` in the format string,
  METH_O / METH_VARARGS arguments positional-only), and which properties have a setter. The C tables read here
  are first matched against the runtime module, so a table this file fails to read fails the test.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from staticst import kernel as kernels

REPO = Path(__file__).resolve().parent.parent
STUB = REPO / "staticst" / "_kernel.pyi"
CSRC = REPO / "csrc"


@pytest.fixture(scope="module")
def runtime() -> object:
    """The built module (a skip without it, a failure where CI requires it: tests/conftest.py's rule)."""
    if not kernels.available():
        if os.environ.get("STATICST_REQUIRE_KERNEL"):
            pytest.fail(
                f"STATICST_REQUIRE_KERNEL is set but the compiled kernel does not import: {kernels.IMPORT_ERROR}"
            )
        pytest.skip("the compiled kernel is not built (CI sets STATICST_REQUIRE_KERNEL=1 and builds it)")
    from staticst import _kernel

    return _kernel


def test_stubtest_is_clean(runtime: object) -> None:
    command = [sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", ".ci/stubtest.ini", "staticst._kernel"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command[1:])} failed:\n{done.stdout}{done.stderr}"
    assert "Success" in done.stdout, done.stdout


# ---------------------------------------------------------------- the C side


@dataclass(frozen=True)
class Params:
    """A callable's parameters (self / cls left out) as a parser reads them."""

    names: tuple[str, ...] | None  # keyword names (None: positional-only)
    count: int
    required: int


def _units(fmt: str) -> tuple[int, int]:
    """(all, required) format units of a PyArg_Parse* format string ("O!OOi|z#O" -> (5, 4))."""
    fmt = re.split(r"[:;]", fmt)[0]
    count = required = 0
    optional = False
    for c in fmt:
        if c == "|":
            optional = True
        elif c in "!#&$":
            continue
        elif c in "()":
            raise AssertionError(f"nested format {fmt!r}: extend _units")
        else:
            count += 1
            required += not optional
    return count, required


def _body(source: str, function: str) -> str:
    match = re.search(rf"^static \w+ \*?{function}\(.*?^\}}", source, re.S | re.M)
    assert match, f"no C function {function}"
    return match.group(0)


def _parsed(source: str, function: str, flags: str) -> Params:
    """The parameters of a C method (its METH_ flags) or a tp_init function (flags "init")."""
    kinds = {flag.strip() for flag in flags.split("|")}
    if "METH_NOARGS" in kinds:
        return Params(None, 0, 0)
    if "METH_O" in kinds:
        return Params(None, 1, 1)
    body = _body(source, function)
    call = re.search(r'PyArg_ParseTuple(AndKeywords)?\(\s*args,\s*(?:kwds,\s*)?"([^"]*)"', body)
    assert call, f"{function}: no PyArg_ParseTuple call"
    count, required = _units(call.group(2))
    if not call.group(1):
        return Params(None, count, required)
    kwlist = re.search(r"kwlist\[\]\s*=\s*\{(.*?)NULL\s*\}", body, re.S)
    assert kwlist, f"{function}: no kwlist"
    names = tuple(re.findall(r'"(\w+)"', kwlist.group(1)))
    assert len(names) == count, f"{function}: {len(names)} kwlist names for {count} format units"
    return Params(names, count, required)


@dataclass
class CType:
    methods: dict[str, Params]
    setters: dict[str, bool]  # property -> has a setter
    init: Params | None  # None: no argument parser (TokenModel's tp_init only refuses)


def _c_side() -> tuple[dict[str, CType], dict[str, Params]]:
    """The C types (by Python name) and the module functions, from csrc/*.c."""
    sources = {path.name: path.read_text(encoding="utf-8") for path in sorted(CSRC.glob("*.c"))}
    tables: dict[str, tuple[str, dict[str, Params]]] = {}
    getsets: dict[str, dict[str, bool]] = {}
    for text in sources.values():
        for name, block in re.findall(r"static PyMethodDef (\w+)\[\]\s*=\s*\{(.*?)\n\s*\{NULL", text, re.S):
            entries = re.findall(
                r'\{"(\w+)",\s*(?:\(PyCFunction\))?(?:\(void \(\*\)\(void\)\))?(\w+),\s*(METH_[A-Z_| ]+?)\s*,', block
            )
            assert entries, f"method table {name}: nothing read"
            tables[name] = (text, {py: _parsed(text, c, flags) for py, c, flags in entries})
        for name, block in re.findall(r"static PyGetSetDef (\w+)\[\]\s*=\s*\{(.*?)\{NULL", text, re.S):
            entries = re.findall(r'\{"(\w+)",\s*\(getter\)\w+,\s*(NULL|\(setter\)\w+)', block)
            assert entries, f"getset table {name}: nothing read"
            getsets[name] = {py: setter != "NULL" for py, setter in entries}
    types: dict[str, CType] = {}
    used: set[str] = set()
    for text in sources.values():
        for block in re.findall(r"PyTypeObject \w+Type\s*=\s*\{(.*?)\n\};", text, re.S):
            name = re.search(r'tp_name = "staticst\._kernel\.(\w+)"', block)
            assert name, f"a type without a staticst._kernel name: {block[:80]}"

            def slot(field: str, block: str = block) -> str | None:
                found = re.search(rf"\.{field} = (?:\(\w+\))?&?(\w+)", block)
                return found.group(1) if found else None

            methods, getset, init = slot("tp_methods"), slot("tp_getset"), slot("tp_init")
            used.add(methods or "")
            parsed_init = None
            if init is not None:
                body = _body(text, init)
                parsed_init = _parsed(text, init, "init") if "PyArg_ParseTuple" in body else None
            types[name.group(1)] = CType(
                tables[methods][1] if methods else {}, getsets[getset] if getset else {}, parsed_init
            )
    functions = {
        py: params for table, (_, entries) in tables.items() if table not in used for py, params in entries.items()
    }
    return types, functions


# ---------------------------------------------------------------- the stub side


def _stub_params(node: ast.FunctionDef) -> Params:
    args = node.args
    assert not args.kwonlyargs and args.vararg is None and args.kwarg is None, f"{node.name}: *args / keyword-only"
    posonly, regular = list(args.posonlyargs), list(args.args)
    first = posonly or regular
    if first and first[0].arg in ("self", "cls"):
        first.pop(0)
    count = len(posonly) + len(regular)
    names: tuple[str, ...] | None = None
    if regular:
        names = tuple(a.arg for a in regular) if not posonly else ("<positional-only and keyword parameters mixed>",)
    return Params(names, count, count - len(args.defaults))


def _stub_side() -> tuple[dict[str, dict[str, ast.FunctionDef | list[ast.FunctionDef]]], dict[str, ast.FunctionDef]]:
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    classes: dict[str, dict[str, ast.FunctionDef | list[ast.FunctionDef]]] = {}
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            members: dict[str, ast.FunctionDef | list[ast.FunctionDef]] = {}
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    previous = members.get(item.name)
                    members[item.name] = (
                        [*previous, item] if isinstance(previous, list) else [previous, item] if previous else item
                    )
            classes[node.name] = members
    return classes, functions


def _is_property(defs: ast.FunctionDef | list[ast.FunctionDef]) -> tuple[bool, bool]:
    """(is a property, has a setter)."""
    items = defs if isinstance(defs, list) else [defs]
    decorators = [ast.unparse(d) for item in items for d in item.decorator_list]
    return "property" in decorators, any(d.endswith(".setter") for d in decorators)


def test_the_c_tables_read_here_are_the_runtime_module(runtime: object) -> None:
    types, functions = _c_side()
    public = {name for name in dir(runtime) if not name.startswith("__")}
    types_at_runtime = {name for name in public if isinstance(getattr(runtime, name), type)}
    assert set(types) == types_at_runtime
    callables = {name for name in public - types_at_runtime if callable(getattr(runtime, name))}
    assert set(functions) == callables
    for name, ctype in types.items():
        at_runtime = {attr for attr in vars(getattr(runtime, name)) if not attr.startswith("__")}
        assert set(ctype.methods) | set(ctype.setters) == at_runtime, name


def test_stub_signatures_follow_the_c_parsers(runtime: object) -> None:
    types, functions = _c_side()
    stub_classes, stub_functions = _stub_side()
    problems: list[str] = []

    def compare(where: str, c: Params, node: ast.FunctionDef) -> None:
        stub = _stub_params(node)
        if c.names is None:
            if stub.count != c.count or stub.required != c.required or (stub.count and stub.names is not None):
                problems.append(
                    f"{where}: C takes {c.count} positional-only argument(s), {c.required} required; the stub has "
                    f"{stub.count} ({stub.required} required, {'keyword' if stub.names else 'positional-only'})"
                )
        elif stub.names != c.names or stub.required != c.required:
            problems.append(
                f"{where}: C kwlist {c.names} ({c.required} required); stub {stub.names} ({stub.required} required)"
            )

    for name, params in functions.items():
        if name not in stub_functions:
            problems.append(f"{name}: not in the stub")
        else:
            compare(name, params, stub_functions[name])
    for cls, ctype in types.items():
        members = stub_classes.get(cls)
        if members is None:
            problems.append(f"{cls}: not in the stub")
            continue
        init = members.get("__init__")
        if ctype.init is not None:
            if not isinstance(init, ast.FunctionDef):
                problems.append(f"{cls}.__init__: not in the stub")
            else:
                compare(f"{cls}.__init__", ctype.init, init)
        for method, params in ctype.methods.items():
            node = members.get(method)
            if not isinstance(node, ast.FunctionDef) or _is_property(node)[0]:
                problems.append(f"{cls}.{method}: not a method in the stub")
            else:
                compare(f"{cls}.{method}", params, node)
        for prop, settable in ctype.setters.items():
            defs = members.get(prop)
            if defs is None or not _is_property(defs)[0]:
                problems.append(f"{cls}.{prop}: not a property in the stub")
            elif _is_property(defs)[1] != settable:
                problems.append(f"{cls}.{prop}: {'settable' if settable else 'read-only'} in C, not in the stub")
    assert not problems, "\n".join(problems)
