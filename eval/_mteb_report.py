"""MTEB harness, reports: ``report.md`` and ``report.png`` from the ``summary.json`` document."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from _paper import PaperPair, PaperTables, pairs_section, table1_section

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CATEGORY_LABELS: dict[str, str] = {
    "Classification": "classification",
    "Clustering": "clustering",
    "Retrieval": "retrieval",
    "STS": "STS",
    "PairClassification": "pair classification",
}

ROLES: tuple[str, ...] = ("static", "baseline", "reference")
"""static: the staticst model; baseline: ``--baseline`` via sentence-transformers; reference: ``--model``
via sentence-transformers (parity)."""


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def render_report(summary: dict[str, Any]) -> str:
    """``report.md``: the task table, throughput, parity and the tasks that did not run."""
    scores = summary["scores"]
    models = summary["models"]
    lines = ["# MTEB: static model vs baseline", ""]
    for role in ROLES:
        if role in models:
            m = models[role]
            lines.append(f"- **{role}**: `{m['name']}` (revision {m['revision']}, dim {m['embed_dim']}, "
                         f"{m['n_parameters']} parameters, framework {', '.join(m['framework'])})")  # fmt: skip
    lines += ["", "Scores are mteb main scores x 100.", ""]
    lines.append("| task | category | metric | static model | baseline | paper (SwiftEmbed) | static/baseline % |")
    lines.append("|---|---|---|---|---|---|---|")
    for name, t in summary["tasks"].items():
        cat = CATEGORY_LABELS.get(t["category"], t["category"])
        if t["status"] != "ok":
            lines.append(
                f"| {name} | {cat} | {t['metric']} | not run: {t['reason']} | | {_pct(t['paper'])} | |"
            )
            continue
        s = scores["static"].get(name)
        b = scores.get("baseline", {}).get(name)
        ratio = f"{100 * s / b:.1f}" if (s is not None and b) else "n/a"
        lines.append(
            f"| {name} | {cat} | {t['metric']} | {_pct(s)} | {_pct(b)} | {_pct(t['paper'])} | {ratio} |"
        )
    ran = [n for n, t in summary["tasks"].items() if t["status"] == "ok"]
    if ran:
        s_mean = sum(scores["static"][n] for n in ran) / len(ran)
        b_mean = sum(scores["baseline"][n] for n in ran) / len(ran) if "baseline" in scores else None
        ratio = f"{100 * s_mean / b_mean:.1f}" if b_mean else "n/a"
        paper = [summary["tasks"][n]["paper"] for n in ran]
        # the paper's mean over the same tasks, only when it reports every one of them
        p_mean = sum(paper) / len(paper) if all(v is not None for v in paper) else None
        lines.append(
            f"| **mean of {len(ran)} tasks run** | | | {_pct(s_mean)} | {_pct(b_mean)} | {_pct(p_mean)} | {ratio} |"
        )
    paper = summary["paper"]
    if paper["available"]:
        note = (f"Paper column: the per-task figures the paper's text gives for SwiftEmbed (potion-base-8M), from "
                f"`{paper['path']}` ({paper['source']}); n/a where it gives none.")  # fmt: skip
    else:
        note = f"Paper column: n/a, the paper's tables could not be read: {paper['note']}."
    lines += ["", note, "", "## Encode throughput (texts/s, during this run)", ""]
    lines += ["| model | texts | encode seconds | texts/s |", "|---|---|---|---|"]
    for role in ROLES:
        if role in models:
            m = models[role]
            tps = "n/a" if m["texts_per_second"] is None else f"{m['texts_per_second']:.0f}"
            lines.append(
                f"| {role}: `{m['name']}` | {m['texts_encoded']} | {m['encode_seconds']:.2f} | {tps} |"
            )
    if "parity" in summary:
        par = summary["parity"]
        lines += [
            "",
            f"## Parity: staticst vs sentence-transformers reference (tolerance {par['tolerance']})",
            "",
        ]
        lines += ["| task | staticst | sentence-transformers | abs diff | ok |", "|---|---|---|---|---|"]
        for name, v in par["tasks"].items():
            lines.append(
                f"| {name} | {v['static']:.6f} | {v['reference']:.6f} | {v['abs_diff']:.2e} | {'yes' if v['ok'] else 'NO'} |"
            )
        lines.append("")
        lines.append("All tasks within tolerance." if par["ok"] else "**PARITY MISS** on at least one task.")
    if paper["available"]:
        lines += _paper_sections(summary)
    lines.append("")
    return "\n".join(lines)


def _paper_sections(summary: dict[str, Any]) -> list[str]:
    """Our models beside the paper's Table 1 (by category) and the paper's Table 10 pairs through our models."""
    paper = summary["paper"]
    tables = PaperTables(
        path=Path(paper["path"]),
        source=paper["source"],
        table1=paper["table1"],
        text_mentions=paper["text_mentions"],
        table2_mteb=paper["table2_mteb"],
        pairs=[PaperPair(**p) for p in paper["table10"]["pairs"]],
    )
    labels = {role: str(m["name"]) for role, m in summary["models"].items()}
    ours = {r: v for r, v in paper["ours_by_category"].items() if r != "reference"}  # the reference equals static
    lines = ["", "## Beside the paper's Table 1 (MTEB by category)", ""]
    lines += table1_section(tables, summary["tasks"], ours, labels)
    lines += ["", "## The paper's Table 10 pairs through our models", ""]
    sims = {labels[r]: v for r, v in paper["table10"]["ours"].items() if r != "reference"}
    lines += pairs_section(tables.pairs, sims, paper["table10"]["same_tokens_static"])
    return lines


def render_plot(summary: dict[str, Any], path: Path) -> None:
    """``report.png``: main score per task (bars per model) and mean score vs encode throughput."""
    plot_figure(summary).savefig(path, dpi=110)


def plot_figure(summary: dict[str, Any]) -> Figure:
    """The figure of :func:`render_plot`.

    The quality axis shows plain scores (never matplotlib's offset notation, which drew two means 4e-8 apart
    as far apart under a ``1e-6+7.004021e1`` label) over a range of at least 4 points, so equal scores look equal.
    """
    from matplotlib.figure import Figure

    scores = summary["scores"]
    models = summary["models"]
    ran = [n for n, t in summary["tasks"].items() if t["status"] == "ok"]
    roles = [r for r in ("static", "baseline") if r in scores]
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1.6, 1])
    width = 0.8 / max(len(roles), 1)
    for i, role in enumerate(roles):
        xs = [j + (i - (len(roles) - 1) / 2) * width for j in range(len(ran))]
        ax1.bar(xs, [100 * scores[role][n] for n in ran], width, label=f"{role}: {models[role]['name']}")
    ax1.set_xticks(range(len(ran)), ran, rotation=25, ha="right")
    ax1.set_ylabel("mteb main score x 100")
    ax1.set_title("Quality per task")
    ax1.legend(fontsize=8)
    point_labels = {
        "static": "staticst",
        "baseline": "baseline",
        "reference": "sentence-transformers (same model)",
    }
    means = []
    for role in [r for r in ROLES if r in scores]:  # the reference: same quality, sentence-transformers speed
        tps = models[role]["texts_per_second"]
        if tps and ran:
            mean = 100 * sum(scores[role][n] for n in ran) / len(ran)
            means.append(mean)
            ax2.scatter([tps], [mean], s=60, label=f"{point_labels[role]}: {models[role]['name']} ({mean:.2f})")
    ax2.legend(fontsize=7, loc="upper right")
    ax2.set_xscale("log")
    ax2.set_xlabel("encode throughput (texts/s, log scale)")
    ax2.set_ylabel(f"mean main score x 100 over {len(ran)} tasks")
    ax2.set_title("Quality vs encode speed")
    ax2.margins(x=0.5)
    if means:
        pad = max(2.0, 0.3 * (max(means) - min(means)))
        ax2.set_ylim(min(means) - pad, max(means) + pad)
    ax2.ticklabel_format(axis="y", style="plain", useOffset=False)
    return fig

