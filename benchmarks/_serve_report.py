"""HTTP service benchmark, report: the printed table with ratios and targets, and the plot."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from _serve_setup import BATCHES, CONNECTIONS


def print_table(results: list[dict[str, Any]], ratios: dict[str, float], targets: dict[str, bool]) -> None:
    print()
    print("| server | mode | batch | format | req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['server']} | {r['mode']} | {r['batch']} | {r['format']} | {r['rps']:.0f} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} |"
        )
    print()
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}x")
    for key, ok in targets.items():
        print(f"target {key}: {'met' if ok else 'NOT met'}")


def plot(
    results: list[dict[str, Any]],
    path: Path,
    client: str,
    workers: int,
    paced_rate: float,
    load: tuple[float, float] | None = None,
) -> None:
    """Throughput per batch size and format (left), single-text latency per mode (right), into ``path``.

    Args:
        results: The rows of the run (server, mode, batch, format, rps, p50_ms, p99_ms).
        path: The PNG to write.
        client: The load generator, for the title.
        workers: Worker processes per server, for the title.
        paced_rate: Requests/s offered by the paced runs, for the latency panel's title.
        load: The 1-minute load average before and after the run, for the title (the figures follow it).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    series = [("staticst", "json"), ("staticst", "binary"), ("staticst", "jsonl"), ("fastapi+model2vec", "json")]
    width = 0.2
    x = np.arange(len(BATCHES))
    for k, (server, fmt) in enumerate(series):
        values = [
            next(
                r["rps"]
                for r in results
                if r["server"] == server and r["format"] == fmt and r["batch"] == b and r["mode"] == "saturation"
            )
            for b in BATCHES
        ]
        bars = ax1.bar(x + (k - 1.5) * width, values, width, label=f"{server} {fmt}")
        ax1.bar_label(bars, fmt="%.0f", fontsize=7, rotation=90, padding=2)
    ax1.set_xticks(x, [f"batch {b}" for b in BATCHES])
    ax1.set_ylabel("requests / s")
    ax1.set_title(f"Throughput, {CONNECTIONS} connections (saturated)")
    ax1.legend(fontsize=8)
    ax1.margins(y=0.15)

    rows = [r for r in results if r["batch"] == 1]
    labels = [f"{r['server']}\n{r['format']} {r['mode']}" for r in rows]
    y = np.arange(len(rows))
    ax2.barh(y - 0.2, [r["p50_ms"] for r in rows], 0.4, label="p50")
    ax2.barh(y + 0.2, [r["p99_ms"] for r in rows], 0.4, label="p99")
    ax2.set_yticks(y, labels, fontsize=7)
    ax2.set_xscale("log")
    ax2.set_xlabel("latency (ms, log scale)")
    ax2.set_title(f"Single-text latency by mode (paced: {paced_rate:.0f} req/s offered)")
    ax2.axvline(1.0, color="grey", linestyle=":", linewidth=1, label="target: p50 ≤ 1 ms")
    ax2.axvline(5.0, color="grey", linestyle="--", linewidth=1, label="target: p99 ≤ 5 ms")
    ax2.legend(fontsize=8)
    shown_load = f", load average {load[0]:.2f} -> {load[1]:.2f}" if load is not None else ""
    fig.suptitle(
        f"staticst serve vs FastAPI + model2vec, {workers} worker(s), {os.cpu_count()} CPUs, client: {client}"
        f"{shown_load}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
