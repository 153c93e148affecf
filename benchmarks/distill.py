"""Distillation benchmark: staticst.distill (ONNX Runtime, no torch) beside model2vec 0.10's distill (torch on the
CPU), on the same transformer, in one run.

Usage::

    python benchmarks/distill.py                      # full vocabulary, pca_dims=256, both MTEB tasks
    python benchmarks/distill.py --quick              # a ~3K-token subset, no MTEB (a smoke run)
    python benchmarks/distill.py --rounds 3           # three distillations per library, alternating

What it measures (each distillation in a fresh child process, so imports and peak RSS are the library's own):

1. Time: the child's wall time from interpreter start to saved model, the import time and the ``distill``
   call alone; peak RSS (``ru_maxrss`` of the child). The libraries alternate round by round.
2. Fidelity: the two distilled models side by side: the same tokens and tokenizer, and the cosine of each
   token's row with model2vec's. Both use model2vec's PCA sign convention (each component's largest-magnitude
   score positive), so rows are compared as they are, with no sign fitting.
3. MTEB (unless ``--no-mteb``): STSBenchmark and Banking77 scores of both distilled models in the evaluation
   harness (``eval/mteb_tasks.py``, offline data in ``shared/data/mteb``).

Targets (the issue's): >= 99.9% of rows at cosine >= 0.999; MTEB within 0.3 points (x100); staticst's time
and peak RSS no higher than model2vec's. Writes ``distill.json`` to ``--output`` and prints the tables.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
LIBRARIES = ("staticst", "model2vec")
TASKS = ("STSBenchmark", "Banking77Classification")
COSINE_TARGET, SHARE_TARGET, MTEB_TARGET = 0.999, 0.999, 0.3
#: --quick: word pieces of at most 3 characters and the special tokens (about 3K of MiniLM's 30K)
QUICK_PATTERN = r"(?!\[(?:PAD|UNK|CLS|SEP|MASK)\]$)(?:##|.{4,}|\[unused\d+\])"
T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {message}", flush=True)


def shared_dir(value: str | None) -> Path:
    if value:
        return Path(value)
    env = os.environ.get("STATICST_SHARED_DIR")
    return Path(env) if env else REPO.parent / "shared"


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------- child: one distillation


def child(library: str, model: str, out: str, pca_dims: int, pattern: str) -> None:
    """Distil ``model`` with ``library``, save to ``out``, print one JSON line of measurements."""
    import resource

    start = time.perf_counter()
    result: Any
    if library == "staticst":
        from staticst.distill import distill

        imported = time.perf_counter()
        result = distill(model, pca_dims=pca_dims, token_remove_pattern=pattern)
        threads = None
    else:
        import torch
        from model2vec.distill import distill as m2v_distill

        imported = time.perf_counter()
        result = m2v_distill(model, pca_dims=pca_dims, token_remove_pattern=pattern, device="cpu")
        threads = torch.get_num_threads()
    done = time.perf_counter()
    result.save_pretrained(out)
    from staticst.kernel import default_threads

    print(
        json.dumps(
            {
                "import_s": imported - start,
                "distill_s": done - imported,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "torch_imported": "torch" in sys.modules,
                "threads": threads if threads is not None else default_threads(),
                "rows": int(result.embedding.shape[0]),
                "dim": int(result.embedding.shape[1]),
            }
        )
    )


def run_child(library: str, model: Path, out: Path, pca_dims: int, pattern: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", library, "--model", str(model), "--child-out", str(out)]
    cmd += ["--pca-dims", str(pca_dims), "--pattern", pattern]
    began = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"{library} distillation failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


# ---------------------------------------------------------------------- comparisons


def fidelity(ours: Path, reference: Path) -> dict[str, Any]:
    """Row-by-row cosine of the two saved models (model2vec layout), and whether tokens and tokenizers agree."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    a = load_file(str(ours / "model.safetensors"))["embeddings"].astype(np.float32)
    b = load_file(str(reference / "model.safetensors"))["embeddings"].astype(np.float32)
    tok_a, tok_b = (Tokenizer.from_file(str(p / "tokenizer.json")) for p in (ours, reference))
    vocab_a, vocab_b = tok_a.get_vocab(), tok_b.get_vocab()
    same_json = json.loads(tok_a.to_str()) == json.loads(tok_b.to_str())
    if vocab_a != vocab_b or a.shape != b.shape:
        return {"same_tokens": False, "same_tokenizer": same_json, "shape": [list(a.shape), list(b.shape)]}
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(norms > 0, (a * b).sum(axis=1) / np.where(norms > 0, norms, 1), 1.0)
    inverse = {i: t for t, i in vocab_a.items()}
    worst = np.argsort(cos)[:5]
    return {
        "same_tokens": True,
        "same_tokenizer": same_json,
        "rows": int(len(cos)),
        "share_at_target": float((cos >= COSINE_TARGET).mean()),
        "rows_below_target": int((cos < COSINE_TARGET).sum()),
        "min_cosine": float(cos.min()),
        "median_cosine": float(np.median(cos)),
        "p001_cosine": float(np.quantile(cos, 0.001)),
        "worst": [[inverse[int(i)], float(cos[i])] for i in worst],
        "max_abs_diff": float(np.abs(a - b).max()),
        "sign_convention": "model2vec 0.10's on both sides: each PCA component's largest-magnitude score is positive",
    }


