"""Encoding benchmark: staticst (native kernel on all threads and on one, and numpy) against model2vec, laghu and
sentence-transformers, side by side in one run.

Usage::

    python benchmarks/encode.py [--quick] [--models potion-base-8M ...] [--text-file PATH ...] [--callgrind]
                                [--output benchmarks/results] [--repeats N] [--shared-dir PATH]

Models are folder names in ``<shared>/models`` (or paths to model folders); ``<shared>`` is ``--shared-dir``,
else ``$STATICST_SHARED_DIR``, else ``../shared`` beside the repo. Default models: potion-base-8M,
potion-base-2M-sentence-transformers (a sentence-transformers layout), wordllama-l2-supercat-256,
tokenlearn-10k-int8. Only the public API is measured: ``encode`` as a user calls it.

Libraries and backends (columns; a column is "not installed" when the package is missing):

- staticst: ``StaticSentenceTransformer(path)`` (with ``family="model2vec"`` on a model2vec folder: the rules of
  the reference it is compared with): the default backend (``kernel="auto"``: the native kernel when
  built, on all usable CPUs; ``info()["backend"]`` is recorded, with a note when it is not native).
- staticst 1 thread: ``StaticSentenceTransformer(path, kernel="native")`` with ``model.num_threads = 1``
  ("n/a" with the reason when the kernel is not built or cannot run the model).
- staticst numpy: ``StaticSentenceTransformer(path, kernel="numpy")``: the pure path.
- model2vec: ``StaticModel.from_pretrained(path)``.
- laghu: ``laghu.LeanModel.from_pretrained(path)``: at its fastest, with laghu-rs installed (its Rust tokenizer
  and pooling; recorded, with a note when it is not on them). Its default batch_size is 1024.
- sentence-transformers (ST): ``SentenceTransformer(path, device="cpu")`` for folders with a ``modules.json``,
  else ``SentenceTransformer(modules=[StaticEmbedding.from_model2vec(path), Normalize()], device="cpu")``
  (the ``Normalize`` only when the model's config says ``normalize``).

Reference for the vectors: model2vec for folders in its layout; sentence-transformers for a sentence-transformers
layout (``modules.json``, no model2vec ``config.json``: model2vec and laghu load its table but skip its
``Normalize`` module, so their vectors are not unit length there). staticst's three backends must be bit-identical
to each other and within 1e-6 of the reference (0.0 against model2vec, ~1e-7 against ST). Another library is
checked with tolerance 1e-3 (ST pools float16 tables in float16): ST keeps the tokenizer's unknown token, which
model2vec drops, so sentences containing one differ; when that is at most 1% of the corpus (potion-base-8M: a few
sentences with characters outside its vocabulary) the library is measured and the difference is noted; when more
(ST on tokenlearn-10k-int8: nearly every sentence; model2vec and laghu on the ST layout; laghu where it follows
model2vec 0.9's arithmetic) or when it cannot load the model, its column is "n/a" with the reason, never a number.

Corpus: real sentences from the MTEB data in ``<shared>/data/mteb`` (STSBenchmark and SICK-R sentence pairs,
Banking77 and Emotion texts, SciFact queries and titles; all splits), deduplicated and shuffled with a fixed
seed (about 61K sentences; ``--quick`` keeps 2,000 of them, ``--max-sentences`` sets any cap), plus every line of
each ``--text-file``, never capped (``--no-mteb`` keeps only those). Every measurement below runs on it.

Methodology:

0. The headline, first sight (``_encode_firstsight.py``): per script group -- English (the corpus below) and the
   Latin, Cyrillic/Greek, CJK and Arabic/Hebrew/Indic/Thai messages of the translation catalogues the Django
   package ships (``_encode_corpora.py``; ``pip install staticst[bench]``) -- each library (staticst on all threads
   and on one, model2vec, laghu) is loaded afresh, warmed up on one slice, then each round encodes a slice it
   has never seen (first sight), and the same slice again (warm), libraries alternating; medians over
   ``--first-sight-rounds`` rounds of ``--slice-size`` sentences, ratios staticst / model2vec and / laghu from
   the same run. ``--callgrind`` counts instructions per sentence both ways too (see 6).
1. Correctness first: every library / backend encodes the whole corpus once (also the warm-up) and is compared
   with the reference (max abs difference, printed; 0.0 when bit-identical). A staticst mismatch is reported
   loudly and makes the script exit with status 1.
2. Batch throughput (sentences/s): the whole corpus in one ``encode(list)`` call, at each library's default
   ``batch_size`` (staticst 32, which is only progress-bar granularity there; model2vec 1024 and, above 10,000
   sentences, its joblib thread pool; laghu 1024; ST 32) and again at ``batch_size=1024`` for everyone.
   staticst is also timed through its multi-process pool (``encode(corpus, pool=model.start_multi_process_pool())``,
   one spawned worker per usable CPU), alternating with the others; its vectors are first checked to equal
   in-process staticst's bit for bit. The pool only engages from ``staticst.multiprocess.POOL_MIN_TEXTS`` texts
   (4,096), so with a smaller corpus (``--quick``) that row is "n/a". The ratio compares it with the other
   library's default call.
3. One-sentence latency (µs): ``encode(str)`` on the same varied sentences for every library and backend, each
   call timed on its own with ``time.perf_counter_ns``, after 50 warm-up calls; median (and p90) per round.
4. Runs alternate between the libraries and backends (rotating the order every round) and each number is the
   median over ``--repeats`` rounds: on a shared machine, load from other processes then hits all alike.
   model2vec sets ``TOKENIZERS_PARALLELISM=false`` in the process environment when it uses its thread pool; the
   script puts the variable back after every call so it does not leak into the next measurement. Objects alive
   after loading are frozen (``gc.freeze``) so no library pays for scanning the others' objects (torch's, mostly).
5. Cold start and peak RSS, from ``--cold-starts`` fresh ``python -c`` child processes per library and backend
   (alternated): each imports the library, loads the model and encodes one sentence -- the cold start, measured
   as the wall time from spawning the child to the arrival of its first result line (interpreter start-up
   included) and as the in-process time the child prints (import / load / first encode separately); the child
   also reports whether ``torch`` is in ``sys.modules`` (staticst must not import it). The page cache is warm
   (the model files were just read): a warm-disk cold start. The same child then reads the corpus and encodes
   all of it: its peak RSS is the kernel's high-water mark ``VmHWM`` from ``/proc/self/status``.
   (``resource.getrusage``'s ``ru_maxrss`` is recorded too, but on Linux it keeps the parent's high-water mark
   across ``exec`` -- here the parent holds torch -- so it overstates a child's peak.) Reported with the model's
   table size (the tensors in ``model.safetensors``), the RSS of a bare ``python -c "import numpy"`` and the
   "footprint": the peak less the input texts (measured in the bare-numpy child) and the returned array, which
   any library must hold. Medians over the runs. A last child loads only the model's ``tokenizer.json`` with
   ``tokenizers``: the RSS that the HF tokenizer alone adds.
6. ``--callgrind`` (off by default; minutes per model): instructions per sentence under
   ``valgrind --tool=callgrind`` for staticst native (1 thread), staticst numpy, model2vec and laghu, on a fixed
   slice (the first 2,000 sentences of the corpus) encoded once in one call after a warm-up encode of the same
   slice (warm) or of the next 2,000 sentences (first sight). Method: callgrind client requests (a two-function
   helper compiled with ``cc``) start the instrumentation just before the call and stop it just after
   (``--instr-atstart=no``), counting every thread of the process in that window only; each child runs twice, encoding N=0 and N=2,000, and the difference / 2,000 is reported (it also cancels the helper's own cost).
   The whole-process difference without client requests was tried and rejected: loading is not deterministic
   (~2.5K instructions per sentence of noise); ``--toggle-collect`` misses worker threads. Details in
   ``_encode_callgrind.py``.

Every measurement is bounded: in-process timing loops stop at a time budget, children have a timeout.
Targets from the issue are evaluated at the end (met / NOT met / not evaluated; see ``_encode_targets.py``).
Writes ``encode.json`` and ``encode.png`` to ``--output`` (default ``benchmarks/results``) and prints a table with
ratios staticst / other (throughput: higher is better, so a ratio > 1 favours staticst; times, memory and
instructions: a ratio < 1 favours staticst). It refuses to run on a sanitizer build of the kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# The benchmark's modules live beside this file (on sys.path when it is run as a script; added when it is loaded
# by path): _encode_setup.py (libraries, models, corpus, machine), _encode_parity.py (vectors vs the reference),
# _encode_timing.py (in-process timing), _encode_children.py (cold start and RSS in child processes),
# _encode_callgrind.py (instructions per sentence), _encode_model.py (one model, all measurements),
# _encode_report.py (table, plot) and _encode_targets.py (the targets).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _encode_children import baseline_rss, tokenizer_rss
from _encode_firstsight import print_first_sight
from _encode_model import benchmark_model
from _encode_report import build_table, plot, print_table
from _encode_setup import (
    DEFAULT_MODELS,
    LARGE_BATCH,
    LIBRARIES,
    REPO,
    SHORT,
    WARMUP_CALLS,
    installed,
    kernel_build,
    load_corpus,
    machine_info,
    resolve_model,
    shared_dir,
)
from _encode_targets import evaluate_targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="2K sentences, 3 rounds, 1 cold start: about 80 s for the default models"
    )
    parser.add_argument(
        "--models", nargs="+", default=list(DEFAULT_MODELS), help="names in <shared>/models, or folders"
    )
    parser.add_argument("--libraries", nargs="+", choices=LIBRARIES, default=list(LIBRARIES))
    parser.add_argument("--text-file", type=Path, action="extend", nargs="+", default=[], help="one sentence per line")
    parser.add_argument("--no-mteb", action="store_true", help="only the --text-file sentences")
    parser.add_argument(
        "--max-sentences", type=int, default=None, help="cap on the MTEB sentences (default all; 2000 with --quick)"
    )
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--shared-dir", default=None, help="default: $STATICST_SHARED_DIR, else ../shared")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per measurement (default 5; 3 with --quick)")
    parser.add_argument("--latency-calls", type=int, default=None, help="encode(str) calls per round (2000; 300)")
    parser.add_argument("--cold-starts", type=int, default=None, help="child processes per library (3; 1)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of timed runs per library and measurement")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds before a child process is killed")
    parser.add_argument(
        "--first-sight-rounds", type=int, default=None, help="fresh slices per script group (default 5; 2 with --quick)"
    )
    parser.add_argument(
        "--slice-size", type=int, default=None, help="sentences per first-sight slice (default 2000; 200 with --quick)"
    )
    parser.add_argument(
        "--callgrind", action="store_true", help="also count instructions per sentence under valgrind (slow)"
    )
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.latency_calls = args.latency_calls or (300 if args.quick else 2000)
    args.cold_starts = args.cold_starts or (1 if args.quick else 3)
    args.first_sight_rounds = args.first_sight_rounds or (2 if args.quick else 5)
    args.slice_size = args.slice_size or (200 if args.quick else 2000)
    limit = args.max_sentences if args.max_sentences is not None else (2000 if args.quick else None)
    if min(args.repeats, args.latency_calls, args.cold_starts, args.first_sight_rounds, args.slice_size) < 1 or (
        limit is not None and limit < 1
    ):
        parser.error(
            "--repeats, --latency-calls, --cold-starts, --first-sight-rounds, --slice-size and --max-sentences "
            "must be positive"
        )
    if args.no_mteb and not args.text_file:
        parser.error("--no-mteb needs at least one --text-file")
    if "staticst" not in args.libraries:
        parser.error("--libraries must include staticst")
    if not installed("staticst"):
        raise SystemExit("staticst is not installed: pip install -e .")
    build = kernel_build()
    if build["sanitized"]:  # importing it without the sanitizer runtime aborts; its timings would mean nothing
        raise SystemExit(
            f"{build['file']} is a sanitizer build (left by .ci/sanitize while it runs?): rebuild it with "
            "`python setup.py build_ext --inplace --force`, then run the benchmark"
        )

    t0 = time.monotonic()
    load_before = os.getloadavg()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only: never touch the network
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    root = shared_dir(args.shared_dir)
    folders = {name: resolve_model(name, root) for name in args.models}
    corpus, sources = load_corpus(root, args.text_file, not args.no_mteb, limit)
    chars = np.array([len(t) for t in corpus])
    print(
        f"corpus: {len(corpus):,} unique sentences (mean {chars.mean():.0f} chars, median {np.median(chars):.0f}) "
        f"from {len(sources)} sources",
        flush=True,
    )
    libs = [lib for lib in LIBRARIES if lib in args.libraries]
    missing = [lib for lib in libs if not installed(lib)]
    for lib in missing:
        print(f"{lib}: not installed, its column is skipped", flush=True)
    args.output.mkdir(parents=True, exist_ok=True)

    report_models: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="staticst-bench-") as tmp:
        workdir = Path(tmp)
        corpus_file = workdir / "corpus.jsonl"
        corpus_file.write_text("".join(json.dumps(t) + "\n" for t in corpus), encoding="utf-8")
        numpy_mb, texts_mb = baseline_rss(corpus_file, args.timeout, workdir)
        for name, folder in folders.items():
            report_models[name] = benchmark_model(name, folder, libs, corpus, corpus_file, args, texts_mb, workdir)
            report_models[name]["baseline_numpy_rss_mb"] = numpy_mb
            report_models[name]["tokenizer_rss_mb"] = tokenizer_rss(folder, args.timeout, workdir)

    load_after = os.getloadavg()
    machine = machine_info()
    machine["loadavg_before"] = [round(v, 2) for v in load_before]
    machine["loadavg_after"] = [round(v, 2) for v in load_after]
    machine["loadavg_1m_before"] = round(load_before[0], 2)
    machine["loadavg_1m_after"] = round(load_after[0], 2)
    if "torch" in sys.modules:
        machine["torch_threads"] = sys.modules["torch"].get_num_threads()
    rows = build_table(report_models)
    targets = evaluate_targets(report_models)
    report: dict[str, Any] = {
        "benchmark": "encode",
        "machine": machine,
        "settings": {
            "quick": args.quick,
            "repeats": args.repeats,
            "latency_calls": args.latency_calls,
            "warmup_calls": WARMUP_CALLS,
            "cold_starts": args.cold_starts,
            "budget_s": args.budget,
            "timeout_s": args.timeout,
            "large_batch": LARGE_BATCH,
            "default_batch_sizes": {"staticst": 32, "model2vec": 1024, "laghu": 1024, "sentence-transformers": 32},
            "libraries": libs,
            "callgrind": args.callgrind,
            "first_sight_rounds": args.first_sight_rounds,
            "slice_size": args.slice_size,
        },
        "corpus": {
            "sentences": len(corpus),
            "mean_chars": float(chars.mean()),
            "median_chars": float(np.median(chars)),
            "sources": sources,
        },
        "baseline_numpy_rss_mb": numpy_mb,
        "texts_rss_mb": texts_mb,
        "models": report_models,
        "table": rows,
        "targets": targets,
        "elapsed_s": time.monotonic() - t0,
    }
    (args.output / "encode.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_first_sight(report_models)
    print()
    print_table(
        rows, {n: m["table_mb"] for n, m in report_models.items()},
        {n: m["tokenizer_rss_mb"] for n, m in report_models.items()}, numpy_mb, texts_mb,
    )  # fmt: skip
    for name, model in report_models.items():
        for lib, state in model["libraries"].items():
            if state["status"] != "ok":
                print(f"{name} / {SHORT[lib]}: {state['status']} ({state.get('reason', '')})")
            elif state.get("note"):
                print(f"{name} / {SHORT[lib]}: measured, but {state['note']}")
    print()
    for t in targets:
        verdict = "not evaluated" if t["met"] is None else ("met" if t["met"] else "NOT met")
        print(f"target [{t['model']}] {t['target']}: {verdict} -- {t['detail']}")
    print()
    print(
        f"machine: {machine['cpu']}, {machine['cpus']} CPUs ({machine['cpus_usable']} usable), Python {machine['python']}"
    )
    print("versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in machine["versions"].items()))
    print(f"staticst kernel: {machine['staticst_kernel']}")
    print(f"load average (1/5/15 min) at start: {machine['loadavg_before']}, at end: {machine['loadavg_after']}")
    plot(report, args.output / "encode.png")
    print(f"wrote {args.output / 'encode.json'} and {args.output / 'encode.png'} in {report['elapsed_s']:.0f} s")
    return 0 if all(m["parity"]["staticst_ok"] for m in report_models.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
