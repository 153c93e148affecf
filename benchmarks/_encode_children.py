"""Encoding benchmark, child processes: cold start and peak RSS from fresh ``python -c`` children per
library, the RSS of a bare python + numpy holding the corpus, and that of the HF tokenizer alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from _encode_setup import FIRST_SENTENCE, library_code
from _encode_timing import rotated

BENCH_PREFIX = "BENCHJSON "

ORIGINAL_ENV: dict[str, str] = dict(os.environ)  # before any library ran (model2vec edits TOKENIZERS_PARALLELISM)


def child_env() -> dict[str, str]:
    env = dict(ORIGINAL_ENV)
    env.setdefault("HF_HUB_OFFLINE", "1")  # local folders only: never touch the network
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


HWM_CODE = """\
import json, re, resource, sys
def _hwm():
    try:
        with open("/proc/self/status") as f:
            return int(re.search(r"VmHWM:\\s+(\\d+)", f.read()).group(1)) / 1024
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

# One child per run: the cold start (timed from the first line), its result line, then the memory phase.
CHILD_SCRIPT = """\
import time
_t0 = time.perf_counter()
import sys
{import_code}
_t1 = time.perf_counter()
{load_code}
_t2 = time.perf_counter()
_v = model.encode([{sentence!r}])
_t3 = time.perf_counter()
{hwm_code}
print({prefix!r} + json.dumps({{"import_ms": (_t1 - _t0) * 1e3, "load_ms": (_t2 - _t1) * 1e3,
      "first_encode_ms": (_t3 - _t2) * 1e3, "total_ms": (_t3 - _t0) * 1e3, "torch_imported": "torch" in sys.modules,
      "loaded_mb": _hwm()}}), flush=True)
import numpy as np
with open({corpus!r}, encoding="utf-8") as f:
    texts = [json.loads(line) for line in f]
emb = np.asarray(model.encode(texts))
print({prefix!r} + json.dumps({{"peak_mb": _hwm(), "output_mb": emb.nbytes / 2**20,
      "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}), flush=True)
"""

BASELINE_SCRIPT = """\
{hwm_code}
import numpy
_numpy = _hwm()
with open({corpus!r}, encoding="utf-8") as f:
    texts = [json.loads(line) for line in f]
print({prefix!r} + json.dumps({{"numpy_mb": _numpy, "input_mb": _hwm()}}), flush=True)
"""


TOKENIZER_SCRIPT = """\
{hwm_code}
import numpy
_numpy = _hwm()
from tokenizers import Tokenizer
tokenizer = Tokenizer.from_file({path!r})
print({prefix!r} + json.dumps({{"numpy_mb": _numpy, "tokenizer_mb": _hwm() - _numpy}}), flush=True)
"""


def tokenizer_rss(folder: Path, timeout: float, cwd: Path) -> float | None:
    """RSS that loading the model's ``tokenizer.json`` with ``tokenizers`` adds to a bare python + numpy (MB)."""
    path = next(iter(sorted(folder.glob("tokenizer.json")) + sorted(folder.glob("*/tokenizer.json"))), None)
    if path is None:
        return None
    code = TOKENIZER_SCRIPT.format(hwm_code=HWM_CODE, path=str(path), prefix=BENCH_PREFIX)
    lines, error = run_child(code, timeout, cwd)
    return None if error or not lines else float(lines[0][1]["tokenizer_mb"])


def run_child(code: str, timeout: float, cwd: Path) -> tuple[list[tuple[float, dict[str, Any]]], str]:
    """Run ``python -c code``: its BENCHJSON lines, each with the seconds from spawn to its arrival, and an error."""
    lines: list[tuple[float, dict[str, Any]]] = []
    with tempfile.TemporaryFile(mode="w+") as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=errors, text=True, cwd=cwd, env=child_env()
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(BENCH_PREFIX):
                    lines.append((time.perf_counter() - start, json.loads(line[len(BENCH_PREFIX) :])))
            proc.wait()
        finally:
            timer.cancel()
        if proc.returncode == 0:
            return lines, ""
        if proc.returncode == -signal.SIGKILL and time.perf_counter() - start >= timeout:
            return lines, f"timed out after {timeout:.0f} s"
        errors.seek(0)
        tail = (errors.read().strip().splitlines() or ["no output"])[-1]
        return lines, f"child failed (exit {proc.returncode}): {tail[:300]}"


def child_runs(
    folder: Path, libs: list[str], runs: int, corpus_file: Path, texts_mb: float, timeout: float, cwd: Path
) -> dict[str, dict[str, Any]]:
    """Cold start and peak RSS from ``runs`` fresh child processes per library (alternating); medians."""
    results: dict[str, list[dict[str, Any]]] = {lib: [] for lib in libs}
    errors: dict[str, str] = {}
    for r in range(runs):
        for lib in rotated(libs, r):
            if lib in errors:
                continue
            import_code, load_code = library_code(lib, folder)
            code = CHILD_SCRIPT.format(
                import_code=import_code, load_code=load_code, sentence=FIRST_SENTENCE, hwm_code=HWM_CODE,
                corpus=str(corpus_file), prefix=BENCH_PREFIX,
            )  # fmt: skip
            lines, error = run_child(code, timeout, cwd)
            if error or len(lines) != 2:
                errors[lib] = error or f"expected 2 result lines, got {len(lines)}"
                continue
            (wall_s, cold), (_, memory) = lines
            results[lib].append({**cold, **memory, "wall_ms": wall_s * 1e3})
    out: dict[str, dict[str, Any]] = {}
    for lib in libs:
        rows = results[lib]
        if lib in errors or not rows:
            out[lib] = {"error": errors.get(lib, "no run")}
            continue

        def median(key: str, rows: list[dict[str, Any]] = rows) -> float:
            return float(np.median([row[key] for row in rows]))

        cold = {key: median(key) for key in ("wall_ms", "total_ms", "import_ms", "load_ms", "first_encode_ms")}
        cold["torch_imported"] = any(row["torch_imported"] for row in rows)
        cold["runs"] = len(rows)
        cold["wall_ms_runs"] = [round(row["wall_ms"], 1) for row in rows]
        memory = {key: median(key) for key in ("loaded_mb", "peak_mb", "output_mb", "ru_maxrss_mb")}
        memory["texts_mb"] = texts_mb
        memory["footprint_mb"] = memory["peak_mb"] - texts_mb - memory["output_mb"]
        memory["peak_mb_runs"] = [round(row["peak_mb"], 1) for row in rows]
        out[lib] = {"cold_start": cold, "rss": memory}
    return out


def baseline_rss(corpus_file: Path, timeout: float, cwd: Path) -> tuple[float, float]:
    """RSS of a bare ``python -c "import numpy"`` and what reading ``corpus_file``'s texts adds to it (MB)."""
    lines, error = run_child(
        BASELINE_SCRIPT.format(hwm_code=HWM_CODE, corpus=str(corpus_file), prefix=BENCH_PREFIX), timeout, cwd
    )
    if error or not lines:
        raise SystemExit(f"the bare-numpy child failed: {error}")
    numpy_mb = float(lines[0][1]["numpy_mb"])
    return numpy_mb, max(0.0, float(lines[0][1]["input_mb"]) - numpy_mb)
