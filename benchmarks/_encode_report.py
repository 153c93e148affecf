"""Encoding benchmark, report: the table (values and ratios staticst / other), the issue's targets and
the plot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
from _encode_setup import LARGE_BATCH, LIBRARIES, SHORT

# (key, label, unit, higher_is_better, format)
METRICS: tuple[tuple[str, str, str, bool, str], ...] = (
    ("max_abs_diff", "max abs diff vs model2vec", "", False, "diff"),
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


def metric_value(model: dict[str, Any], lib: str, key: str) -> Any:
    """The value of a table metric, or a string ("n/a", "not installed", "error") when there is none."""
    state = model["libraries"][lib]
    if key == "max_abs_diff":
        if state["status"] in ("not installed", "skipped"):
            return state["status"]
        diff = model["parity"]["max_abs_diff"].get(lib)
        return "n/a" if diff is None else diff
    if state["status"] != "ok":
        return state["status"]
    r = model["results"][lib]
    if key == "throughput_default":
        return r["throughput_default"]["sentences_per_s"]
    if key == "throughput_1024":
        return r["throughput_1024"]["sentences_per_s"]
    if key == "throughput_pool":
        if lib != "staticst":
            return "not measured"
        return r["throughput_pool"]["sentences_per_s"] if "throughput_pool" in r else "n/a"
    if key == "latency_p50_us":
        return r["latency"]["p50_us"]
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
    rows = []
    for name, model in report_models.items():
        for key, label, unit, higher, style in METRICS:
            values = {lib: metric_value(model, lib, key) for lib in LIBRARIES}
            row: dict[str, Any] = {
                "model": name,
                "metric": key,
                "label": label,
                "unit": unit,
                "higher_is_better": higher,
            }
            row["values"] = values
            ours = values["staticst"]
            for other in ("model2vec", "sentence-transformers"):
                # the pool is compared with the other library's default call
                theirs = metric_value(model, other, "throughput_default") if key == "throughput_pool" else values[other]
                ok = (
                    style not in ("bool", "diff")
                    and isinstance(ours, float)
                    and isinstance(theirs, float)
                    and theirs > 0
                )
                row[f"ratio_vs_{other}"] = ours / theirs if ok else None
            row["format"] = style
            rows.append(row)
    return rows


def print_table(
    rows: list[dict[str, Any]], table_mb: dict[str, float], tokenizer_mb: dict[str, float | None], numpy_mb: float,
    texts_mb: float,
) -> None:  # fmt: skip
    print()
    print("| model | metric | staticst | model2vec | ST | staticst/model2vec | staticst/ST |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        unit = f" ({row['unit']}, {'higher' if row['higher_is_better'] else 'lower'} is better)" if row["unit"] else ""
        cells = [fmt(row["values"][lib], row["format"]) for lib in LIBRARIES]
        ratios = [
            "" if row[f"ratio_vs_{o}"] is None else f"{row[f'ratio_vs_{o}']:.2f}x"
            for o in ("model2vec", "sentence-transformers")
        ]
        print(f"| {row['model']} | {row['label']}{unit} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    print()
    for name, table in table_mb.items():
        print(f"table size {name}: {table:.1f} MB")
    for name, tokenizer in tokenizer_mb.items():
        print(f"tokenizer {name}: {'n/a' if tokenizer is None else f'{tokenizer:.1f} MB'} RSS in a bare python + numpy")
    print(f"bare `python -c 'import numpy'` RSS: {numpy_mb:.1f} MB; the corpus texts: {texts_mb:.1f} MB")


def evaluate_targets(report_models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets; ``met`` is None when a target cannot be evaluated (model or library missing)."""
    targets: list[dict[str, Any]] = []

    def add(name: str, model: str, check: Callable[[dict[str, Any]], tuple[bool, str]]) -> None:
        entry: dict[str, Any] = {"target": name, "model": model, "met": None, "detail": ""}
        if model in report_models:
            try:
                entry["met"], entry["detail"] = check(report_models[model])
            except (KeyError, TypeError) as exc:
                entry["detail"] = f"missing measurement ({exc})"
        else:
            entry["detail"] = "model not benchmarked"
        targets.append(entry)

    def num(model: dict[str, Any], lib: str, key: str) -> float:
        value = metric_value(model, lib, key)
        if isinstance(value, str) or isinstance(value, bool):
            raise TypeError(f"{lib} {key} is {value}")
        return float(value)

    def throughput_ratio(model: dict[str, Any], least: float) -> tuple[bool, str]:
        ratio = num(model, "staticst", "throughput_default") / num(model, "model2vec", "throughput_default")
        return ratio >= least, f"{ratio:.2f}x model2vec's sentences/s (target >= {least:g}x)"

    def pool_ratio(model: dict[str, Any], least: float) -> tuple[bool, str]:
        ratio = num(model, "staticst", "throughput_pool") / num(model, "model2vec", "throughput_default")
        workers = model["pool"].get("workers")
        return ratio >= least, (
            f"{ratio:.2f}x model2vec's sentences/s with {workers} staticst worker processes (target >= {least:g}x)"
        )

    def latency_max(model: dict[str, Any], most: float) -> tuple[bool, str]:
        value = num(model, "staticst", "latency_p50_us")
        return value <= most, f"{value:.1f} µs (target <= {most:g} µs)"

    def latency_speedup(model: dict[str, Any], least: float) -> tuple[bool, str]:
        speedup = num(model, "model2vec", "latency_p50_us") / num(model, "staticst", "latency_p50_us")
        return speedup >= least, f"{speedup:.2f}x faster than model2vec (target >= {least:g}x)"

    def as_fast(model: dict[str, Any]) -> tuple[bool, str]:
        batch = num(model, "staticst", "throughput_default") / num(model, "model2vec", "throughput_default")
        single = num(model, "model2vec", "latency_p50_us") / num(model, "staticst", "latency_p50_us")
        return (
            batch >= 1 and single >= 1,
            f"batch {batch:.2f}x, one sentence {single:.2f}x model2vec's speed (>= 1x both)",
        )

    def cold(model: dict[str, Any]) -> tuple[bool, str]:
        ratio = num(model, "staticst", "cold_wall_ms") / num(model, "model2vec", "cold_wall_ms")
        torch = metric_value(model, "staticst", "torch_imported")
        return ratio <= 0.5, f"{ratio:.2f}x model2vec's wall time (target <= 0.5x); torch imported by staticst: {torch}"

    def rss(model: dict[str, Any]) -> tuple[bool, str]:
        footprint = num(model, "staticst", "footprint_mb")
        limit = model["table_mb"] + 40
        peak = num(model, "staticst", "peak_rss_mb")
        base = float(model["baseline_numpy_rss_mb"])
        tok = model.get("tokenizer_rss_mb")
        rest = footprint - base - model["table_mb"] - (tok or 0.0)
        return footprint <= limit, (
            f"footprint {footprint:.1f} MB (peak {peak:.1f} MB less texts and output) vs table "
            f"{model['table_mb']:.1f} MB + 40 MB = {limit:.1f} MB; it holds a bare python + numpy ({base:.1f} MB), "
            f"the table ({model['table_mb']:.1f} MB), "
            + ("" if tok is None else f"the HF tokenizer as `tokenizers` loads it ({tok:.1f} MB), ")
            + f"and {rest:.1f} MB of other code, caches and work buffers"
        )

    add("batch throughput >= 5x model2vec", "potion-base-8M", lambda m: throughput_ratio(m, 5))
    add("batch throughput >= 5x model2vec, staticst with its process pool", "potion-base-8M",
        lambda m: pool_ratio(m, 5))  # fmt: skip
    add("one sentence <= 15 µs", "potion-base-8M", lambda m: latency_max(m, 15))
    add("one sentence >= 9x faster than model2vec", "potion-base-8M", lambda m: latency_speedup(m, 9))
    for name in ("wordllama-l2-supercat-256", "tokenlearn-10k-int8"):
        add("at least as fast as model2vec (batch and one sentence)", name, as_fast)
    for name in report_models:
        add("cold start <= 0.5x model2vec", name, cold)
        add(
            "staticst must not import torch",
            name,
            lambda m: (
                metric_value(m, "staticst", "torch_imported") is False,
                f"torch in sys.modules: {metric_value(m, 'staticst', 'torch_imported')}",
            ),
        )
        add("peak RSS <= table size + 40 MB", name, rss)
    return targets