def mteb_scores(folder: Path, out: Path, data: Path) -> dict[str, float | None]:
    cmd = [sys.executable, str(REPO / "eval" / "mteb_tasks.py"), "--model", str(folder), "--tasks", *TASKS]
    cmd += ["--data-dir", str(data), "--offline", "--output", str(out), "--no-plot"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"MTEB harness failed on {folder}:\n{proc.stderr[-4000:]}")
    scores: dict[str, float | None] = json.loads((out / "summary.json").read_text(encoding="utf-8"))["scores"]["static"]
    return scores


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": runs}
    for key in ("wall_s", "distill_s", "import_s", "peak_rss_mb"):
        out[key] = statistics.median(r[key] for r in runs)
    out["torch_imported"] = any(r["torch_imported"] for r in runs)
    out["threads"] = runs[0]["threads"]
    return out


# ---------------------------------------------------------------------- report


def print_tables(report: dict[str, Any]) -> None:
    res, fid = report["results"], report["fidelity"]
    s, m = res["staticst"], res["model2vec"]
    print()
    print(f"| distillation ({report['settings']['rows']} tokens, pca_dims={report['settings']['pca_dims']}) | staticst (ONNX Runtime) | model2vec (torch CPU) | staticst / model2vec |")
    print("|---|---|---|---|")
    for key, label in (("wall_s", "wall time, s (process start to saved model)"), ("distill_s", "distill() call, s"), ("import_s", "import, s"), ("peak_rss_mb", "peak RSS, MB")):
        print(f"| {label} | {s[key]:.1f} | {m[key]:.1f} | {s[key] / m[key]:.2f} |")
    print(f"| torch imported | {s['torch_imported']} | {m['torch_imported']} | |")
    print(f"| threads | {s['threads']} | {m['threads']} | |")
    print()
    if fid.get("same_tokens"):
        print("| fidelity to model2vec | value | target |")
        print("|---|---|---|")
        print(f"| same tokens, same tokenizer.json | {fid['same_tokens']}, {fid['same_tokenizer']} | yes |")
        print(f"| rows with cosine >= {COSINE_TARGET} | {100 * fid['share_at_target']:.3f}% ({fid['rows_below_target']} below) | >= {100 * SHARE_TARGET:.1f}% |")
        print(f"| min / 0.1th percentile / median cosine | {fid['min_cosine']:.6f} / {fid['p001_cosine']:.6f} / {fid['median_cosine']:.6f} | |")
        print(f"| worst rows | {', '.join(f'{t!r} {c:.4f}' for t, c in fid['worst'])} | |")
    else:
        print(f"fidelity: the two models have different tokens ({fid})")
    if report.get("mteb"):
        print()
        print("| MTEB task (main score x100) | staticst distill | model2vec distill | difference | target |")
        print("|---|---|---|---|---|")
        for task in TASKS:
            a, b = report["mteb"]["staticst"].get(task), report["mteb"]["model2vec"].get(task)
            if a is None or b is None:
                print(f"| {task} | {a} | {b} | n/a | <= {MTEB_TARGET} |")
            else:
                print(f"| {task} | {100 * a:.2f} | {100 * b:.2f} | {100 * (a - b):+.2f} | <= {MTEB_TARGET} |")
    print()
    for name, ok in report["targets"].items():
        print(f"target {name}: {'met' if ok else 'MISSED' if ok is False else 'not measured'}")
    machine = report["machine"]
    print(f"\nmachine: {machine['cpus']} CPUs, load average {machine['loadavg_before']} -> {machine['loadavg_after']}")


