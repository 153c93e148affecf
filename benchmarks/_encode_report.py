"""Encoding benchmark, report: the table (values per library / staticst backend, and ratios staticst / other)
and the plot. The issue's targets are in _encode_targets.py."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
from _encode_callgrind import CALLGRIND_LIBS
from _encode_setup import LARGE_BATCH, LIBRARIES, OTHERS, SHORT, STATICST_VARIANTS

# (key, label, unit, higher_is_better, format)
METRICS: tuple[tuple[str, str, str, bool, str], ...] = (
    ("max_abs_diff", "max abs diff vs the reference", "", False, "diff"),
    ("throughput_default", "throughput, default batch_size", "sent/s", True, "{:,.0f}"),
    ("throughput_1024", f"throughput, batch_size={LARGE_BATCH}", "sent/s", True, "{:,.0f}"),
    ("throughput_pool", "throughput, encode(pool=start_multi_process_pool())", "sent/s", True, "{:,.0f}"),
    ("latency_p50_us", "one sentence, p50", "µs", False, "{:.1f}"),
    ("cold_wall_ms", "cold start to first vector, wall (subprocess)", "ms", False, "{:,.0f}"),
    ("cold_inproc_ms", "cold start, in-process", "ms", False, "{:,.0f}"),
    ("torch_imported", "torch imported (cold start)", "", False, "bool"),
    ("peak_rss_mb", "peak RSS (load + encode corpus)", "MB", False, "{:.1f}"),
    ("footprint_mb", "footprint (peak - texts - output)", "MB", False, "{:.1f}"),
)
CALLGRIND_METRIC = ("instructions", "instructions per sentence (callgrind, 2,000 sentences)", "Ir", False, "{:,.0f}")
# The staticst column a row's ratios start from: the pool's number sits in the staticst column; callgrind runs the
# native kernel on one thread (valgrind serialises threads anyway).
RATIO_BASE = {"instructions": "staticst-1-thread"}


def metric_value(model: dict[str, Any], lib: str, key: str) -> Any:
    """The value of a table metric, or a string ("n/a", "not installed", "not measured", ...) when there is none."""
    state = model["libraries"][lib]
    if key == "max_abs_diff":
        if state["status"] in ("not installed", "skipped"):
            return state["status"]
        diff = model["parity"]["max_abs_diff"].get(lib)
        return "n/a" if diff is None else diff
    if state["status"] != "ok":
        return state["status"]
    r = model["results"][lib]
    if key in ("throughput_default", "throughput_1024"):
        return r[key]["sentences_per_s"]
    if key == "throughput_pool":
        if lib != "staticst":
            return "not measured"
        return r["throughput_pool"]["sentences_per_s"] if "throughput_pool" in r else "n/a"
    if key == "latency_p50_us":
        return r["latency"]["p50_us"]
    if key in ("instructions", "instructions_first_sight"):
        runs = model.get("callgrind") or {}
        if lib not in runs:
            return "not measured"
        run = runs[lib] if key == "instructions" else runs[lib].get("first_sight")
        return "not measured" if run is None else run.get("per_sentence", "error")
    cold, rss = r["cold_start"], r["rss"]
    if key == "cold_wall_ms":
        return cold.get("wall_ms", "error")
    if key == "cold_inproc_ms":
        return cold.get("total_ms", "error")
    if key == "torch_imported":
        return cold.get("torch_imported", "error")
    if key == "peak_rss_mb":
        return rss.get("peak_mb", "error")
    if key == "footprint_mb":
        return rss.get("footprint_mb", "error")
    raise KeyError(key)


def fmt(value: Any, style: str) -> str:
    if isinstance(value, str):
        return value
    if style == "bool":
        return "yes" if value else "no"
    if style == "diff":
        return "0.0" if value == 0 else f"{value:.2g}"
    return style.format(value)


def build_table(report_models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model and metric: values per library / backend, ratios of each staticst backend to the others
    (``ratios``), and the headline ratios of the row's base column (``ratio_vs_<other>``)."""
    rows = []
    for name, model in report_models.items():
        metrics = METRICS + ((CALLGRIND_METRIC,) if model.get("callgrind") is not None else ())
        for key, label, unit, higher, style in metrics:
            values = {lib: metric_value(model, lib, key) for lib in LIBRARIES}
            row: dict[str, Any] = {
                "model": name,
                "metric": key,
                "label": label,
                "unit": unit,
                "higher_is_better": higher,
                "values": values,
                "format": style,
                "ratio_base": RATIO_BASE.get(key, "staticst"),
            }
            ratios: dict[str, dict[str, float | None]] = {}
            for variant in STATICST_VARIANTS:
                ratios[variant] = {}
                for other in OTHERS:
                    # the pool is compared with the other library's default call
                    theirs = (
                        metric_value(model, other, "throughput_default") if key == "throughput_pool" else values[other]
                    )
                    ours = values[variant]
                    ok = style not in ("bool", "diff") and isinstance(ours, float) and isinstance(theirs, float)
                    ratios[variant][other] = ours / theirs if ok and theirs > 0 else None
            row["ratios"] = ratios
            for other in OTHERS:
                row[f"ratio_vs_{other}"] = ratios[row["ratio_base"]][other]
            rows.append(row)
    return rows


