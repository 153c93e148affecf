"""Encoding benchmark, the headline: throughput on text each library sees for the first time, per script group.

Every library keeps caches of what it has encoded (staticst's word table, the Hugging Face tokenizer's word caches
that model2vec and laghu use): re-encoding one corpus measures the caches. Here, per script group:

1. Each library (staticst on all threads and on one, model2vec, laghu) is loaded afresh: nothing seen yet.
2. Its warm-up encodes slice 0 of the group's text (lazy initialisation, thread pools), not timed.
3. Each round r = 1..R, the libraries in a rotated order: encode slice r -- text this library has never seen -- in
   one ``encode(list)`` call (the **first-sight** time), then slice r again at once (the **warm** time).
4. Each figure is the median over the rounds (sentences/s); ratios staticst / other come from the same run.

The slices are disjoint, ``slice_size`` sentences each (``min(2000, len(texts) // (R + 1))``; 200 with
``--quick``). Text: the benchmark's English corpus (MTEB sentences) and the Django translation catalogues per
script group (``_encode_corpora.py``, which says where they come from); a group whose text is missing (Django not
installed) is reported as such, with the fix, never silently left out.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

import numpy as np
from _encode_corpora import GROUP_TITLES, GROUPS, group_texts, source_note
from _encode_setup import SHORT, installed, library_code, log
from _encode_timing import EnvGuard, rotated

FIRST_SIGHT_LIBS = ("staticst", "staticst-1-thread", "model2vec", "laghu")
OTHERS = ("model2vec", "laghu")


def script_groups(english: list[str]) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """The benchmark's text per script group (English first) and where it came from; groups that cannot be
    built map to an error string in the second value's ``errors``."""
    groups: dict[str, list[str]] = {"english": list(english)}
    note: dict[str, Any] = {"english": "the benchmark's MTEB corpus", "errors": {}}
    try:
        note["catalogues"] = source_note()
    except ImportError as exc:
        for group in GROUPS:
            note["errors"][group] = str(exc)
        return groups, note
    for group in GROUPS:
        try:
            groups[group] = group_texts(group)
        except (OSError, ValueError) as exc:
            note["errors"][group] = f"{type(exc).__name__}: {exc}"
    return groups, note


def _load(lib: str, folder: Path) -> Any:
    import_code, load_code = library_code(lib, folder)
    namespace: dict[str, Any] = {}
    exec(import_code + "\n" + load_code, namespace)  # the same code as everywhere else in the benchmark
    return namespace["model"]


