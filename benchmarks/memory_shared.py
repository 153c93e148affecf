"""Memory of N worker processes on one machine that load the same model: one table per node, or one per process.

Usage::

    python benchmarks/memory_shared.py [--model PATH] [--workers 1,2,4] [--output benchmarks/results]
    python benchmarks/memory_shared.py --large        # the issue's case: a 276,326 x 256 float32 table (283 MB)
    python benchmarks/memory_shared.py --smoke        # 1 and 2 workers, a few texts: the test suite's smoke run

``--large`` builds a model2vec folder in a temporary folder from the shared 276K-piece Unigram tokenizer
(tokenlearn-10k-int8's ``tokenizer.json``) and a seeded random float32 table, one row per piece: the size of a
large multilingual static model.

What it does: for each worker count N, with table sharing on (the default: tensors of 16 MiB or more are served
from one read-only copy in ``/dev/shm/staticst-<uid>``) and off (``STATICST_TABLE_SHARE=0``: each process holds
a private copy), it starts N fresh processes that each load the model and encode 2,000 MTEB sentences (a Ray
actor's or a Spark Python worker's life), then reads every process's ``/proc/PID/smaps_rollup`` while they are
all alive: PSS (proportional set size: a page shared by k processes counts 1/k in each), RSS, and the PSS of
the shared table's mapping (``/proc/PID/smaps``, the ``/dev/shm/staticst-*`` file). A baseline process that
imports staticst and encodes with no model loaded gives the interpreter's own PSS, so "model PSS" is the total
less N baselines. Prints the table and the ratio of N workers' model PSS to one worker's (target: <= 1.5x at
4 workers with sharing on), and writes ``memory_shared.json`` to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("STATICST_SHARED_DIR", REPO.parent / "shared"))

WORKER = r"""
import json, sys
import staticst
from staticst import StaticSentenceTransformer
texts = [json.loads(line)["sentence1"] for line in open(sys.argv[2], encoding="utf-8")][: int(sys.argv[3])]
if sys.argv[1] != "-":
    model = StaticSentenceTransformer(sys.argv[1])
    model.encode(texts)
print("ready", flush=True)
sys.stdin.read()  # stay alive until the parent has measured
"""


def _kb(text: str, key: str) -> int:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def measure(pid: int) -> dict[str, float]:
    """PSS, RSS and private memory of ``pid`` and the PSS of its shared-table mappings, in MB."""
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    table_pss = 0
    current = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            current = head[5] if len(head) > 5 else ""
        elif line.startswith("Pss:") and "/staticst-" in current and current.startswith("/dev/shm"):
            table_pss += int(head[1])
    private = _kb(rollup, "Private_Clean") + _kb(rollup, "Private_Dirty")
    return {
        "pss_mb": _kb(rollup, "Pss") / 1024,
        "rss_mb": _kb(rollup, "Rss") / 1024,
        "private_mb": private / 1024,
        "table_pss_mb": table_pss / 1024,
    }


def run(model: str, workers: int, share: bool, texts_file: Path, n_texts: int) -> list[dict[str, float]]:
    """Start ``workers`` processes, wait until each has loaded and encoded, measure them all, stop them."""
    env = dict(os.environ, STATICST_TABLE_SHARE="1" if share else "0")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, model, str(texts_file), str(n_texts)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        for _ in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a worker did not start (exit {proc.wait(timeout=60)})")
        return [measure(proc.pid) for proc in procs]
    finally:
        for proc in procs:
            if proc.stdin:
                proc.stdin.close()
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def build_large(folder: Path, dim: int = 256) -> Path:
    """A model2vec folder: the shared 276K-piece Unigram tokenizer and a seeded random ``(pieces, dim)`` float32 table."""
    import numpy as np
    from tokenizers import Tokenizer

    from staticst.persistence.io import write_safetensors

    source = SHARED / "models" / "tokenlearn-10k-int8" / "tokenizer.json"
    if not source.is_file():
        raise SystemExit(f"missing {source}: set STATICST_SHARED_DIR to the shared/ folder")
    rows = Tokenizer.from_file(str(source)).get_vocab_size()
    table = np.random.default_rng(0).standard_normal((rows, dim), dtype=np.float32)
    model = folder / "large-276k"
    model.mkdir()
    (model / "tokenizer.json").write_bytes(source.read_bytes())
    (model / "config.json").write_text(json.dumps({"model_type": "model2vec", "normalize": True, "hidden_dim": dim}))
    write_safetensors(model / "model.safetensors", {"embeddings": table})
    return model


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(SHARED / "models" / "potion-base-8M"))
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--smoke", action="store_true", help="1 and 2 workers, 200 texts")
    parser.add_argument("--large", action="store_true", help="a 276,326 x 256 float32 table built from the shared 276K-piece tokenizer")
    args = parser.parse_args(argv)
    if args.large:
        import tempfile

        keep = tempfile.TemporaryDirectory(prefix="memory_shared_")
        args.model = str(build_large(Path(keep.name)))
    counts = [1, 2] if args.smoke else [int(n) for n in args.workers.split(",")]
    n_texts = 200 if args.smoke else args.texts
    texts_file = SHARED / "data" / "mteb" / "stsbenchmark-sts" / "test.jsonl"
    if not texts_file.is_file():
        raise SystemExit(f"missing {texts_file}: set STATICST_SHARED_DIR to the shared/ folder")
    baseline = run("-", 1, True, texts_file, n_texts)[0]
    rows: list[dict[str, Any]] = []
    for share in (True, False):
        for n in counts:
            procs = run(args.model, n, share, texts_file, n_texts)
            total = sum(p["pss_mb"] for p in procs)
            rows.append({
                "share": share, "workers": n, "total_pss_mb": total,
                "model_pss_mb": total - n * baseline["pss_mb"],
                "table_pss_mb": sum(p["table_pss_mb"] for p in procs),
                "rss_per_worker_mb": max(p["rss_mb"] for p in procs),
                "private_per_worker_mb": max(p["private_mb"] for p in procs),
                "processes": procs,
            })  # fmt: skip
    for row in rows:
        one = next(r for r in rows if r["share"] == row["share"] and r["workers"] == counts[0])
        row["model_pss_vs_one"] = row["model_pss_mb"] / one["model_pss_mb"] if one["model_pss_mb"] > 0 else float("nan")
    print(f"model: {args.model}; baseline process (staticst imported, no model): {baseline['pss_mb']:.1f} MB PSS")
    print(f"{'table':<8}{'workers':>8}{'total PSS':>12}{'model PSS':>12}{'vs 1':>7}{'table PSS':>11}{'RSS/worker':>12}{'private/worker':>16}")
    for row in rows:
        print(
            f"{'shared' if row['share'] else 'private':<8}{row['workers']:>8}{row['total_pss_mb']:>10.1f}MB"
            f"{row['model_pss_mb']:>10.1f}MB{row['model_pss_vs_one']:>6.2f}x{row['table_pss_mb']:>9.1f}MB"
            f"{row['rss_per_worker_mb']:>10.1f}MB{row['private_per_worker_mb']:>14.1f}MB"
        )
    result = {"model": args.model, "texts": n_texts, "baseline": baseline, "rows": rows}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "memory_shared.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
