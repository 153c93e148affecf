"""What both adapter conftests share: their lists, applied and checked, and each test's outcome per implementation.

``run.py`` puts this folder on ``PYTHONPATH`` and loads this module as a plugin (``-p _harness``); the adapters
(copied next to the upstream tests as ``conftest.py``) call :func:`apply_lists` with an :class:`Lists`. Each list
maps patterns over ``"<file>::<test name with its parameters>"`` (``*`` is the only wildcard) to a reason:

* ``deselect``: tests that cannot run here at all (a Hub download of a model that is not in ``shared/``, CUDA,
  training); deselected and counted per reason.
* ``control_only``: tests that need what only the real library has (a transformer, multi-vector or sparse
  functions outside ``staticst.util``): they run on the control only (their staticst items are dropped).
* ``torch_only``: tests that need torch modules by nature (``register_forward_hook``, ``nn.Module`` surgery
  with torch modules): they run on both; strict ``xfail`` on staticst, and ``run.py`` checks that the control
  passes them (they fail on staticst for the torch path only).
* ``control_fails``: tests the real library itself fails here (they hard-code a transformer's numbers, or an
  API the current release changed): strict ``xfail`` on the control; on staticst their outcome is recorded
  (``xfail(strict=False)``), never required.

Every pattern must match at least one collected test on a full run (a stale entry is an error), a test may be
in one list only, and a skip is an error (whatever cannot run here is deselected by name, with its reason).
``--upstream-report=PATH`` writes each test's outcome per implementation as JSON for ``run.py``.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: The implementations a test can run under (the first of each pair is the control).
IMPLS = ("sentence-transformers", "model2vec", "staticst")
_IMPL_IN_ID = re.compile(r"(?<=[\[-])(sentence-transformers|model2vec|staticst)(?=[\]-])")
_STATE: dict[str, Any] = {
    "deselected": Counter(),
    "reasons": defaultdict(Counter),
    "outcomes": defaultdict(lambda: defaultdict(dict)),
    "torch_only": set(),
    "control_only": Counter(),
    "impl_of": None,
}


@dataclass
class Lists:
    """An adapter's lists (see the module docstring)."""

    deselect: dict[str, str] = field(default_factory=dict)
    control_only: dict[str, str] = field(default_factory=dict)
    torch_only: dict[str, str] = field(default_factory=dict)
    control_fails: dict[str, str] = field(default_factory=dict)


def key(item: pytest.Item) -> str:
    """The name the lists match: ``"<file name>::<test name[params]>"``."""
    return f"{item.path.name}::{item.name}"


def canonical(name: str) -> str:
    """A test's name with its implementation parameter replaced by ``IMPL`` (the same test on either side)."""
    return _IMPL_IN_ID.sub("IMPL", name)


def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` matches anything; every other character (brackets included) is literal."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def matches(name: str, patterns: dict[str, str]) -> list[str]:
    """The patterns of ``patterns`` that match ``name``."""
    return [p for p in patterns if _glob(p).fullmatch(name)]


def apply_lists(
    config: pytest.Config, items: list[pytest.Item], lists: Lists, impl_of: Callable[[pytest.Item], str]
) -> None:
    """Deselect and mark ``items`` in place from ``lists``; ``impl_of`` names an item's implementation.

    Raises:
        pytest.UsageError: A pattern matches nothing (on a full run), or a test is in two lists.
    """
    if _STATE["impl_of"] is not None:  # the same adapter sits in several folders: apply the lists once
        return
    _STATE["impl_of"] = impl_of
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    used: set[str] = set()
    marked = {"torch_only": lists.torch_only, "control_fails": lists.control_fails, "deselect": lists.deselect}
    for item in items:
        name = key(item)
        found = {kind: matches(name, patterns) for kind, patterns in marked.items()}
        hits = [kind for kind, found_here in found.items() if found_here]
        if len(hits) > 1:
            raise pytest.UsageError(f"{name} is in more than one list: {hits}")
        for found_here in found.values():
            used.update(found_here)
        impl = impl_of(item)
        only_control = matches(name, lists.control_only)
        used.update(only_control)
        if only_control and impl == "staticst":  # runs on the control only: not a staticst test
            _STATE["control_only"][item.path.name] += 1
            continue
        if found["deselect"]:
            dropped.append(item)
            _STATE["deselected"][item.path.name] += 1
            _STATE["reasons"][item.path.name][lists.deselect[found["deselect"][0]]] += 1
            continue
        if found["torch_only"] and impl == "staticst":
            reason = "torch-only: " + lists.torch_only[found["torch_only"][0]]
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True, raises=None))
            _STATE["torch_only"].add(f"{item.path.name}::{canonical(item.name)}")
        if found["control_fails"]:
            reason = "fails on the real library too: " + lists.control_fails[found["control_fails"][0]]
            item.add_marker(pytest.mark.xfail(reason=reason, strict=impl != "staticst", raises=None))
        keep.append(item)
    full_run = not config.option.keyword and not config.option.markexpr and not any("::" in a for a in config.args)
    everything = {**lists.deselect, **lists.control_only, **lists.torch_only, **lists.control_fails}
    collected = {item.path.name for item in items}
    stale = [p for p in everything if p not in used and p.split("::")[0] in collected] if full_run else []
    if stale:
        raise pytest.UsageError("upstream lists name tests that were not collected (stale entries): " + ", ".join(stale))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


def pytest_configure(config: pytest.Config) -> None:
    """The upstream markers (``slow`` tests run here too)."""
    config.addinivalue_line("markers", "slow: upstream marker (run here)")
    config.addinivalue_line("markers", "custom: upstream marker")


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """A module skipped at collection (e.g. a missing optional dependency) is an error, not a silent zero."""
    report = yield
    if report.skipped:
        report.outcome = "failed"
        report.longrepr = f"module skipped at collection ({report.longrepr}): install what it needs, or drop the file"
    return report


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--upstream-report=PATH``: write each test's outcome per implementation (JSON)."""
    parser.addoption("--upstream-report", default=None, help="write per-test upstream outcomes (JSON) here")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A skip is an error; each test's outcome is recorded under its implementation."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"unexpected skip ({report.longrepr}): deselect this test by name, with its reason"
    impl_of = _STATE["impl_of"]
    if impl_of is not None:  # what the test itself did, whatever its xfail mark made of the report
        tests = _STATE["outcomes"][item.path.name][impl_of(item)]
        name = canonical(item.name)
        if call.excinfo is not None:
            tests[name] = "failed"
        elif call.when == "call" and tests.get(name) != "failed":
            tests[name] = "passed"
    return report


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print the counts per file and implementation (and write the report)."""
    terminalreporter.write_sep("=", "upstream outcomes per file and implementation")
    for file, impls in sorted(_STATE["outcomes"].items()):
        for impl, tests in sorted(impls.items()):
            counts = Counter(tests.values())
            terminalreporter.write_line(
                f"{file} [{impl}]: {counts['passed']} passed, {counts['failed']} failed "
                f"({_STATE['deselected'][file]} deselected)"
            )
    path = config.getoption("--upstream-report")
    if path:
        data = {
            "outcomes": {f: {i: dict(t) for i, t in impls.items()} for f, impls in _STATE["outcomes"].items()},
            "torch_only": sorted(_STATE["torch_only"]),
            "deselected": dict(_STATE["deselected"]),
            "deselected_reasons": {f: dict(r) for f, r in _STATE["reasons"].items()},
        }
        Path(path).write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
