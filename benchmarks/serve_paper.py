"""The SwiftEmbed paper's serving setup, run against ``staticst serve``, beside the paper's Tables 2 and 5.

Usage::

    python benchmarks/serve_paper.py [--duration 30] [--connections 400] [--threads 12] [--workers 2]
                                     [--batches 1,10,100] [--output benchmarks/results]

The paper (arXiv 2510.24793) measured with "wrk, 12 threads, 400 connections, 30 s" (Table 2) and reports
p50 / p99 latency and requests/s for single texts (Table 2) and requests/s at batch 1, 10 and 100 (Table 5).
This script runs that load shape on this machine, bounded and on loopback only:

1. Starts ``staticst serve`` (the built-in potion-base-8M, the paper's SwiftEmbed model) on 127.0.0.1 with
   ``--workers`` worker processes.
2. For each batch size: a short warm-up, then one closed-loop wrk run of ``--duration`` seconds with
   ``--connections`` keep-alive connections over ``--threads`` wrk threads, each request one ``POST /embed``
   of real STS-benchmark sentences (``{"inputs": "..."}`` for a single text, JSON answers).
3. Writes ``serve_paper.json`` (the runs, the machine, the load average before and after) to ``--output`` and
   prints the comparison table with the paper's figures (``../shared/paper/swiftembed-tables.json``).

The latency of a closed loop is mostly queueing: with 400 requests always in flight, Little's law gives a
mean latency of 400 / throughput, whatever the server does; the table shows that bound beside each row.
The paper does not name its hardware. Without ``wrk`` the Python asyncio client is used (client-bound).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _serve_load import run_python_client, run_wrk
from _serve_setup import FORMATS, REPO, Server, bodies_for, check_request, free_port, load_sentences, shared_dir

PAPER_LOAD = {"threads": 12, "connections": 400, "duration_s": 30}
"""The paper's load generator settings (Table 2: "wrk, 12 threads, 400 connections, 30 s")."""


def paper_figures(path: Path) -> dict[str, Any]:
    """SwiftEmbed's serving figures from the paper's tables (Table 2 and Table 5)."""
    tables = json.loads(path.read_text(encoding="utf-8"))
    t2, t5 = tables["table2_performance"], tables["table5_throughput_scaling"]
    row2 = dict(zip(t2["columns"], t2["rows"]["SwiftEmbed"], strict=True))
    row5 = dict(zip(t5["columns"], t5["rows"]["SwiftEmbed"], strict=True))
    return {
        "p50_ms": row2["p50_ms"],
        "p99_ms": row2["p99_ms"],
        "rps": {1: row5["single_rps"], 10: row5["batch10_rps"], 100: row5["batch100_rps"]},
        "rps_table2": row2["throughput_rps"],
        "max_concurrency": row5["max_concurrency"],
        "load_generator": t2.get("load_generator", ""),
    }


def comparison(paper: dict[str, Any], runs: list[dict[str, Any]], connections: int) -> list[list[str]]:
    """The rows of the comparison table: ``[measure, paper, staticst]`` (strings)."""
    rows: list[list[str]] = []
    by_batch = {r["batch"]: r for r in runs}
    single = by_batch.get(1)
    if single is not None:
        rows.append(["p50 latency, single text (ms)", f"{paper['p50_ms']:g} (Table 2)", f"{single['p50_ms']:.2f}"])
        rows.append(["p99 latency, single text (ms)", f"{paper['p99_ms']:g} (Table 2)", f"{single['p99_ms']:.2f}"])
    for batch in sorted(by_batch):
        run = by_batch[batch]
        label = "single text" if batch == 1 else f"batch {batch}"
        source = "Tables 2, 5" if batch == 1 else "Table 5"
        figure = paper["rps"].get(batch)
        shown = f"{figure:,} ({source})" if figure is not None else "not reported"
        rows.append([f"requests/s, {label}", shown, f"{run['rps']:,.0f}"])
        if batch != 1:
            paper_texts = f"{figure * batch:,}" if figure is not None else "not reported"
            rows.append([f"texts/s, {label}", paper_texts, f"{run['rps'] * batch:,.0f}"])
            rows.append(
                [f"p50 / p99 latency, {label} (ms)", "not reported", f"{run['p50_ms']:.2f} / {run['p99_ms']:.2f}"]
            )
    for batch in sorted(by_batch):
        run = by_batch[batch]
        label = "single text" if batch == 1 else f"batch {batch}"
        bound = connections / run["rps"] * 1000 if run["rps"] else float("inf")
        rows.append([f"Little's law mean latency, {label} (ms)", "", f"{bound:.2f}"])
    if single is not None:
        implied = connections / paper["rps"][1] * 1000
        rows.append(["the paper's own figures by Little's law (ms)", f"mean {implied:.1f} at {connections} conns", ""])
    return rows