Series: TypeAlias = list[tuple[str, str, str | None]]
"""Bars of a plot panel: (label, library, metric key; None for the panel's own metric)."""


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(report["models"])
    colors = {"staticst": "#1f77b4", "model2vec": "#ff7f0e", "sentence-transformers": "#2ca02c"}
    default_series: Series = [(SHORT[lib], lib, None) for lib in LIBRARIES]
    panels: list[tuple[str, str, bool, Series]] = [
        (
            "throughput_default",
            "Batch throughput, whole corpus in one encode (sentences/s)",
            True,
            [
                *default_series,
                (f"ST, batch_size={LARGE_BATCH}", "sentence-transformers", "throughput_1024"),
                ("staticst, process pool", "staticst", "throughput_pool"),
            ],
        ),
        ("latency_p50_us", "One sentence, encode(str) p50 (µs)", True, default_series),
        ("cold_wall_ms", "Cold start: python -c import + load + first vector (ms, wall)", True, default_series),
        ("peak_rss_mb", "Peak RSS, load + encode the corpus (MB)", False, default_series),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    x = np.arange(len(models))
    for ax, (key, title, log, series) in zip(axes.flat, panels, strict=True):
        width = 0.8 / len(series)
        found: list[float] = []
        missing: list[tuple[float, str]] = []
        for k, (label, lib, series_key) in enumerate(series):
            values = [metric_value(report["models"][m], lib, series_key or key) for m in models]
            heights = [v if isinstance(v, float) else np.nan for v in values]
            offsets = x + (k - (len(series) - 1) / 2) * width
            bars = ax.bar(
                offsets, heights, width, label=label, color=colors[lib], hatch="//" if series_key else None,
                alpha=0.6 if series_key else 1.0,
            )  # fmt: skip
            labels = [fmt(v, "{:,.0f}" if v >= 100 else "{:.1f}") if isinstance(v, float) else "" for v in values]
            ax.bar_label(bars, labels=labels, fontsize=7, rotation=90, padding=2)
            found += [v for v in values if isinstance(v, float)]
            missing += [(float(o), v) for o, v in zip(offsets, values, strict=True) if not isinstance(v, float)]
        if key == "peak_rss_mb":
            for i, m in enumerate(models):
                limit = report["models"][m]["table_mb"] + 40
                ax.hlines(limit, i - 0.45, i + 0.45, colors="grey", linestyles="--", linewidth=1)
            ax.plot([], [], color="grey", linestyle="--", label="table + 40 MB")
        top = max(found, default=1.0)
        if log and found and min(found) > 0:
            ax.set_yscale("log")
            bottom = min(found) / 3
            ax.set_ylim(bottom, top * 30)
        else:
            bottom = 0.0
            ax.set_ylim(0, top * 1.35)
        for offset, text in missing:  # "n/a" / "not installed" where a bar would be
            ax.text(offset, bottom, f" {text}", rotation=90, ha="center", va="bottom", fontsize=7, color="grey")
        ax.set_xticks(x, models, fontsize=8)
        ax.set_xlim(-0.5, len(models) - 0.5)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="upper right")
    machine = report["machine"]
    fig.suptitle(
        f"staticst vs model2vec vs sentence-transformers: {report['corpus']['sentences']:,} sentences, "
        f"median of {report['settings']['repeats']} rounds; {machine['cpu']}, {machine['cpus']} CPUs, "
        f"load {machine['loadavg_1m_before']:.1f}->{machine['loadavg_1m_after']:.1f}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
