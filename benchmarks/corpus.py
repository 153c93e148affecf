"""Streaming benchmark: peak memory and throughput of ``staticst encode`` on 1M and 10M lines, beside plain encode.

Usage::

    python benchmarks/corpus.py [--lines 1000000 10000000] [--model potion-base-8M] [--format .f32]
                                [--shared-dir PATH] [--work-dir DIR] [--keep]

The corpus is generated from the MTEB texts in ``<shared>/data/mteb`` (every text, cycled, with a running
number appended so lines are unique). Each size is embedded by the CLI in a child process (its peak RSS from
``getrusage``), and the first size also by a plain in-process ``model.encode(list_of_all_lines)`` for the
throughput ratio. Memory must be flat in corpus size: the verdict compares the peak RSS of the largest and
smallest runs. Output is written to ``--work-dir`` (default: a temporary folder, deleted at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _texts(shared: Path) -> list[str]:
    texts: list[str] = []
    for path in sorted((shared / "data" / "mteb").glob("*/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts.extend(str(row[k]).replace("\n", " ") for k in ("sentence1", "sentence2", "text") if k in row)
    return texts


def _write_corpus(path: Path, lines: int, texts: list[str]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(lines):
            handle.write(f"{texts[i % len(texts)]} {i}\n")


_PLAIN = """
import sys, time, resource
from staticst import StaticSentenceTransformer
model = StaticSentenceTransformer(sys.argv[1])
texts = open(sys.argv[2], encoding="utf-8").read().splitlines()
started = time.perf_counter()
model.encode(texts)
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--model", default="potion-base-8M", help="a name in <shared>/models or a folder")
    parser.add_argument("--format", default=".f32", help="output extension (.npy, .f32, .jsonl, .parquet)")
    parser.add_argument("--shared-dir", default=os.environ.get("STATICST_SHARED_DIR") or str(REPO.parent / "shared"))
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the corpus and outputs")
    args = parser.parse_args(argv)
    shared = Path(args.shared_dir)
    model = str(shared / "models" / args.model) if (shared / "models" / args.model).is_dir() else args.model
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="staticst-corpus-"))
    work.mkdir(parents=True, exist_ok=True)
    texts = _texts(shared)
    rows = []
    for lines in sorted(args.lines):
        corpus = work / f"corpus-{lines}.txt"
        _write_corpus(corpus, lines, texts)
        out = work / f"out-{lines}{args.format}"
        cli = [sys.executable, "-m", "staticst.cli", "encode", "-m", model, "-i", str(corpus), "-o", str(out), "--quiet"]
        # each run in a fresh child whose peak RSS is its own: measured through a wrapper process
        wrapper = [sys.executable, "-c", "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
                   "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)", *cli]  # fmt: skip
        started = time.perf_counter()
        peak = float(subprocess.run(wrapper, check=True, cwd=REPO, capture_output=True, text=True).stdout.split()[-1])
        seconds = time.perf_counter() - started
        size = corpus.stat().st_size
        rows.append({"lines": lines, "corpus_mb": size / 2**20, "seconds": seconds, "peak_rss_mb": peak})
        print(f"{lines:>12,} lines: {seconds:7.1f} s, {lines / seconds:>10,.0f} lines/s, peak RSS {peak:7.1f} MB", flush=True)
        if not args.keep:
            out.unlink(missing_ok=True)
            Path(str(out) + ".json").unlink(missing_ok=True)
    smallest = min(args.lines)
    corpus = work / f"corpus-{smallest}.txt"
    _write_corpus(corpus, smallest, texts)
    plain = subprocess.run([sys.executable, "-c", _PLAIN, model, str(corpus)], check=True, cwd=REPO, capture_output=True, text=True)
    plain_seconds, plain_peak = (float(x) for x in plain.stdout.split())
    print("\n| lines | corpus (MB) | seconds | lines/s | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['lines']:,} | {row['corpus_mb']:,.0f} | {row['seconds']:.1f} | {row['lines'] / row['seconds']:,.0f} | "
            f"{row['peak_rss_mb']:.1f} |"
        )
    print(
        f"| {smallest:,} (plain `encode(list)` in one call, in process) | | {plain_seconds:.1f} (encode only) | "
        f"{smallest / plain_seconds:,.0f} | {plain_peak:.1f} |"
    )
    small, large = rows[0], rows[-1]
    ratio = (small["lines"] / small["seconds"]) / (smallest / plain_seconds)
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    print(f"\nstreaming throughput / plain encode throughput ({smallest:,} lines): {ratio:.2f}x (streaming includes reading, writing, fsync)")
    print(f"peak RSS, {large['lines']:,} vs {small['lines']:,} lines: {growth:+.1f} MB")
    flat = abs(growth) < 16
    print("verdict:", "memory is flat in corpus size" if flat else "memory grows with the corpus")
    if not args.keep and not args.work_dir:
        for path in work.iterdir():
            path.unlink()
        work.rmdir()
    return 0 if flat else 1


if __name__ == "__main__":
    raise SystemExit(main())
