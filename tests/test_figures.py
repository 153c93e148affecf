"""The figures in docs/img: what a new user reads off them (issue 19: an empty "callgrind not run" panel,
unlabelled reference lines). Each figure function is fed a small synthetic report and the drawn figure is
inspected (``Figure.savefig`` is intercepted, nothing is written)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from tests.conftest import REPO  # noqa: E402


def _module(folder: str, name: str) -> ModuleType:
    sys.path.insert(0, str(REPO / folder))
    try:
        spec = importlib.util.spec_from_file_location(f"staticst_figures_{name}", REPO / folder / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO / folder))


@pytest.fixture
def saved(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    figures: list[Figure] = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: figures.append(self))
    return figures


def _reference_lines(fig: Figure) -> list[tuple[str, Any]]:
    """(label, line) of every horizontal/vertical reference line (two points, constant x or y) of the figure."""
    found = []
    for ax in fig.axes:
        for line in ax.get_lines():
            xs, ys = line.get_xdata(), line.get_ydata()
            if len(xs) == 2 and (xs[0] == xs[1] or ys[0] == ys[1]):
                found.append((line.get_label(), line))
    return found


def _legend_texts(fig: Figure) -> set[str]:
    return {t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()}


def test_serve_figure_names_its_target_lines(saved: list[Figure]) -> None:
    report = _module("benchmarks", "_serve_report")
    results = []
    for server, fmt in [("staticst", "json"), ("staticst", "binary"), ("staticst", "jsonl"), ("fastapi+model2vec", "json")]:
        for batch in (1, 10, 100):
            for mode in ("saturation", "paced"):
                results.append({"server": server, "format": fmt, "batch": batch, "mode": mode, "rps": 1000.0,
                                "p50_ms": 0.5, "p99_ms": 2.0, "errors": 0})  # fmt: skip
    report.plot(results, Path("unused.png"), client="wrk", workers=2, paced_rate=2000.0)
    lines = _reference_lines(saved[0])
    assert len(lines) == 2 and all(not label.startswith("_") for label, _ in lines), lines
    assert {"target: p50 ≤ 1 ms", "target: p99 ≤ 5 ms"} <= _legend_texts(saved[0])


def test_probe_figure_names_its_reference_lines(saved: list[Figure]) -> None:
    report = _module("eval", "_probe_report")
    categories = ("polysemy", "negation_modality", "entity", "composition")
    summary = {c: {"accuracy": 0.6, "mean_margin": 0.01} for c in categories}
    results = [{"role": role, "info": {"model": role}, "summary": summary} for role in ("static", "baseline")]
    report.plot_report({"results": results}, "unused.png")
    fig = saved[0]
    lines = _reference_lines(fig)
    assert len(lines) == 2
    assert {"chance (50%)", "0: positive and negative equally close"} <= _legend_texts(fig)


def test_encode_figure_has_no_empty_callgrind_panel(saved: list[Figure]) -> None:
    report = _module("benchmarks", "_encode_report")
    libraries = ("staticst", "staticst-1-thread", "staticst-numpy", "model2vec", "laghu", "sentence-transformers")
    model = {"libraries": {lib: {"status": "not installed"} for lib in libraries}, "callgrind": None}
    data = {
        "models": {"potion-base-8M": model},
        "targets": [],
        "machine": {"cpu": "cpu", "cpus": 2, "loadavg_1m_before": 0.0, "loadavg_1m_after": 0.0},
        "corpus": {"sentences": 10},
        "settings": {"repeats": 1},
    }
    report.plot(data, Path("unused.png"))
    titles = [ax.get_title() for ax in saved[0].axes]
    assert not any("callgrind" in t.lower() for t in titles), titles
    assert not any("callgrind not run" in t.get_text() for ax in saved[0].axes for t in ax.texts)
    assert len([t for t in titles if t]) == 4  # throughput, latency, cold start, RSS (then the targets)


def test_encode_figure_draws_warm_and_first_sight_instructions(saved: list[Figure]) -> None:
    report = _module("benchmarks", "_encode_report")
    libraries = ("staticst", "staticst-1-thread", "staticst-numpy", "model2vec", "laghu", "sentence-transformers")
    counts = {"staticst-1-thread": (11_754.0, 13_444.0), "model2vec": (337_495.0, 337_403.0)}
    callgrind = {lib: {"per_sentence": w, "first_sight": {"per_sentence": f}} for lib, (w, f) in counts.items()}
    timed = {"sentences_per_s": 1.0}
    measured = {"throughput_default": timed, "throughput_1024": timed, "latency": {"p50_us": 1.0},
                "cold_start": {"wall_ms": 1.0}, "rss": {"peak_mb": 1.0}}  # fmt: skip
    model = {
        "libraries": {lib: {"status": "ok" if lib in counts else "not installed"} for lib in libraries},
        "results": {lib: measured for lib in counts},
        "callgrind": callgrind,
    }
    data = {
        "models": {"potion-base-8M": model},
        "targets": [{"model": "tokenlearn-10k-int8", "target": "left out of the run", "met": None}],
        "machine": {"cpu": "cpu", "cpus": 2, "loadavg_1m_before": 0.0, "loadavg_1m_after": 0.0},
        "corpus": {"sentences": 10},
        "settings": {"repeats": 1},
    }
    report.plot(data, Path("unused.png"))
    fig = saved[0]
    (panel,) = [ax for ax in fig.axes if "callgrind" in ax.get_title().lower()]
    assert "first sight" in panel.get_title()
    bars = [p for p in panel.patches if isinstance(p, Rectangle)]
    heights = sorted(round(b.get_height()) for b in bars if b.get_height() == b.get_height())  # not NaN
    assert heights == [11_754, 13_444, 337_403, 337_495]
    assert {"staticst 1 thread, first sight", "model2vec, first sight"} <= _legend_texts(fig)
    assert not any("left out of the run" in t.get_text() for ax in fig.axes for t in ax.texts)
