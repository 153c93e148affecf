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
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CONNECTIONS = 64
BATCHES = (1, 10, 100)
FORMATS = {"json": "application/json", "binary": "application/octet-stream", "jsonl": "application/x-ndjson"}

BASELINE_APP = textwrap.dedent(
    """
    from fastapi import FastAPI
    from model2vec import StaticModel
    from pydantic import BaseModel

    app = FastAPI()
    model = StaticModel.from_pretrained({model!r})


    class EmbedRequest(BaseModel):
        inputs: str | list[str]


    @app.post("/embed")
    def embed(request: EmbedRequest) -> list[list[float]]:
        texts = [request.inputs] if isinstance(request.inputs, str) else request.inputs
        return model.encode(texts).tolist()


    @app.get("/health")
    def health() -> dict[str, str]:
        return {{"status": "ok"}}
    """
)

WRK_SCRIPT = r"""
local bodies = {}
local accept = "application/json"
local pause = 0
local idx = 0
function init(args)
  accept = args[2]
  pause = tonumber(args[3])
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  math.randomseed(os.time())
  idx = math.random(#bodies)
end
function delay()
  -- exponential pauses (Poisson arrivals): fixed pauses would keep the 64 connections in lock-step,
  -- sending synchronized bursts of 64 requests instead of a steady offered load
  if pause == 0 then return 0 end
  return -math.log(1 - math.random()) * pause
end
function request()
  idx = idx % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Accept"] = accept}, bodies[idx])
end
function done(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shared_dir() -> Path:
    value = os.environ.get("STATICST_SHARED_DIR")
    return Path(value) if value else REPO.parent / "shared"


def load_sentences(limit: int = 2000) -> list[str]:
    path = shared_dir() / "data" / "mteb" / "stsbenchmark-sts" / "test.jsonl"
    sentences: list[str] = []
    if path.is_file():
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                sentences += [row["sentence1"], row["sentence2"]]
                if len(sentences) >= limit:
                    break
    if not sentences:  # synthetic fallback: 10-word sentences
        words = "the a cat dog sat on mat bank river money man good bad fast slow car red blue sky fish".split()
        rng = np.random.default_rng(0)
        sentences = [" ".join(rng.choice(words, 10)) for _ in range(limit)]
    return sentences


def bodies_for(sentences: list[str], batch: int, count: int = 200) -> list[str]:
    rng = np.random.default_rng(batch)
    out = []
    for _ in range(count):
        picks = [sentences[i] for i in rng.integers(0, len(sentences), batch)]
        out.append(json.dumps({"inputs": picks[0] if batch == 1 else picks}))
    return out


class Server:
    """A server subprocess on 127.0.0.1, stopped with SIGTERM (then SIGKILL after a timeout)."""

    def __init__(self, name: str, argv: list[str], port: int, cwd: Path | None = None) -> None:
        self.name = name
        self.port = port
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        self.log.seek(0)
        raise RuntimeError(f"{name} did not start:\n{self.log.read().decode(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def check_request(port: int, body: str, accept: str) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/embed",
        data=body.encode(),
        headers={"Content-Type": "application/json", "Accept": accept},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        if resp.status != 200:
            raise RuntimeError(f"warm-up request failed: {resp.status}")
        resp.read()


# ----------------------------------------------------------------------------- load generators
def run_wrk(
    port: int, bodies: list[str], accept: str, duration: float, pause_ms: float, workdir: Path, connections: int
) -> dict[str, Any]:
    body_file = workdir / f"bodies-{abs(hash((tuple(bodies[:3]), len(bodies))))}.txt"
    body_file.write_text("\n".join(bodies) + "\n", encoding="utf-8")
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    argv = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
        "-s", str(script), f"http://127.0.0.1:{port}/embed", "--", str(body_file), accept, str(pause_ms),
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    line = next(li for li in out.splitlines() if li.startswith("WRKJSON "))
    raw = json.loads(line[len("WRKJSON ") :])
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": raw["status_errors"] + raw["socket_errors"],
    }


async def _py_connection(
    port: int, requests: list[bytes], deadline: float, pause: float, latencies: list[float], errors: list[int]
) -> None:
    rng = np.random.default_rng()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.perf_counter() < deadline:
            if pause:
                await asyncio.sleep(rng.exponential(pause))  # Poisson arrivals, as in the wrk script
            start = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")[1:] if h)
            }
            if b"content-length" in headers:
                await reader.readexactly(int(headers[b"content-length"]))
            else:  # chunked
                while True:
                    size = int((await reader.readline()).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


def run_python_client(
    port: int, bodies: list[str], accept: str, duration: float, pause_ms: float, connections: int
) -> dict[str, Any]:
    requests = [
        (
            f"POST /embed HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: {accept}\r\nContent-Length: {len(b.encode())}\r\n\r\n{b}"
        ).encode()
        for b in bodies
    ]
    latencies: list[float] = []
    errors: list[int] = []

    async def main() -> float:
        start = time.perf_counter()
        deadline = start + duration
        await asyncio.wait_for(
            asyncio.gather(
                *(
                    _py_connection(port, requests[i:] + requests[:i], deadline, pause_ms / 1000, latencies, errors)
                    for i in range(connections)
                )
            ),
            timeout=duration + 30,
        )
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    lat = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "errors": len(errors),
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-field median of repeated runs (request and error counts are summed)."""
    out: dict[str, Any] = {
        key: float(np.median([r[key] for r in runs])) for key in ("rps", "p50_ms", "p90_ms", "p99_ms")
    }
    out["requests"] = sum(r["requests"] for r in runs)
    out["errors"] = sum(r["errors"] for r in runs)
    out["rounds"] = len(runs)
    out["rps_runs"] = [round(r["rps"]) for r in runs]
    return out


# ----------------------------------------------------------------------------- the run
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
    plot(results, args.output / "serve.png", client, args.workers, args.paced_rate)
    print(f"wrote {args.output / 'serve.json'} and {args.output / 'serve.png'} in {report['elapsed_s']:.0f} s")
    return 0


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


def plot(results: list[dict[str, Any]], path: Path, client: str, workers: int, paced_rate: float) -> None:
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
    ax2.set_title(f"Single-text latency (paced = {paced_rate:.0f} req/s offered)")
    ax2.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    ax2.axvline(5.0, color="grey", linestyle="--", linewidth=1)
    ax2.legend(fontsize=8)
    fig.suptitle(
        f"staticst serve vs FastAPI + model2vec, {workers} worker(s), {os.cpu_count()} CPUs, client: {client}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
