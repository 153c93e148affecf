"""Server memory per request: RSS of ``staticst serve`` before, at its peak and after one large request.

Usage::

    python benchmarks/serve_memory.py [--texts 2048] [--chars 4000] [--routes tokenize,embed] [--quick]
                                      [--max-tokenize-tokens N] [--output benchmarks/results]

The case of the hardening issue (round two, item 5): ``POST /tokenize`` with 2,048 texts of 4,000 characters
(an 8.2 MB body) once made a 252 MB answer and took the server from 96 MB to 2.0 GB of RSS (0.9 GB after).
For each route this starts a fresh ``staticst serve`` (one worker, the built-in model), reads ``VmRSS`` from
``/proc/<pid>/status``, sends the request once, then reads ``VmHWM`` (the peak RSS) and ``VmRSS`` again, and
prints a table with the answer's status and size and the ratio of the peak growth to the body size.
Linux only (``/proc``). ``--quick``: 512 texts.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _serve_setup import REPO, Server, free_port

WORDS = "the of and to in is was for on that with as by at from his her bank river money fish".split()


def texts_for(count: int, chars: int, seed: int = 0) -> list[str]:
    """``count`` texts of ``chars`` characters of common English words (the issue's shape)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts: list[str] = []
        size = 0
        while size < chars:
            word = rng.choice(WORDS)
            parts.append(word)
            size += len(word) + 1
        out.append(" ".join(parts)[:chars])
    return out


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` field in KiB (``VmRSS``: now, ``VmHWM``: the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def measure(route: str, body: bytes, options: list[str]) -> dict[str, Any]:
    """One fresh server, one request: RSS before, peak and after (MiB), status and answer bytes."""
    port = free_port()
    argv = [sys.executable, "-m", "staticst.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = Server("staticst", [*argv, "--log-level", "warning", *options], port, cwd=REPO)
    try:
        pid = server.proc.pid
        before = status_kib(pid, "VmRSS")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/{route}", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=600) as resp:
                status, size = resp.status, len(resp.read())
        except urllib.error.HTTPError as exc:
            status, size = exc.code, len(exc.read())
        seconds = time.perf_counter() - start
        time.sleep(0.5)
        peak, after = status_kib(pid, "VmHWM"), status_kib(pid, "VmRSS")
    finally:
        server.stop()
    return {
        "route": f"/{route}",
        "status": status,
        "answer_mb": size / 1e6,
        "seconds": seconds,
        "rss_before_mib": before / 1024,
        "rss_peak_mib": peak / 1024,
        "rss_after_mib": after / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2048)
    parser.add_argument("--chars", type=int, default=4000)
    parser.add_argument("--routes", default="tokenize,embed")
    parser.add_argument("--max-tokenize-tokens", type=int, default=None, help="passed to staticst serve")
    parser.add_argument("--quick", action="store_true", help="512 texts")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    count = 512 if args.quick else args.texts
    body = json.dumps({"inputs": texts_for(count, args.chars)}).encode()
    options = [] if args.max_tokenize_tokens is None else ["--max-tokenize-tokens", str(args.max_tokenize_tokens)]
    rows = [measure(route, body, options) for route in args.routes.split(",")]
    print(f"{count} texts x {args.chars} characters: a {len(body) / 1e6:.1f} MB body; one fresh server per route")
    print("| route | status | answer MB | s | RSS before MiB | peak MiB | after MiB | peak growth / body |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        growth = (r["rss_peak_mib"] - r["rss_before_mib"]) * 2**20 / len(body)
        print(
            f"| {r['route']} | {r['status']} | {r['answer_mb']:.1f} | {r['seconds']:.2f} | {r['rss_before_mib']:.0f} | "
            f"{r['rss_peak_mib']:.0f} | {r['rss_after_mib']:.0f} | {growth:.1f}x |"
        )
    args.output.mkdir(parents=True, exist_ok=True)
    record = {"texts": count, "chars": args.chars, "body_bytes": len(body), "rows": rows, "machine": platform.node()}
    (args.output / "serve_memory.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
