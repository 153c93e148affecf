"""Benchmark of the HTTP service against a FastAPI + model2vec baseline, in one run on this machine.

Usage::

    python benchmarks/serve.py [--output benchmarks/results] [--workers 2] [--duration 2] [--rounds 3]

What it does (bounded: every load run has a fixed duration, total about 2 minutes):

1. Starts ``staticst serve`` (built-in potion-base-8M) on 127.0.0.1, and a baseline written by this
   script: ``model2vec.StaticModel`` inside a minimal FastAPI app, the way a user would write it
   (pydantic request model, ``def`` endpoint, ``.tolist()``), under uvicorn with the same worker count.
2. Saturation runs: 64 keep-alive connections sending back to back (closed loop): requests/s, and the
   latency that queueing at 64 in flight gives (by Little's law p50 ~ 64 / throughput).
   Single text, batch-10 and batch-100; JSON vs binary vs JSON Lines for staticst, JSON for the baseline.
3. Paced runs: the same 64 connections, but each waits a random (exponential) time between requests so
   the total offered load is about ``--paced-rate`` requests/s (below both servers' capacity): the latency of a request on a server that
   is busy but not saturated. This is the single-text p50 / p99 of the targets.
4. One-connection runs: a single connection sending back to back: the service time of one request
   (plus loopback round trip) with nothing queued.

Every configuration is measured ``--rounds`` times, alternating between the two servers (both stay up),
and reported as the median: on a shared machine, load from other processes then hits both alike.

The load generator is ``wrk`` (Debian package ``wrk``) when installed, else a Python asyncio client
(raw HTTP/1.1 keep-alive; it is slower than wrk, so its saturation numbers are client-bound).
Writes ``serve.json`` and ``serve.png`` to ``--output`` and prints a table with the ratios.
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

# The benchmark's modules live beside this file (on sys.path when it is run as a script; added when it is loaded
# by path): _serve_setup.py (request bodies, the two servers), _serve_load.py (wrk / asyncio load generators)
# and _serve_report.py (table, plot).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _serve_load import median_run, run_python_client, run_wrk
from _serve_report import plot, print_table
from _serve_setup import (
    BASELINE_APP,
    BATCHES,
    CONNECTIONS,
    FORMATS,
    REPO,
    Server,
    bodies_for,
    check_request,
    free_port,
    load_sentences,
    shared_dir,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for both servers (default 2)")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per load run (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per configuration (default 3)")
    parser.add_argument("--paced-rate", type=float, default=2000.0, help="offered req/s of the paced runs")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args(argv)

    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
    if args.client == "wrk" and shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install wrk), use --client python")
    client = "wrk 4 (1 thread)" if use_wrk else "python asyncio client (client-bound: slower than wrk)"
    if not use_wrk:
        print("wrk not found: using the Python asyncio client (apt-get install wrk for better numbers)")
    model_path = shared_dir() / "models" / "potion-base-8M"
    if not model_path.is_dir():
        raise SystemExit(f"the baseline needs {model_path} (set STATICST_SHARED_DIR)")
    args.output.mkdir(parents=True, exist_ok=True)
    sentences = load_sentences()
    bodies = {b: bodies_for(sentences, b) for b in BATCHES}
    pause_ms = CONNECTIONS / args.paced_rate * 1000

    results: list[dict[str, Any]] = []
    t0 = time.monotonic()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "baseline_app.py").write_text(BASELINE_APP.format(model=str(model_path)), encoding="utf-8")

        def load(port: int, batch: int, accept: str, mode: str) -> dict[str, Any]:
            pause = pause_ms if mode == "paced" else 0.0
            conns = 1 if mode == "one-conn" else CONNECTIONS
            if use_wrk:
                return run_wrk(port, bodies[batch], accept, args.duration, pause, workdir, conns)
            return run_python_client(port, bodies[batch], accept, args.duration, pause, conns)

        def record(server: str, fmt: str, batch: int, mode: str, stats: dict[str, Any]) -> None:
            conns = 1 if mode == "one-conn" else CONNECTIONS
            row = {"server": server, "format": fmt, "batch": batch, "mode": mode, "connections": conns, **stats}
            results.append(row)
            print(
                f"  {server:<17} {mode:<10} batch={batch:<4} {fmt:<7} {row['rps']:>9.0f} req/s  "
                f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  errors {row['errors']}",
                flush=True,
            )

        servers = [
            (
                "staticst",
                [
                    sys.executable, "-c",
                    "import sys; from staticst.server import serve; "
                    "serve(None, host='127.0.0.1', port=int(sys.argv[1]), workers=int(sys.argv[2]), log_level='warning')",
                ],
                None,
                list(FORMATS),
            ),
            (
                "fastapi+model2vec",
                [sys.executable, "-m", "uvicorn", "baseline_app:app", "--host", "127.0.0.1", "--log-level", "warning",
                 "--no-access-log"],
                workdir,
                ["json"],
            ),
        ]  # fmt: skip
        # Both servers stay up for the whole run and every configuration is measured in rounds that
        # alternate between them (staticst, baseline, staticst, ...): on a shared machine, load from other
        # processes then hits both alike. Each row is the median of the rounds.
        running: dict[str, Server] = {}
        try:
            for name, argv_base, cwd, _ in servers:
                port = free_port()
                if name == "staticst":
                    argv_full = [*argv_base, str(port), str(args.workers)]
                else:
                    argv_full = [*argv_base, "--port", str(port), "--workers", str(args.workers)]
                running[name] = Server(name, argv_full, port, cwd)
                print(f"{name} on 127.0.0.1:{port} ({args.workers} worker(s))", flush=True)
            for name, _, _, formats in servers:
                for fmt in formats:
                    check_request(running[name].port, bodies[1][0], FORMATS[fmt])
                load(running[name].port, 1, FORMATS["json"], "saturation")  # warm-up, discarded
            plan: list[tuple[str, int, str]] = [
                (mode, batch, fmt)
                for mode, batches in (("saturation", BATCHES), ("paced", (1,)), ("one-conn", (1,)))
                for batch in batches
                for fmt in (FORMATS if mode == "saturation" else ("json", "binary") if mode == "paced" else ("json",))
            ]
            for mode, batch, fmt in plan:
                takers = [name for name, _, _, formats in servers if fmt in formats]
                runs: dict[str, list[dict[str, Any]]] = {name: [] for name in takers}
                for _ in range(args.rounds):
                    for name in takers:
                        runs[name].append(load(running[name].port, batch, FORMATS[fmt], mode))
                for name in takers:
                    record(name, fmt, batch, mode, median_run(runs[name]))
        finally:
            for server in running.values():
                server.stop()

    def find(server: str, fmt: str, batch: int, mode: str) -> dict[str, Any]:
        return next(
            r
            for r in results
            if r["server"] == server and r["format"] == fmt and r["batch"] == batch and r["mode"] == mode
        )

    ours_single = find("staticst", "json", 1, "saturation")
    base_single = find("fastapi+model2vec", "json", 1, "saturation")
    paced = find("staticst", "json", 1, "paced")
    ratios = {
        f"rps_vs_baseline_batch{b}_json": find("staticst", "json", b, "saturation")["rps"]
        / find("fastapi+model2vec", "json", b, "saturation")["rps"]
        for b in BATCHES
    }
    ratios["binary_vs_json_batch100"] = (
        find("staticst", "binary", 100, "saturation")["rps"] / find("staticst", "json", 100, "saturation")["rps"]
    )
    ratios["jsonl_vs_json_batch100"] = (
        find("staticst", "jsonl", 100, "saturation")["rps"] / find("staticst", "json", 100, "saturation")["rps"]
    )
    targets = {
        "single_text_p50_le_1ms_paced": paced["p50_ms"] <= 1.0,
        "single_text_p99_le_5ms_paced": paced["p99_ms"] <= 5.0,
        "rps_ge_2x_baseline_single_text": ours_single["rps"] >= 2 * base_single["rps"],
        "binary_ge_1.2x_json_batch100": ratios["binary_vs_json_batch100"] >= 1.2,
    }
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # other processes on the machine: a load average above the CPU count means shared cores
            "loadavg_1m_before": round(load_before[0], 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        },
        "client": client,
        "connections": CONNECTIONS,
        "workers": args.workers,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "paced_rate_rps": args.paced_rate,
        "results": results,
        "ratios": ratios,
        "targets": targets,
        "elapsed_s": time.monotonic() - t0,
    }
    (args.output / "serve.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_table(results, ratios, targets)
    print(
        f"load average (1 min) before / after: {report['machine']['loadavg_1m_before']} / "
        f"{report['machine']['loadavg_1m_after']} on {os.cpu_count()} CPUs"
    )
    plot(
        results, args.output / "serve.png", client, args.workers, args.paced_rate,
        load=(report["machine"]["loadavg_1m_before"], report["machine"]["loadavg_1m_after"]),
    )  # fmt: skip
    print(f"wrote {args.output / 'serve.json'} and {args.output / 'serve.png'} in {report['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