def socket_errors(run: dict[str, Any]) -> str:
    """wrk's "Socket errors" line for one run, and its non-2xx/3xx answers ("" for the Python client)."""
    kinds = run.get("socket_errors")
    if kinds is None:
        return ""
    counts = ", ".join(f"{kind} {n}" for kind, n in kinds.items())
    return f" (socket errors: {counts}; non-2xx/3xx answers {run['status_errors']})"


def markdown(rows: list[list[str]]) -> str:
    lines = ["| measure | SwiftEmbed paper | staticst here |", "|---|---:|---:|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--duration", type=float, default=PAPER_LOAD["duration_s"], help="seconds per run (paper: 30)")
    parser.add_argument("--connections", type=int, default=PAPER_LOAD["connections"], help="paper: 400")
    parser.add_argument("--threads", type=int, default=PAPER_LOAD["threads"], help="wrk threads (paper: 12)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server worker processes")
    parser.add_argument("--batches", default="1,10,100", help="texts per request, comma-separated (Table 5)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each measured run")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--paper", type=Path, default=shared_dir() / "paper" / "swiftembed-tables.json")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    if not batches or min(batches) < 1 or args.connections < 1 or args.threads < 1 or args.duration <= 0:
        parser.error("batches, connections, threads and duration must be positive")
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
    if args.client == "wrk" and shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install wrk), use --client python")
    threads = min(args.threads, args.connections)
    client = f"wrk ({threads} threads)" if use_wrk else "python asyncio client (client-bound: slower than wrk)"
    paper = paper_figures(args.paper)
    args.output.mkdir(parents=True, exist_ok=True)
    sentences = load_sentences()
    accept = FORMATS["json"]
    runs: list[dict[str, Any]] = []
    t0 = time.monotonic()
    load_before = os.getloadavg()
    port = free_port()
    argv_serve = [
        sys.executable, "-c",
        "import sys; from staticst.server import serve; "
        "serve(None, host='127.0.0.1', port=int(sys.argv[1]), workers=int(sys.argv[2]), log_level='warning')",
        str(port), str(args.workers),
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)

        def load(bodies: list[str], seconds: float) -> dict[str, Any]:
            if use_wrk:
                return run_wrk(port, bodies, accept, seconds, 0.0, workdir, args.connections, threads=threads)
            return run_python_client(port, bodies, accept, seconds, 0.0, args.connections)

        started = time.monotonic()
        server = Server("staticst", argv_serve, port)
        startup_s = round(time.monotonic() - started, 1)  # spawn to the first 200 from /health
        print(
            f"staticst serve on 127.0.0.1:{port}, {args.workers} worker(s), answering after {startup_s} s; "
            f"client {client}",
            flush=True,
        )
        try:
            for batch in batches:
                bodies = bodies_for(sentences, batch)
                check_request(port, bodies[0], accept)
                load(bodies, args.warmup)  # discarded
                before = os.getloadavg()[0]
                run = {"batch": batch, **load(bodies, args.duration), "loadavg_1m_before": round(before, 2)}
                run["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
                runs.append(run)
                print(
                    f"  batch={batch:<4} {run['rps']:>9.0f} req/s  p50 {run['p50_ms']:7.2f} ms  "
                    f"p99 {run['p99_ms']:7.2f} ms  errors {run['errors']}{socket_errors(run)}  load {before:.2f} -> "
                    f"{run['loadavg_1m_after']:.2f}",
                    flush=True,
                )
        finally:
            server.stop()
    rows = comparison(paper, runs, args.connections)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_1m_before": round(load_before[0], 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        },
        "load": {"client": client, "connections": args.connections, "threads": threads, "duration_s": args.duration},
        "paper_load": PAPER_LOAD,
        "workers": args.workers,
        "startup_s": startup_s,
        "paper": {**paper, "rps": {str(k): v for k, v in paper["rps"].items()}},
        "runs": runs,
        "table": rows,
        "elapsed_s": round(time.monotonic() - t0, 1),
    }
    out = args.output / "serve_paper.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print()
    print(markdown(rows))
    print(
        f"\nload average (1 min) before / after: {report['machine']['loadavg_1m_before']} / "
        f"{report['machine']['loadavg_1m_after']} on {os.cpu_count()} CPUs; wrote {out} in {report['elapsed_s']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