def first_sight(
    folder: Path, libs: list[str], texts: list[str], rounds: int, slice_size: int, guard: EnvGuard
) -> dict[str, Any]:
    """First-sight and warm sentences/s of each library on one group's text (see the module docstring)."""
    size = min(slice_size, len(texts) // (rounds + 1))
    if size < 1:
        return {"error": f"{len(texts)} sentences are too few for {rounds} rounds of fresh slices"}
    slices = [texts[i * size : (i + 1) * size] for i in range(rounds + 1)]
    models: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for lib in libs:
        try:
            models[lib] = _load(lib, folder)
            models[lib].encode(slices[0])  # warm-up on a slice that is never timed
            guard.restore()
        except Exception as exc:  # a library that cannot run this model: n/a with the reason
            if lib.startswith("staticst"):
                raise
            errors[lib] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    active = [lib for lib in libs if lib in models]
    first: dict[str, list[float]] = {lib: [] for lib in active}
    warm: dict[str, list[float]] = {lib: [] for lib in active}
    for r in range(1, rounds + 1):
        for lib in rotated(active, r):
            gc.collect()
            start = time.perf_counter()
            models[lib].encode(slices[r])
            first[lib].append(time.perf_counter() - start)
            start = time.perf_counter()
            models[lib].encode(slices[r])
            warm[lib].append(time.perf_counter() - start)
            guard.restore()
    models.clear()
    gc.collect()
    out: dict[str, Any] = {"slice_size": size, "rounds": rounds, "errors": errors, "libraries": {}}
    for lib in active:
        out["libraries"][lib] = {
            "first_sight_per_s": size / float(np.median(first[lib])),
            "warm_per_s": size / float(np.median(warm[lib])),
            "first_sight_runs_s": [round(t, 5) for t in first[lib]],
            "warm_runs_s": [round(t, 5) for t in warm[lib]],
        }
    ours = out["libraries"].get("staticst")
    out["ratios"] = {
        lib: {
            "first_sight": ours["first_sight_per_s"] / res["first_sight_per_s"],
            "warm": ours["warm_per_s"] / res["warm_per_s"],
        }
        for lib, res in out["libraries"].items()
        if ours and lib in OTHERS
    }
    return out


def first_sight_runs(folder: Path, libs: list[str], english: list[str], rounds: int, slice_size: int) -> dict[str, Any]:
    """The headline for one model: :func:`first_sight` on every script group."""
    groups, note = script_groups(english)
    measured = [lib for lib in FIRST_SIGHT_LIBS if lib in libs and installed(lib)]
    guard = EnvGuard()
    out: dict[str, Any] = {"sources": note, "groups": {}}
    for group, texts in groups.items():
        log(f"  first sight, {GROUP_TITLES[group]}: {len(texts):,} sentences, {rounds} rounds")
        res = first_sight(folder, measured, texts, rounds, slice_size, guard)
        out["groups"][group] = res
        for lib, r in res.get("libraries", {}).items():
            ratio = res["ratios"].get(lib)
            vs = (
                f"  staticst / {SHORT[lib]}: {ratio['first_sight']:.2f}x first sight, {ratio['warm']:.2f}x warm"
                if ratio
                else ""
            )
            log(
                f"    {SHORT[lib]:<18} first sight {r['first_sight_per_s']:>10,.0f}/s  warm {r['warm_per_s']:>10,.0f}/s{vs}"
            )
    for group, error in note["errors"].items():
        out["groups"][group] = {"error": error}
        log(f"  first sight, {GROUP_TITLES[group]}: not measured ({error})")
    return out


def print_first_sight(models: dict[str, dict[str, Any]]) -> None:
    """The headline table: sentences/s on first sight and warm, and staticst's ratios, per model and group."""
    print("\nFirst sight (each library encodes text it has never seen; warm: the same slice again), sentences/s")
    for name, model in models.items():
        runs = model.get("first_sight") or {}
        print(f"\n{name}")
        header = f"  {'text':<48}" + "".join(f"{SHORT[lib]:>20}" for lib in FIRST_SIGHT_LIBS)
        print(header + f"{'vs m2v first/warm':>22}{'vs laghu first/warm':>22}")
        for group, res in runs.get("groups", {}).items():
            title = GROUP_TITLES.get(group, group)[:46]
            if "error" in res:
                print(f"  {title:<48} not measured: {res['error'][:100]}")
                continue
            libs = res["libraries"]
            cells = "".join(
                f"{libs[lib]['first_sight_per_s']:>10,.0f}/{libs[lib]['warm_per_s']:<9,.0f}" if lib in libs else f"{'n/a':>20}"
                for lib in FIRST_SIGHT_LIBS
            )  # fmt: skip
            ratios = "".join(
                f"{res['ratios'][lib]['first_sight']:>14.2f}x/{res['ratios'][lib]['warm']:.2f}x"
                if lib in res["ratios"] else f"{'n/a':>22}"
                for lib in OTHERS
            )  # fmt: skip
            print(f"  {title:<48}{cells}{ratios}")
        calls = model.get("callgrind") or {}
        for lib, res in calls.items():
            fs = res.get("first_sight", {})
            if "per_sentence" in res:
                first = f"{fs['per_sentence']:,.0f}" if "per_sentence" in fs else fs.get("error", "n/a")
                print(f"  callgrind {SHORT[lib]}: {first} instructions per sentence first sight, "
                      f"{res['per_sentence']:,.0f} warm")  # fmt: skip
