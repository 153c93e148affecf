"""Encoding benchmark, instructions per sentence: ``valgrind --tool=callgrind`` on child processes.

Method (the robust one of those tried): instrumentation switched on around the measured call only, then a
difference.

1. A two-function helper (``CALLGRIND_START_INSTRUMENTATION`` / ``CALLGRIND_STOP_INSTRUMENTATION``, from
   valgrind's ``callgrind.h``) is compiled with ``cc`` into the work folder and called through ``ctypes``;
   callgrind runs with ``--instr-atstart=no``, so nothing is counted before the start or after the stop, in any
   thread.
2. Each child imports the library, loads the model, encodes a warm-up slice once -- for the warm figure the fixed
   slice itself (the first ``SLICE`` sentences of the corpus), for the first-sight figure the next ``SLICE``
   sentences, so the measured text is new to the library's caches -- collects garbage, sleeps 0.2 s (idle worker threads go to sleep), starts the
   instrumentation, encodes the first N sentences of the slice in one ``encode(list)`` call and stops it. The
   profile written at exit holds the instructions (``Ir``) of every thread of the process (the library's worker
   threads included) between the start and the stop: no import, load or warm-up.
3. The child runs twice, N=0 and N=``SLICE``, concurrently (counts do not depend on load); instructions per
   sentence = (profile(N) - profile(0)) / N, which also removes the cost of the two ``ctypes`` calls themselves
   and what other threads do in the window anyway (a Rust thread pool still spinning after the warm-up).

Why not ``CALLGRIND_ZERO_STATS`` / ``CALLGRIND_DUMP_STATS`` (the method until 2026-12-07): the zero resets the
calling thread's counters only, and the dump holds every thread's, so it also counted other threads' instructions
from before the zero (loading, the warm-up): 13M to 21M between identical runs of a potion-base-8M child, up to
~4K per sentence of noise over 2,000 sentences. With ``--separate-threads=yes`` the dump holds the calling thread
only and misses the worker threads of model2vec's and laghu's Rust tokenizers.

Why not the whole-process difference (no client request): loading is not deterministic (the Rust ``tokenizers``
seeds its hash maps at random, worker threads spin for as long as the scheduler lets them), so two identical runs
of a potion-base-8M child differ by ~5M instructions, ~2.5K per sentence over 2,000 sentences. Two identical
N=2000 profiles of the method used differ by 8 instructions (staticst, 1 thread) and 0.04% (model2vec). ``--toggle-collect`` counts only the thread that enters
the function, so it misses the work of the libraries' worker threads. ``PYTHONHASHSEED=0`` makes the Python side
repeatable. The profile's self costs are also summed per shared object: where the instructions go.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from _encode_children import child_env
from _encode_setup import library_code, log

CALLGRIND_LIBS = ("staticst-1-thread", "staticst-numpy", "model2vec", "laghu")
SLICE = 2000

HELPER_C = """\
#include <valgrind/callgrind.h>
void bench_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void bench_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
"""

CHILD = """\
import ctypes, gc, json, sys, time
{import_code}
{load_code}
with open({slice_file!r}, encoding="utf-8") as f:
    texts = [json.loads(line) for line in f]
with open({warm_file!r}, encoding="utf-8") as f:
    warm = [json.loads(line) for line in f]
marks = ctypes.CDLL({helper!r})
start, stop = marks.bench_start, marks.bench_stop
model.encode(warm)  # warm-up: the slice itself (warm) or another slice of the corpus (first sight)
batch = texts[: int(sys.argv[1])]
gc.collect()
time.sleep(0.2)
start()
if batch:
    model.encode(batch)