def print_table(
    rows: list[dict[str, Any]], table_mb: dict[str, float], tokenizer_mb: dict[str, float | None], numpy_mb: float,
    texts_mb: float,
) -> None:  # fmt: skip
    print()
    names = [SHORT[lib] for lib in LIBRARIES]
    ratio_names = [f"staticst/{SHORT[o]}" for o in OTHERS]
    print(f"| model | metric | {' | '.join(names)} | {' | '.join(ratio_names)} |")
    print("|---|---|" + "---:|" * (len(names) + len(ratio_names)))
    for row in rows:
        unit = f" ({row['unit']}, {'higher' if row['higher_is_better'] else 'lower'} is better)" if row["unit"] else ""
        if row["ratio_base"] != "staticst":
            unit += f"; ratios: {SHORT[row['ratio_base']]}"
        cells = [fmt(row["values"][lib], row["format"]) for lib in LIBRARIES]
        ratios = ["" if row[f"ratio_vs_{o}"] is None else f"{row[f'ratio_vs_{o}']:.2f}x" for o in OTHERS]
        print(f"| {row['model']} | {row['label']}{unit} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    print()
    for name, table in table_mb.items():
        print(f"table size {name}: {table:.1f} MB")
    for name, tokenizer in tokenizer_mb.items():
        print(f"tokenizer {name}: {'n/a' if tokenizer is None else f'{tokenizer:.1f} MB'} RSS in a bare python + numpy")
    print(f"bare `python -c 'import numpy'` RSS: {numpy_mb:.1f} MB; the corpus texts: {texts_mb:.1f} MB")


Series: TypeAlias = list[tuple[str, str, str | None]]
"""Bars of a plot panel: (label, library, metric key; None for the panel's own metric)."""

COLORS = {
    "staticst": "#1f77b4",
    "staticst-1-thread": "#6baed6",
    "staticst-numpy": "#08306b",
    "model2vec": "#ff7f0e",
    "laghu": "#9467bd",
    "sentence-transformers": "#2ca02c",
}


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(report["models"])
    default_series: Series = [(SHORT[lib], lib, None) for lib in LIBRARIES]
    callgrind_series: Series = []
    for lib in CALLGRIND_LIBS:  # warm (solid) and first sight (hatched) side by side
        callgrind_series += [(SHORT[lib], lib, None), (f"{SHORT[lib]}, first sight", lib, "instructions_first_sight")]
    batch_series: Series = [
        *default_series[: len(STATICST_VARIANTS)],
        ("staticst, process pool", "staticst", "throughput_pool"),
        *default_series[len(STATICST_VARIANTS) :],
        (f"ST, batch_size={LARGE_BATCH}", "sentence-transformers", "throughput_1024"),
    ]
    panels: list[tuple[str, str, bool, Series]] = [
        ("throughput_default", "Batch throughput, whole corpus in one encode (sentences/s)", True, batch_series),
        ("latency_p50_us", "One sentence, encode(str) p50 (µs)", True, default_series),
        ("cold_wall_ms", "Cold start: python -c import + load + first vector (ms, wall)", True, default_series),
        ("peak_rss_mb", "Peak RSS, load + encode the corpus (MB)", False, default_series),
        (
            "instructions",
            "Instructions per sentence (callgrind, encode of 2,000 sentences: warm; hatched: first sight)",
            True,
            callgrind_series,
        ),
    ]
    if not any(report["models"][m].get("callgrind") for m in models):
        panels = [p for p in panels if p[0] != "instructions"]  # no empty "callgrind not run" panel
    fig, axes = plt.subplots(3, 2, figsize=(15, 13))
    x = np.arange(len(models))
    for ax, (key, title, log, series) in zip(axes.flat, panels, strict=False):
        width = 0.84 / len(series)
        found: list[float] = []
        missing: list[tuple[float, str]] = []
        for k, (label, lib, series_key) in enumerate(series):
            values = [metric_value(report["models"][m], lib, series_key or key) for m in models]
            heights = [v if isinstance(v, float) else np.nan for v in values]
            offsets = x + (k - (len(series) - 1) / 2) * width
            bars = ax.bar(
                offsets, heights, width, label=label, color=COLORS[lib], hatch="//" if series_key else None,
                alpha=0.6 if series_key else 1.0,
            )  # fmt: skip
            labels = [fmt(v, "{:,.0f}" if v >= 100 else "{:.1f}") if isinstance(v, float) else "" for v in values]
            ax.bar_label(bars, labels=labels, fontsize=7, rotation=90, padding=2)
            found += [v for v in values if isinstance(v, float)]
            missing += [(float(o), v) for o, v in zip(offsets, values, strict=True) if not isinstance(v, float)]
        top = max(found, default=1.0)
        if log and found and min(found) > 0:
            ax.set_yscale("log")
            bottom = min(found) / 3
            ax.set_ylim(bottom, top * 30)
        else:
            bottom = 0.0
            ax.set_ylim(0, top * 1.35)
        for offset, text in missing:  # "n/a" / "not installed" where a bar would be
            ax.text(offset, bottom, f" {text}", rotation=90, ha="center", va="bottom", fontsize=6, color="grey")
        ax.set_xticks(x, [textwrap.fill(m, 24) for m in models], fontsize=7)  # long names wrap at hyphens
        ax.set_xlim(-0.5, len(models) - 0.5)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=6, loc="upper right", ncol=2)
    for ax in list(axes.flat)[len(panels) + 1 :]:
        ax.remove()
    for ax in list(axes.flat)[len(panels) : len(panels) + 1]:  # the panel after the charts: the verdicts
        ax.axis("off")
        lines = [
            f"{'--' if t['met'] is None else ('met' if t['met'] else 'NOT met'):>7}  [{t['model']}] {t['target']}"
            for t in report.get("targets", [])
            if t["model"] in report["models"]  # not "model not benchmarked" for models left out of the run
        ]
        ax.text(0, 1, "Targets\n" + "\n".join(lines), va="top", ha="left", fontsize=6.5, family="monospace",
                transform=ax.transAxes)  # fmt: skip
    machine = report["machine"]
    fig.suptitle(
        f"staticst (native, 1 thread, numpy) vs model2vec vs laghu vs sentence-transformers: "
        f"{report['corpus']['sentences']:,} sentences, median of {report['settings']['repeats']} rounds; "
        f"{machine['cpu']}, {machine['cpus']} CPUs, load {machine['loadavg_1m_before']:.1f}->"
        f"{machine['loadavg_1m_after']:.1f}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
