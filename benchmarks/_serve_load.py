"""HTTP service benchmark, load generators: ``wrk`` with a Lua script, or a Python asyncio client (raw
HTTP/1.1 keep-alive), closed-loop or paced with exponential pauses; and the median over rounds."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

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
    'WRKJSON {"requests": %d, "duration_us": %d, "status_errors": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "timeout_errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""

SOCKET_ERRORS = ("connect", "read", "write", "timeout")
"""The kinds of socket error wrk counts (its ``Socket errors: connect N, read N, write N, timeout N`` line)."""


def run_wrk(
    port: int,
    bodies: list[str],
    accept: str,
    duration: float,
    pause_ms: float,
    workdir: Path,
    connections: int,
    threads: int = 1,
    path: str = "/embed",
) -> dict[str, Any]:
    body_file = workdir / f"bodies-{abs(hash((tuple(bodies[:3]), len(bodies))))}.txt"
    body_file.write_text("\n".join(bodies) + "\n", encoding="utf-8")
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    argv = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
        "-s", str(script), f"http://127.0.0.1:{port}{path}", "--", str(body_file), accept, str(pause_ms),
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
        "errors": raw["status_errors"] + sum(raw[f"{kind}_errors"] for kind in SOCKET_ERRORS),
        # wrk's "Socket errors" line, by kind (a timeout: no answer within wrk's --timeout of 10 s), and
        # the answers with a status other than 2xx/3xx
        "socket_errors": {kind: raw[f"{kind}_errors"] for kind in SOCKET_ERRORS},
        "status_errors": raw["status_errors"],
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
    if all("socket_errors" in r for r in runs):  # wrk's counts by kind
        out["socket_errors"] = {k: sum(r["socket_errors"][k] for r in runs) for k in runs[0]["socket_errors"]}
        out["status_errors"] = sum(r["status_errors"] for r in runs)
    out["rounds"] = len(runs)
    out["rps_runs"] = [round(r["rps"]) for r in runs]
    return out