stop()
"""


def build_helper(workdir: Path) -> tuple[Path | None, str]:
    """The compiled client-request helper, or None and why it cannot be built."""
    if shutil.which("valgrind") is None:
        return None, "valgrind is not installed"
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None, "no C compiler (cc) for the callgrind client-request helper"
    source, helper = workdir / "callgrind_marks.c", workdir / "callgrind_marks.so"
    source.write_text(HELPER_C, encoding="utf-8")
    proc = subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", "-o", str(helper), str(source)], capture_output=True, text=True
    )
    if proc.returncode:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"cannot build the callgrind helper (valgrind/callgrind.h missing?): {tail[:200]}"
    return helper, ""


def read_dump(path: Path) -> tuple[int, dict[str, int]]:
    """Total ``Ir`` of a callgrind dump (its ``totals:`` line) and the self cost per shared object (ob=)."""
    names: dict[str, str] = {}
    per_object: dict[str, int] = defaultdict(int)
    total = 0
    current = "?"
    skip_next = False
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("ob="):
                current = _name(line[3:].strip(), names)
            elif line.startswith("cob="):  # ob= and cob= share one table of compressed names
                _name(line[4:].strip(), names)
            elif line.startswith("calls="):
                skip_next = True  # the next cost line is the call's inclusive cost
            elif line[:1].isdigit() or line[:1] in "+-*":
                if skip_next:
                    skip_next = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    per_object[current] += int(parts[1])
            elif line.startswith("totals:"):
                total = int(line.split()[1])
    return total, dict(per_object)


def _name(field: str, names: dict[str, str]) -> str:
    """A compressed ``(id) name`` / ``(id)`` field of a callgrind file, as the name."""
    if field.startswith("("):
        key, _, rest = field.partition(")")
        if rest.strip():
            names[key] = rest.strip()
        return Path(names.get(key, key)).name
    return Path(field).name


def run_one(code: str, n: int, timeout: float, cwd: Path) -> tuple[int, dict[str, int]] | str:
    """One callgrind child encoding ``n`` sentences: (profile total, per object) or an error."""
    with tempfile.TemporaryDirectory(dir=cwd) as tmp:
        out = Path(tmp) / "callgrind.out"
        env = {**child_env(), "PYTHONHASHSEED": "0"}
        cmd = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            sys.executable, "-c", code, str(n),
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
        except subprocess.TimeoutExpired:
            return f"callgrind child timed out after {timeout:.0f} s"
        if proc.returncode or not out.is_file():
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return f"callgrind child failed (exit {proc.returncode}): {tail[:300]}"
        return read_dump(out)  # written at exit: every thread, counted between the start and the stop only


def callgrind_runs(
    folder: Path, libs: list[str], corpus: list[str], timeout: float, workdir: Path
) -> dict[str, dict[str, Any]]:
    """Instructions per sentence for each of ``libs`` (those of ``CALLGRIND_LIBS`` measured for this model)."""
    helper, reason = build_helper(workdir)
    if helper is None:
        return {lib: {"error": reason} for lib in libs}
    texts = corpus[:SLICE]
    slice_file = workdir / "callgrind_slice.jsonl"
    slice_file.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    texts_next = corpus[SLICE : 2 * SLICE]
    warm_files = {"warm": slice_file}
    if len(texts_next) == len(texts):
        warm_files["first_sight"] = workdir / "callgrind_warmup.jsonl"
        warm_files["first_sight"].write_text("".join(json.dumps(t) + "\n" for t in texts_next), encoding="utf-8")
    out: dict[str, dict[str, Any]] = {}
    for lib in libs:
        import_code, load_code = library_code(lib, folder)
        per_mode: dict[str, dict[str, Any]] = {}
        for mode, warm_file in warm_files.items():
            code = CHILD.format(
                import_code=import_code, load_code=load_code, slice_file=str(slice_file), warm_file=str(warm_file),
                helper=str(helper),
            )  # fmt: skip
            per_mode[mode] = _measure(code, len(texts), timeout, workdir)
            if "error" in per_mode[mode]:
                log(f"  callgrind {lib} ({mode}): {per_mode[mode]['error']}")
            else:
                top = per_mode[mode]["per_sentence_by_object"]
                where = ", ".join(f"{name} {v / 1e3:.1f}K" for name, v in list(top.items())[:4])
                log(f"  callgrind {lib} ({mode}): {per_mode[mode]['per_sentence']:,.0f} instructions per sentence "
                    f"({where})")  # fmt: skip
        out[lib] = dict(per_mode["warm"])
        out[lib]["first_sight"] = per_mode.get(
            "first_sight", {"error": f"the corpus has fewer than {2 * SLICE} sentences: no unseen slice"}
        )
    return out


def _measure(code: str, n: int, timeout: float, workdir: Path) -> dict[str, Any]:
    """Instructions per sentence of one child program: runs with N=0 and N=n side by side, the difference / n."""
    results: dict[int, tuple[int, dict[str, int]] | str] = {}

    def run(k: int) -> None:
        results[k] = run_one(code, k, timeout, workdir)

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    base, full = results[0], results[n]
    if isinstance(base, str) or isinstance(full, str):
        return {"error": base if isinstance(base, str) else str(full)}
    per_object = {
        name: (cost - base[1].get(name, 0)) / n for name, cost in sorted(full[1].items(), key=lambda item: -item[1])
    }
    top = {name: round(v, 1) for name, v in per_object.items() if v >= 0.01 * max(per_object.values(), default=1)}
    return {
        "per_sentence": (full[0] - base[0]) / n,
        "sentences": n,
        "instructions": full[0],
        "baseline_instructions": base[0],
        "per_sentence_by_object": top,
        "method": "instrumentation started/stopped around encode(slice) (--instr-atstart=no), minus an N=0 run",
    }
