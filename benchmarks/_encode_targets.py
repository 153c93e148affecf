"""Encoding benchmark, the targets of the issue on the compiled kernel, evaluated on the measurements.

Each is met / NOT met, or not evaluated (``met`` None) when its model or a library was not measured. "staticst"
is the default backend (native kernel, all usable CPUs); "1 thread" the native kernel with ``num_threads = 1``.
Cold start and peak RSS of the native backend are compared with the numpy backend's of the same run, allowing for
noise: wall time of fresh processes varies by several percent run to run, peak RSS by a few MB.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _encode_report import metric_value
from _encode_setup import SHORT, STATICST_VARIANTS

COLD_NOISE = 0.10  # cold start: the native backend may be this much slower than numpy and still "no worse"
RSS_NOISE_MB = 2.0  # peak RSS: this many MB (or RSS_NOISE_SHARE of numpy's peak, whichever is more)
RSS_NOISE_SHARE = 0.02
INSTRUCTIONS_MAX = 15_000


def num(model: dict[str, Any], lib: str, key: str) -> float:
    value = metric_value(model, lib, key)
    if isinstance(value, str) or isinstance(value, bool):
        raise TypeError(f"{SHORT[lib]} {key} is {value}")
    return float(value)


def throughput(lib: str, other: str, least: float) -> Callable[[dict[str, Any]], tuple[bool, str]]:
    def check(model: dict[str, Any]) -> tuple[bool, str]:
        ratio = num(model, lib, "throughput_default") / num(model, other, "throughput_default")
        return ratio >= least, (
            f"{ratio:.2f}x {SHORT[other]}'s sentences/s (target >= {least:g}x): {SHORT[lib]} "
            f"{num(model, lib, 'throughput_default'):,.0f}, {SHORT[other]} {num(model, other, 'throughput_default'):,.0f}"
        )

    return check


def latency_max(model: dict[str, Any], most: float) -> tuple[bool, str]:
    value = num(model, "staticst", "latency_p50_us")
    others = ", ".join(
        f"{SHORT[lib]} {metric_value(model, lib, 'latency_p50_us'):.1f} µs"
        for lib in ("staticst-1-thread", "staticst-numpy", "laghu")
        if isinstance(metric_value(model, lib, "latency_p50_us"), float)
    )
    return value <= most, f"{value:.1f} µs (target <= {most:g} µs); " + others


def latency_speedup(model: dict[str, Any], least: float) -> tuple[bool, str]:
    speedup = num(model, "model2vec", "latency_p50_us") / num(model, "staticst", "latency_p50_us")
    return speedup >= least, f"{speedup:.2f}x faster than model2vec (target >= {least:g}x)"


def instructions(model: dict[str, Any]) -> tuple[bool | None, str]:
    if model.get("callgrind") is None:
        return None, "not run (give --callgrind)"
    lib = "staticst-1-thread"
    value = num(model, lib, "instructions")
    where = model["callgrind"][lib].get("per_sentence_by_object", {})
    top = ", ".join(f"{name} {v:,.0f}" for name, v in list(where.items())[:4])
    return value <= INSTRUCTIONS_MAX, (
        f"{value:,.0f} instructions per sentence, native kernel on 1 thread (target <= {INSTRUCTIONS_MAX:,}); "
        f"by shared object: {top}"
    )


def cold(model: dict[str, Any]) -> tuple[bool, str]:
    native, pure = num(model, "staticst", "cold_wall_ms"), num(model, "staticst-numpy", "cold_wall_ms")
    runs = {lib: model["results"][lib]["cold_start"].get("wall_ms_runs") for lib in ("staticst", "staticst-numpy")}
    limit = pure * (1 + COLD_NOISE)
    return native <= limit, (
        f"native {native:,.0f} ms vs numpy {pure:,.0f} ms (medians; runs {runs['staticst']} and "
        f"{runs['staticst-numpy']}; target <= numpy + {COLD_NOISE:.0%} noise = {limit:,.0f} ms)"
    )


def rss(model: dict[str, Any]) -> tuple[bool, str]:
    native, pure = num(model, "staticst", "peak_rss_mb"), num(model, "staticst-numpy", "peak_rss_mb")
    limit = pure + max(RSS_NOISE_MB, RSS_NOISE_SHARE * pure)
    foot = {lib: num(model, lib, "footprint_mb") for lib in ("staticst", "staticst-numpy")}
    return native <= limit, (
        f"native {native:.1f} MB vs numpy {pure:.1f} MB (footprints {foot['staticst']:.1f} and "
        f"{foot['staticst-numpy']:.1f} MB; target <= numpy + noise = {limit:.1f} MB)"
    )


def no_torch(model: dict[str, Any]) -> tuple[bool, str]:
    seen = {SHORT[lib]: metric_value(model, lib, "torch_imported") for lib in STATICST_VARIANTS}
    measured = {lib: v for lib, v in seen.items() if isinstance(v, bool)}
    if not measured:
        raise TypeError("no staticst cold start measured")
    return not any(measured.values()), "torch in sys.modules: " + ", ".join(f"{k} {v}" for k, v in seen.items())


def evaluate_targets(report_models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets; ``met`` is None when a target cannot be evaluated (model or library missing)."""
    targets: list[dict[str, Any]] = []

    def add(name: str, model: str, check: Callable[[dict[str, Any]], tuple[bool | None, str]]) -> None:
        entry: dict[str, Any] = {"target": name, "model": model, "met": None, "detail": ""}
        if model in report_models:
            try:
                entry["met"], entry["detail"] = check(report_models[model])
            except (KeyError, TypeError) as exc:
                entry["detail"] = f"missing measurement ({exc})"
        else:
            entry["detail"] = "model not benchmarked"
        targets.append(entry)

    potion = "potion-base-8M"
    add("batch throughput >= 15x model2vec, all threads", potion, throughput("staticst", "model2vec", 15))
    add("batch throughput >= 3x laghu, all threads", potion, throughput("staticst", "laghu", 3))
    add("batch throughput >= 6x model2vec on one thread", potion, throughput("staticst-1-thread", "model2vec", 6))
    add("one sentence <= 4 µs p50", potion, lambda m: latency_max(m, 4))
    add("one sentence >= 10x faster than model2vec", potion, lambda m: latency_speedup(m, 10))
    add(f"instructions per sentence <= {INSTRUCTIONS_MAX // 1000}K (callgrind, native)", potion, instructions)
    add(
        "batch throughput >= 100x sentence-transformers' default encode (batch_size=32)",
        "potion-base-2M-sentence-transformers",
        throughput("staticst", "sentence-transformers", 100),
    )
    for name in ("wordllama-l2-supercat-256", "tokenlearn-10k-int8"):
        add("batch throughput >= 5x model2vec", name, throughput("staticst", "model2vec", 5))
    for name in report_models:
        add("cold start no worse than the numpy backend", name, cold)
        add("peak RSS no worse than the numpy backend", name, rss)
        add("staticst must not import torch", name, no_torch)
    return targets
