"""Encoding benchmark, one model: load it in every library (and staticst in each backend), check the vectors
against the reference's (and the staticst pool against in-process staticst), then time first-sight throughput per script
group (the headline: _encode_firstsight.py), batch throughput, one-sentence latency, cold start and RSS, and (``--callgrind``) count instructions per sentence."""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from _encode_callgrind import CALLGRIND_LIBS, callgrind_runs
from _encode_children import child_runs
from _encode_firstsight import first_sight_runs
from _encode_parity import check_parity
from _encode_setup import (
    LARGE_BATCH,
    LIBRARIES,
    MODULES,
    SHORT,
    STATICST_VARIANTS,
    installed,
    library_code,
    log,
    reference_order,
    table_info,
)
from _encode_timing import EnvGuard, PoolEncoder, time_batch, time_single


def describe(lib: str, model: Any) -> dict[str, Any]:
    """What runs: staticst's backend (and why) and threads, laghu's Rust paths."""
    if lib in STATICST_VARIANTS:
        info = model.info()
        return {key: info.get(key) for key in ("backend", "backend_reason", "threads")}
    if lib == "laghu":
        tokenizer = getattr(model, "tokenizer", None)
        rust = getattr(tokenizer, "rs", None) is not None
        pool = getattr(model, "_pool_rs", None)
        return {"rust_tokenizer": rust, "rust_pooling": bool(pool()) if callable(pool) else False,
                "laghu_rs_installed": installed_module("laghu_rs")}  # fmt: skip
    return {}


def laghu_path_note(folder: Path, state: dict[str, Any]) -> str:
    """Why laghu is not on its fastest path (Rust tokenizer and pooling) for this model."""
    if not state.get("laghu_rs_installed"):
        return "laghu-rs is not installed: laghu tokenizes and pools in Python / tokenizers"
    try:
        kind = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["model"].get("type")
    except (OSError, ValueError, KeyError):
        kind = "?"
    where = "tokenizes with laghu-rs, pools in numpy" if state.get("rust_tokenizer") else "does not use laghu-rs"
    return f"laghu {where} for this model ({kind} tokenizer; its README lists what laghu-rs covers)"


