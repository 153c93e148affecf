"""Encoding benchmark, one model: load it in every library, check the vectors against model2vec's (and the
staticst pool against in-process staticst), then time batch throughput, one-sentence latency, cold start and RSS."""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path
from typing import Any

import numpy as np
from _encode_children import child_runs
from _encode_setup import LARGE_BATCH, LIBRARIES, MODULES, installed, library_code, log, table_info
from _encode_timing import EnvGuard, PoolEncoder, time_batch, time_single

PARITY_TOL = 1e-6  # staticst vs model2vec: the tests require <= 1e-6 (0.0 in practice)
ST_TOL = 1e-3  # ST pools float16 tables in float16 (differences ~5e-4 on wordllama); a real mismatch is >> 1e-3
# ST keeps the tokenizer's unknown token, model2vec drops it: sentences with one differ. Up to this share of the
# corpus, ST is measured with a note (same work per sentence); above it, it is effectively another model: "n/a".
ST_MAX_DIFFERING = 0.01


def st_mismatch_hint(m2v: Any, st: Any, text: str) -> str:
    """Why ST's vector differs from model2vec's on ``text``, when the token ids tell (else "")."""
    try:
        theirs = list(m2v.tokenize([text])[0])
        st_ids = list(st[0].tokenizer.encode(text, add_special_tokens=False).ids)
    except Exception:  # private-ish attributes of either library changed: no hint
        return ""
    if st_ids == theirs:
        return ""
    unk = getattr(m2v, "unk_token_id", None)
    if unk is not None and [i for i in st_ids if i != unk] == theirs:
        return f"; ST keeps the unknown token (id {unk}) that model2vec drops, e.g. in {text!r:.80}"
    return f"; ST's token ids differ from model2vec's, e.g. on {text!r:.80}"


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
        except Exception as exc:  # a library that cannot load or run this model: n/a, with the reason
            if lib == "staticst":
                raise
            status[lib] = {"status": "n/a", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
            log(f"  {lib}: n/a ({status[lib]['reason']})")
            continue
        models[lib] = model
        status[lib] = {"status": "ok", "code": import_code + "\n" + load_code, "in_process_load_s": load_s}
        log(f"  {lib}: loaded in {load_s:.2f} s, first full-corpus encode {first_s:.2f} s")

    # correctness: everything against model2vec (or ST when model2vec is not available)
    reference = next((lib for lib in ("model2vec", "sentence-transformers") if lib in vectors), None)
    diffs: dict[str, float | None] = {}
    differing: dict[str, int] = {}
    parity_ok = True
    for lib, vec in vectors.items():
        if reference is None or lib == reference:
            diffs[lib] = 0.0 if lib == reference else None
            continue
        ref = vectors[reference]
        per_sentence = np.abs(vec - ref).max(axis=1) if vec.shape == ref.shape else np.full(len(corpus), np.inf)
        diff = float(per_sentence.max()) if len(per_sentence) else 0.0
        diffs[lib] = diff
        differing[lib] = int((per_sentence > ST_TOL).sum())
        log(
            f"  parity: max |{lib} - {reference}| = {diff:.3g} over {len(corpus)} sentences "
            f"({differing[lib]} differ by > {ST_TOL:g})"
        )
        if lib == "staticst" and not diff <= PARITY_TOL:
            parity_ok = False
            log(f"  !! PARITY FAILURE: staticst differs from {reference} by {diff:.3g} (> {PARITY_TOL})")
        if lib == "sentence-transformers" and differing[lib]:
            share = differing[lib] / len(corpus)
            note = (
                f"vectors differ from {reference}'s by > {ST_TOL:g} on {differing[lib]} of {len(corpus)} sentences "
                f"({share:.2%}; max abs diff {diff:.3g})"
            )
            if reference == "model2vec":
                worst = corpus[int(per_sentence.argmax())]
                note += st_mismatch_hint(models["model2vec"], models[lib], worst)
            if share <= ST_MAX_DIFFERING:  # a few sentences (unknown tokens): the same work, timed as ST runs it
                status[lib]["note"] = note
                log(f"  {lib}: measured, but {note}")
            else:  # effectively another model: its timings would not compare like with like
                status[lib] = {**status[lib], "status": "n/a", "reason": f"computes different vectors: {note}"}
                models.pop(lib)
                log(f"  {lib}: n/a ({status[lib]['reason']})")
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
                parity_ok = False
                log("  !! PARITY FAILURE: the staticst pool differs from in-process staticst")
    vectors.clear()
    active = [lib for lib in LIBRARIES if lib in models]
    # Freeze what is alive now (the libraries' modules and models: ~500K objects once torch is imported) so the
    # collector no longer scans them: a full collection then costs what it would in a process with one library,
    # and the gc.collect() before each timed run takes milliseconds instead of ~0.4 s.
    gc.collect()
    gc.freeze()

    results: dict[str, dict[str, Any]] = {lib: {} for lib in active}
    log(f"  batch throughput: {args.repeats} rounds x {len(active)} libraries, default batch sizes")
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

    log(f"  cold start and peak RSS: {args.cold_starts} child process(es) per library")
    for lib, res in child_runs(folder, active, args.cold_starts, corpus_file, texts_mb, args.timeout, workdir).items():
        results[lib].update(res if "error" not in res else {"cold_start": res, "rss": res})
    for lib in active:
        r = results[lib]
        cold = r["cold_start"]
        print(
            f"  {lib:<22} {r['throughput_default']['sentences_per_s']:>10,.0f} sent/s "
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
        "parity": {
            "reference": reference,
            "max_abs_diff": diffs,
            "differing_sentences": differing,
            "tolerance": ST_TOL,
            "staticst_ok": parity_ok,
        },
        "results": results,
    }

