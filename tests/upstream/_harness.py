"""What both adapter conftests share: the deselect and xfail lists, applied and checked, and the per-file counts.

``run.py`` puts this folder on ``PYTHONPATH`` and loads this module as a plugin (``-p _harness``); the
adapters (copied next to the upstream tests as ``conftest.py``) call :func:`apply_lists`. Each adapter keeps two dicts of patterns (``*`` is the only wildcard) over
``"<file>::<test name with its parameters>"``:

* ``DESELECT``: tests that cannot apply here (Hub downloads, training, CUDA, transformer-only modules...),
  each with its reason; they are deselected and counted per reason.
* ``XFAIL``: tests that run and fail, each with its reason; they are marked ``xfail(strict=True)``, so a
  test that starts passing fails the run too (the list must be kept true in both directions).

Every pattern must match at least one collected test (a stale entry is an error), no test may match both
lists, and a skip is an error (every test that cannot run here is deselected by name, with its reason).
At the end a table gives, per upstream file: passed / xfailed (listed) / failed / xpassed / skipped /
deselected; ``--upstream-report=PATH`` also writes it as JSON for ``run.py``.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

#: The implementations a test id names in its parameters (``[staticst-...]``, ``[util-sentence-transformers]``);
#: a test without one runs staticst (model2vec's suite, with staticst's class swapped in).
IMPLS = ("sentence-transformers", "staticst")
_STATE: dict[str, Any] = {"deselected": Counter(), "reasons": defaultdict(Counter)}


def key(item: pytest.Item) -> str:
    """The name the lists match: ``"<file name>::<test name[params]>"``."""
    return f"{item.path.name}::{item.name}"


def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` matches anything; every other character (brackets included) is literal."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def _matches(name: str, patterns: dict[str, str]) -> list[str]:
    return [p for p in patterns if _glob(p).fullmatch(name)]


def apply_lists(config: pytest.Config, items: list[pytest.Item], deselect: dict[str, str], xfail: dict[str, str]) -> None:
    """Deselect and mark ``items`` in place from the two lists (see the module docstring).

    Raises:
        pytest.UsageError: A pattern matches nothing (on a full run), or a test is in both lists.
    """
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    used: set[str] = set()
    for item in items:
        name = key(item)
        gone, bad = _matches(name, deselect), _matches(name, xfail)
        if gone and bad:
            raise pytest.UsageError(f"{name} is both deselected ({gone[0]}) and expected to fail ({bad[0]})")
        used.update(gone, bad)
        if gone:
            dropped.append(item)
            _STATE["deselected"][item.path.name] += 1
            _STATE["reasons"][item.path.name][deselect[gone[0]]] += 1
            continue
        if bad:
            item.add_marker(pytest.mark.xfail(reason=xfail[bad[0]], strict=True, raises=None))
        keep.append(item)
    full_run = not config.option.keyword and not config.option.markexpr and not any("::" in a for a in config.args)
    stale = [p for p in {**deselect, **xfail} if p not in used] if full_run else []
    if stale:
        raise pytest.UsageError("upstream lists name tests that were not collected (stale entries): " + ", ".join(stale))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--upstream-report=PATH``: write the per-file counts as JSON."""
    parser.addoption("--upstream-report", default=None, help="write per-file upstream counts (JSON) here")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A skip is an error: whatever cannot run here is deselected by name, with its reason."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"unexpected skip ({report.longrepr}): deselect this test by name, with its reason"
    return report


def counts(terminalreporter: Any) -> dict[str, dict[str, Any]]:
    """Per upstream file: passed, xfailed, failed, xpassed, deselected (and the reasons)."""
    table: dict[str, dict[str, Any]] = defaultdict(lambda: Counter())
    by_impl: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for outcome in ("passed", "failed", "xfailed", "xpassed", "error"):
        for rep in terminalreporter.stats.get(outcome, []):
            name = Path(rep.nodeid.split("::")[0]).name
            table[name][outcome] += 1
            params = rep.nodeid.partition("[")[2]
            impl = next((i for i in IMPLS if f"{i}-" in params or f"{i}]" in params), "staticst")
            by_impl[name][impl][outcome] += 1
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(table) | set(_STATE["deselected"])):
        row = dict(table[name])
        out[name] = {
            "passed": row.get("passed", 0),
            "xfailed": row.get("xfailed", 0),
            "failed": row.get("failed", 0) + row.get("error", 0),
            "xpassed": row.get("xpassed", 0),
            "deselected": _STATE["deselected"][name],
            "deselected_reasons": dict(_STATE["reasons"][name]),
            "by_implementation": {impl: dict(c) for impl, c in sorted(by_impl[name].items())},
        }
    return out


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print (and optionally write) the per-file counts."""
    table = counts(terminalreporter)
    terminalreporter.write_sep("=", "upstream counts per file")
    for name, row in table.items():
        terminalreporter.write_line(
            f"{name}: {row['passed']} passed, {row['xfailed']} xfailed (listed), {row['failed']} failed, "
            f"{row['xpassed']} xpassed, {row['deselected']} deselected"
        )
        for impl, outcomes in row["by_implementation"].items():
            terminalreporter.write_line(f"    {impl}: " + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())))
    path = config.getoption("--upstream-report")
    if path:
        Path(path).write_text(json.dumps(table, indent=2, sort_keys=True), encoding="utf-8")