def installed_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def benchmark_model(
    name: str, folder: Path, libs: list[str], corpus: list[str], corpus_file: Path, args: argparse.Namespace,
    texts_mb: float, workdir: Path,
) -> dict[str, Any]:  # fmt: skip
    info = table_info(folder)
    log(f"== {name} ({folder}): table {info['table_mb']:.1f} MB, tensors {info['tensors']}")
    guard = EnvGuard()
    status: dict[str, dict[str, Any]] = {}
    models: dict[str, Any] = {}
    vectors: dict[str, np.ndarray] = {}
    for lib in LIBRARIES:
        if lib not in libs:
            status[lib] = {"status": "skipped", "reason": "not selected (--libraries)"}
            continue
        if not installed(lib):
            status[lib] = {"status": "not installed", "reason": f"{MODULES[lib]} is not installed"}
            continue
        import_code, load_code = library_code(lib, folder)
        namespace: dict[str, Any] = {}
        try:
            start = time.perf_counter()
            exec(import_code + "\n" + load_code, namespace)  # the same code the child processes run
            load_s = time.perf_counter() - start
            model = namespace["model"]
            start = time.perf_counter()
            vectors[lib] = np.asarray(model.encode(corpus), dtype=np.float32)  # correctness check, and warm-up
            guard.restore()
            first_s = time.perf_counter() - start
        except Exception as exc:  # a library or backend that cannot run this model: n/a, with the reason
            if lib in ("staticst", "staticst-numpy"):
                raise
            status[lib] = {"status": "n/a", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
            log(f"  {lib}: n/a ({status[lib]['reason']})")
            continue
        models[lib] = model
        status[lib] = {"status": "ok", "code": import_code + "\n" + load_code, "in_process_load_s": load_s,
                       **describe(lib, model)}  # fmt: skip
        runs = f" ({status[lib]['backend']}, {status[lib]['threads']} thread(s))" if lib in STATICST_VARIANTS else ""
        log(f"  {lib}{runs}: loaded in {load_s:.2f} s, first full-corpus encode {first_s:.2f} s")
    if status["staticst"].get("backend") != "native":
        status["staticst"]["note"] = f"the default backend is {status['staticst'].get('backend')}: " + str(
            status["staticst"].get("backend_reason")
        )
        log(f"  staticst: {status['staticst']['note']}")
    if status.get("laghu", {}).get("status") == "ok" and not status["laghu"].get("rust_pooling"):
        status["laghu"]["note"] = laghu_path_note(folder, status["laghu"])

    parity = check_parity(vectors, models, status, corpus, reference_order(folder))
    # staticst's multi-process pool: checked bit for bit against in-process staticst before it is timed
    pooled: PoolEncoder | None = None
    pool_state: dict[str, Any] = {"status": "n/a", "reason": "staticst not measured"}
    if "staticst" in models:
        from staticst.multiprocess import POOL_MIN_TEXTS

        if len(corpus) < POOL_MIN_TEXTS:
            pool_state["reason"] = f"the corpus has fewer than {POOL_MIN_TEXTS} texts: encode() stays in-process"
        else:
            pooled = PoolEncoder(models["staticst"])
            start = time.perf_counter()
            same = bool(np.array_equal(np.asarray(pooled.encode(corpus)), vectors["staticst"]))
            pool_state = {"status": "ok", "workers": pooled.workers, "identical_to_in_process": same}
            log(f"  staticst pool: {pooled.workers} workers, first encode {time.perf_counter() - start:.2f} s, "
                f"identical to in-process: {same}")  # fmt: skip
            if not same:
                parity["staticst_ok"] = False
                log("  !! PARITY FAILURE: the staticst pool differs from in-process staticst")
    vectors.clear()
    active = [lib for lib in LIBRARIES if lib in models]
    # Freeze what is alive now (the libraries' modules and models: ~500K objects once torch is imported) so the
    # collector no longer scans them: a full collection then costs what it would in a process with one library,
    # and the gc.collect() before each timed run takes milliseconds instead of ~0.4 s.
    gc.collect()
    gc.freeze()

    results: dict[str, dict[str, Any]] = {lib: {} for lib in active}
    log(f"  batch throughput: {args.repeats} rounds x {len(active)} libraries/backends, default batch sizes")
    timed = {**models, "staticst-pool": pooled} if pooled else models
    with_pool = [*active, "staticst-pool"] if pooled else active
    for lib, res in time_batch(timed, with_pool, corpus, None, args.repeats, args.budget, guard).items():
        if lib == "staticst-pool":
            results["staticst"]["throughput_pool"] = {**res, "workers": pooled.workers if pooled else 0}
        else:
            results[lib]["throughput_default"] = res
    if pooled:
        pooled.stop()
    for lib, res in time_batch(models, active, corpus, LARGE_BATCH, args.repeats, args.budget, guard).items():
        results[lib]["throughput_1024"] = res
    rng = np.random.default_rng(1)
    picks = rng.choice(len(corpus), size=min(args.latency_calls, len(corpus)), replace=False)
    sentences = [corpus[i] for i in picks]
    log(f"  one-sentence latency: {len(sentences)} calls x {args.repeats} rounds")
    for lib, res in time_single(models, active, sentences, args.repeats, args.budget / 2, guard).items():
        results[lib]["latency"] = res
    models.clear()
    gc.unfreeze()
    gc.collect()

    log(f"  first sight: fresh slices per script group, {args.first_sight_rounds} rounds")
    headline = first_sight_runs(folder, active, corpus, args.first_sight_rounds, args.slice_size)

    log(f"  cold start and peak RSS: {args.cold_starts} child process(es) per library/backend")
    for lib, res in child_runs(folder, active, args.cold_starts, corpus_file, texts_mb, args.timeout, workdir).items():
        results[lib].update(res if "error" not in res else {"cold_start": res, "rss": res})
    callgrind: dict[str, Any] | None = None
    if args.callgrind:
        measured = [lib for lib in CALLGRIND_LIBS if lib in active]
        log(f"  callgrind: {', '.join(measured)} (2 children each, N=0 and N=2000; slow)")
        callgrind = callgrind_runs(folder, measured, corpus, args.timeout * 3, workdir)
    for lib in active:
        r = results[lib]
        cold = r["cold_start"]
        print(
            f"  {SHORT[lib]:<18} {r['throughput_default']['sentences_per_s']:>10,.0f} sent/s "
            f"(bs {LARGE_BATCH}: {r['throughput_1024']['sentences_per_s']:>10,.0f})  "
            f"{r['latency']['p50_us']:>8.1f} µs  cold {cold.get('wall_ms', float('nan')):>6,.0f} ms  "
            f"peak RSS {r['rss'].get('peak_mb', float('nan')):>6.1f} MB",
            flush=True,
        )
    return {
        "path": str(folder),
        **info,
        "libraries": status,
        "pool": pool_state,
        "parity": parity,
        "results": results,
        "callgrind": callgrind,
        "first_sight": headline,
    }
