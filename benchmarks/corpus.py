"""Streaming benchmark: peak memory and throughput of ``staticst encode`` on 1M and 10M lines, beside plain encode.

Usage::

    python benchmarks/corpus.py [--lines 1000000 10000000] [--model potion-base-8M] [--format .f32]
                                [--shared-dir PATH] [--work-dir DIR] [--keep]
    python benchmarks/corpus.py --shards 2 [--lines 1000000]     # shards vs one machine (below)

The corpus is generated from the MTEB texts in ``<shared>/data/mteb`` (every text, cycled, with a running
number appended so lines are unique). Each size is embedded by the CLI in a child process (its peak RSS from
``getrusage``), and the first size also by a plain in-process ``model.encode(list_of_all_lines)`` for the
throughput ratio. Memory must be flat in corpus size: the verdict compares the peak RSS of the largest and
smallest runs. Output is written to ``--work-dir`` (default: a temporary folder, deleted at the end).

``--shards N``: the job split over N machines must give the one-machine output. The first ``--lines`` size is
written as JSON lines (``{"id": "doc-0000001", "text": ...}``, the same texts and running numbers); one
``staticst encode -i corpus.jsonl --field text --id-field id -o whole.parquet`` (``STATICST_NUM_THREADS`` =
the CPUs) is timed, then the N shards ``--shard i/N`` run as N concurrent processes of
``STATICST_NUM_THREADS`` = CPUs / N each (the N machines' share of this one), timed each and together. The shard
outputs, concatenated in shard order, must equal the whole output: the same ids in the same (input) order and
the same float32 bits, row for row (exit 1 otherwise). Prints the times, rows/s and the verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


def _write_jsonl(path: Path, lines: int, texts: list[str]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(lines):
            handle.write(json.dumps({"id": f"doc-{i:07d}", "text": f"{texts[i % len(texts)]} {i}"}, ensure_ascii=False))
            handle.write("\n")


def _read_output(path: Path) -> tuple[list[str], bytes, int]:
    """(ids, the embeddings' float32 bytes, rows) of a ``.parquet`` output of ``staticst encode``."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    column = table.column("embedding").combine_chunks()
    values = column.flatten().to_numpy(zero_copy_only=False)
    if values.dtype.name != "float32":
        raise SystemExit(f"{path}: embedding values are {values.dtype}, not float32")
    return table.column("id").to_pylist(), values.tobytes(), table.num_rows


def shard_run(model: str, lines: int, texts: list[str], work: Path, count: int) -> int:
    """The ``--shards`` job (see the module docstring); returns the exit code (0: the outputs are equal)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    corpus = work / f"corpus-{lines}.jsonl"
    _write_jsonl(corpus, lines, texts)
    base = [sys.executable, "-m", "staticst.cli", "encode", "-m", model, "-i", str(corpus), "--field", "text",
            "--id-field", "id", "--quiet"]  # fmt: skip
    load_before = os.getloadavg()
    whole = work / "whole.parquet"
    started = time.perf_counter()
    done = subprocess.run([*base, "-o", str(whole)], check=True, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "STATICST_NUM_THREADS": str(cpus)})  # fmt: skip
    whole_s = time.perf_counter() - started
    summaries = [f"one machine: {done.stderr.strip()}"]
    threads = max(cpus // count, 1)
    outs = [work / f"shard-{i}-of-{count}.parquet" for i in range(count)]
    env = {**os.environ, "STATICST_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    procs = [
        subprocess.Popen([*base, "--shard", f"{i}/{count}", "-o", str(out)], cwd=REPO, env=env,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
        for i, out in enumerate(outs)
    ]
    shard_s: list[float] = [0.0] * count
    pending = dict(enumerate(procs))
    while pending:
        for i, proc in list(pending.items()):
            if proc.poll() is not None:
                shard_s[i] = time.perf_counter() - started
                err = proc.stderr.read().strip() if proc.stderr else ""
                if proc.returncode != 0:
                    raise SystemExit(f"shard {i}/{count} failed with exit code {proc.returncode}: {err[-2000:]}")
                summaries.append(f"shard {i}/{count}: {err}")
                del pending[i]
        time.sleep(0.02)
    wall_s = time.perf_counter() - started
    load_after = os.getloadavg()
    ids, vectors, rows = _read_output(whole)
    parts = [_read_output(out) for out in outs]
    shard_ids = [i for part in parts for i in part[0]]
    shard_vectors = b"".join(part[1] for part in parts)
    expected_ids = [f"doc-{i:07d}" for i in range(lines)]
    print(f"\n{lines:,} JSON lines ({corpus.stat().st_size / 2**20:,.0f} MB), {cpus} CPUs, model {model}")
    print(f"load average {load_before[0]:.1f} before / {load_after[0]:.1f} after")
    print("the CLI's own summaries (reading, encoding, writing; without the interpreter's start-up):")
    for line in summaries:
        print(f"  {line}")
    print("wall-clock times, each process from its start:")
    print("| run | threads | rows | seconds | rows/s |")
    print("|---|---:|---:|---:|---:|")
    print(f"| one machine | {cpus} | {rows:,} | {whole_s:.1f} | {rows / whole_s:,.0f} |")
    for i, part in enumerate(parts):
        print(f"| shard {i}/{count} (concurrent) | {threads} | {part[2]:,} | {shard_s[i]:.1f} | {part[2] / shard_s[i]:,.0f} |")
    print(f"| {count} shards together (wall) | {threads * count} | {len(shard_ids):,} | {wall_s:.1f} | {len(shard_ids) / wall_s:,.0f} |")
    checks = {
        "the one-machine output holds every id in input order": ids == expected_ids,
        f"the {count} shards concatenated hold the same ids in the same order": shard_ids == ids,
        "every shard got rows": min(part[2] for part in parts) > 0,
        "the embeddings are bit-identical (float32 bytes)": shard_vectors == vectors,
    }
    for what, ok in checks.items():
        print(f"  {'ok ' if ok else 'FAIL'} {what}")
    equal = all(checks.values())
    print("verdict:", f"the {count} shards concatenate to the one-machine output" if equal else "the outputs DIFFER")
    return 0 if equal else 1


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
    parser.add_argument(
        "--shards", type=int, default=None, help="split the first --lines size into N shards and compare (see above)"
    )
    args = parser.parse_args(argv)
    if args.shards is not None and args.shards < 2:
        parser.error(f"--shards must be at least 2, got {args.shards}")
    shared = Path(args.shared_dir)
    model = str(shared / "models" / args.model) if (shared / "models" / args.model).is_dir() else args.model
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="staticst-corpus-"))
    work.mkdir(parents=True, exist_ok=True)
    texts = _texts(shared)
    if args.shards:
        code = shard_run(model, args.lines[0], texts, work, args.shards)
        if not args.keep and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
        return code
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
