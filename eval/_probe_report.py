"""Failure probes, reports: the Markdown tables (``probes.md``) and the bar chart (``probes.png``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from _paper import PaperPair, pairs_section
from _probe_data import CATEGORIES, CATEGORY_LABELS


def _label(result: dict[str, Any]) -> str:
    return Path(str(result["info"].get("model", result["role"]))).name or result["role"]


def render_markdown(report: dict[str, Any]) -> str:
    """Render the report as Markdown tables (per-category scores, then the paper pairs section).

    Args:
        report: The report written to ``probes.json``.

    Returns:
        The Markdown text.
    """
    results: list[dict[str, Any]] = report["results"]
    head = ["category", "n"]
    for r in results:
        head += [f"{_label(r)} accuracy", f"{_label(r)} mean margin"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for cat in [*CATEGORIES, "overall"]:
        if cat not in results[0]["summary"]:
            continue
        row = [CATEGORY_LABELS.get(cat, f"**{cat}**"), str(results[0]["summary"][cat]["n"])]
        for r in results:
            s = r["summary"][cat]
            row += [f"{100 * s['accuracy']:.1f}%", f"{s['mean_margin']:+.3f}"]
        lines.append("| " + " | ".join(row) + " |")
    out = [
        "## Failure probes",
        "",
        f"{report['n_probes']} triplets; correct = cos(anchor, positive) > cos(anchor, negative).",
        "",
    ]
    out += lines
    out += ["", "## The paper's Table 10 pairs", ""]
    pairs = report["paper_pairs"]
    if not pairs:
        out.append(f"No paper pairs: {report.get('paper_pairs_note') or 'the paper tables were not read'}.")
    else:
        columns = {_label(r): r["pairs"] for r in results}
        out += pairs_section([PaperPair(**p) for p in pairs], columns, report.get("paper_pairs_same_tokens_static"))
    return "\n".join(out) + "\n"


def plot_report(report: dict[str, Any], path: str | Path) -> None:
    """Save a grouped bar chart (accuracy and mean margin per category, one bar per model).

    Uses matplotlib's object API (no pyplot, no global backend change).

    Args:
        report: The report written to ``probes.json``.
        path: Where to write the PNG.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    results: list[dict[str, Any]] = report["results"]
    cats = [c for c in CATEGORIES if c in results[0]["summary"]]
    x = np.arange(len(cats))
    width = 0.8 / len(results)
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_acc, ax_margin = fig.subplots(1, 2)
    for i, r in enumerate(results):
        offset = (i - (len(results) - 1) / 2) * width
        acc = [100 * r["summary"][c]["accuracy"] for c in cats]
        margin = [r["summary"][c]["mean_margin"] for c in cats]
        bars = ax_acc.bar(x + offset, acc, width, label=_label(r))
        ax_acc.bar_label(bars, fmt="%.0f", fontsize=8)
        ax_margin.bar(x + offset, margin, width, label=_label(r))
    labels = [CATEGORY_LABELS[c].replace(" / ", "/\n").replace(" ", "\n") for c in cats]
    ax_acc.set(title="Probe accuracy (%)", ylim=(0, 105), xticks=x, xticklabels=labels)
    ax_acc.axhline(50, color="grey", linewidth=0.8, linestyle=":", label="chance (50%)")
    ax_margin.set(title="Mean margin  cos(a,pos) - cos(a,neg)", xticks=x, xticklabels=labels)
    zero = ax_margin.axhline(0, color="black", linewidth=0.8, label="0: positive and negative equally close")
    ax_margin.legend(handles=[zero], fontsize=8, loc="upper right")
    ax_acc.legend(fontsize=8, loc="upper left")
    fig.savefig(str(path), dpi=120)