def targets(report: dict[str, Any]) -> dict[str, bool | None]:
    fid, res = report["fidelity"], report["results"]
    out: dict[str, bool | None] = {
        "fidelity": bool(fid.get("same_tokens")) and fid.get("share_at_target", 0) >= SHARE_TARGET,
        "speed": res["staticst"]["wall_s"] <= res["model2vec"]["wall_s"],
        "peak_rss": res["staticst"]["peak_rss_mb"] <= res["model2vec"]["peak_rss_mb"],
        "mteb": None,
    }
    if report.get("mteb"):
        diffs = [
            abs(report["mteb"]["staticst"][t] - report["mteb"]["model2vec"][t]) * 100
            for t in TASKS
            if report["mteb"]["staticst"].get(t) is not None and report["mteb"]["model2vec"].get(t) is not None
        ]
        out["mteb"] = len(diffs) == len(TASKS) and max(diffs) <= MTEB_TARGET
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="transformer folder (default: shared/models/all-MiniLM-L6-v2)")
    ap.add_argument("--shared", default=None, help="shared/ folder (default: STATICST_SHARED_DIR, else ../shared)")
    ap.add_argument("--pca-dims", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=1, help="distillations per library (alternating)")
    ap.add_argument("--quick", action="store_true", help="a ~3K-token subset of the vocabulary, no MTEB")
    ap.add_argument("--no-mteb", action="store_true", help="skip the MTEB tasks")
    ap.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--child", choices=LIBRARIES, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--pattern", default=r"\[unused\d+\]", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.model, args.child_out, args.pca_dims, args.pattern)
        return 0
    shared = shared_dir(args.shared)
    model = Path(args.model) if args.model else shared / "models" / "all-MiniLM-L6-v2"
    if not (model / "onnx" / "model.onnx").is_file():
        raise SystemExit(f"{model / 'onnx' / 'model.onnx'} does not exist: pass --model with an ONNX export, or --shared.")
    pattern = QUICK_PATTERN if args.quick else r"\[unused\d+\]"
    run_mteb = not (args.quick or args.no_mteb)
    args.output.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {lib: [] for lib in LIBRARIES}
    with tempfile.TemporaryDirectory(prefix="distill-bench-") as tmp:
        folders = {lib: Path(tmp) / lib for lib in LIBRARIES}
        for round_ in range(args.rounds):
            order = LIBRARIES if round_ % 2 == 0 else LIBRARIES[::-1]
            for lib in order:
                log(f"round {round_ + 1}/{args.rounds}: {lib} distils {model.name}")
                runs[lib].append(run_child(lib, model, folders[lib], args.pca_dims, pattern))
                log(f"  {lib}: {runs[lib][-1]['wall_s']:.1f} s, peak RSS {runs[lib][-1]['peak_rss_mb']:.0f} MB")
        report: dict[str, Any] = {
            "benchmark": "distill",
            "settings": {
                "model": str(model), "pca_dims": args.pca_dims, "token_remove_pattern": pattern, "quick": args.quick,
                "rounds": args.rounds, "rows": runs["staticst"][0]["rows"],
            },
            "results": {lib: summarise(runs[lib]) for lib in LIBRARIES},
            "fidelity": fidelity(folders["staticst"], folders["model2vec"]),
        }  # fmt: skip
        if run_mteb:
            report["mteb"] = {}
            for lib in LIBRARIES:
                log(f"MTEB ({', '.join(TASKS)}) on the {lib} distillation")
                report["mteb"][lib] = mteb_scores(folders[lib], Path(tmp) / f"mteb-{lib}", shared / "data" / "mteb")
    load_after = os.getloadavg()
    report["machine"] = {
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in load_after],
        "versions": {d: version(d) for d in ("staticst", "onnxruntime", "scikit-learn", "model2vec", "torch", "transformers", "numpy")},
    }
    report["targets"] = targets(report)
    (args.output / "distill.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print_tables(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
