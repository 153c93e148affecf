"""Encoding benchmark: staticst against model2vec and sentence-transformers, side by side in one run.

Usage::

    python benchmarks/encode.py [--quick] [--models potion-base-8M ...] [--text-file PATH ...]
                                [--output benchmarks/results] [--repeats N] [--shared-dir PATH]

Models are folder names in ``<shared>/models`` (or paths to model folders); ``<shared>`` is ``--shared-dir``,
else ``$STATICST_SHARED_DIR``, else ``../shared`` beside the repo. Default models: potion-base-8M,
wordllama-l2-supercat-256, tokenlearn-10k-int8. Only the public API is measured: ``encode`` as a user calls it.

Libraries (a column is "not installed" when the package is missing):

- staticst: ``StaticSentenceTransformer(path)``
- model2vec: ``StaticModel.from_pretrained(path)``
- sentence-transformers (ST): ``SentenceTransformer(path, device="cpu")`` for folders with a ``modules.json``,
  else ``SentenceTransformer(modules=[StaticEmbedding.from_model2vec(path), Normalize()], device="cpu")``
  (the ``Normalize`` only when the model's config says ``normalize``). ST's vectors are checked against
  model2vec's (tolerance 1e-3: ST pools float16 tables in float16). ST keeps the tokenizer's unknown token,
  which model2vec drops, so sentences containing one differ: when that is at most 1% of the corpus (potion-base-8M:
  a few sentences with characters outside its vocabulary) ST is measured and the difference is noted; when more
  (tokenlearn-10k-int8: nearly every sentence) or when ST cannot load the model, its column is "n/a" with the
  reason, never a number.

Corpus: real sentences from the MTEB data in ``<shared>/data/mteb`` (STSBenchmark and SICK-R sentence pairs,
Banking77 and Emotion texts, SciFact queries and titles; all splits), deduplicated and shuffled with a fixed
seed (about 61K sentences; ``--quick`` keeps 2,000 of them, ``--max-sentences`` sets any cap), plus every line of
each ``--text-file``, never capped (``--no-mteb`` keeps only those).

Methodology:

1. Correctness first: every library encodes the whole corpus once (also the warm-up) and staticst's vectors are
   compared with model2vec's (max abs difference, printed; it is 0.0 when they are bit-identical). A staticst
   mismatch is reported loudly and makes the script exit with status 1.
2. Batch throughput (sentences/s): the whole corpus in one ``encode(list)`` call, at each library's default
   ``batch_size`` (staticst 32, which is only progress-bar granularity there; model2vec 1024 and, above 10,000
   sentences, its joblib thread pool; ST 32) and again at ``batch_size=1024`` for everyone.
   staticst is also timed through its multi-process pool (``encode(corpus, pool=model.start_multi_process_pool())``,
   one spawned worker per usable CPU), alternating with the others; its vectors are first checked to equal
   in-process staticst's bit for bit. The pool only engages from ``staticst.multiprocess.POOL_MIN_TEXTS`` texts
   (4,096), so with a smaller corpus (``--quick``) that column is "n/a". The ratio compares it with the other
   library's default call.
3. One-sentence latency (µs): ``encode(str)`` on the same varied sentences for every library, each call timed
   on its own with ``time.perf_counter_ns``, after 50 warm-up calls; median (and p90) per round.
4. Runs alternate between the libraries (rotating the order every round) and each number is the median over
   ``--repeats`` rounds: on a shared machine, load from other processes then hits all alike. model2vec sets
   ``TOKENIZERS_PARALLELISM=false`` in the process environment when it uses its thread pool; the script puts the
   variable back after every call so it does not leak into the next library's measurement. Objects alive after
   loading are frozen (``gc.freeze``) so no library pays for scanning the others' objects (torch's, mostly).
5. Cold start and peak RSS, from ``--cold-starts`` fresh ``python -c`` child processes per library (alternated):
   each imports the library, loads the model and encodes one sentence -- the cold start, measured as the wall
   time from spawning the child to the arrival of its first result line (interpreter start-up included) and as
   the in-process time the child prints (import / load / first encode separately); the child also reports
   whether ``torch`` is in ``sys.modules`` (staticst must not import it). The page cache is warm (the model files
   were just read): a warm-disk cold start. The same child then reads the corpus and encodes all of it: its
   peak RSS is the kernel's high-water mark ``VmHWM`` from ``/proc/self/status``. (``resource.getrusage``'s
   ``ru_maxrss`` is recorded too, but on Linux it keeps the parent's high-water mark across ``exec`` -- here the
   parent holds torch -- so it overstates a child's peak.) Reported with the model's table size (the tensors in
   ``model.safetensors``), the RSS of a bare ``python -c "import numpy"`` and the "footprint": the peak less
   the input texts (measured in the bare-numpy child) and the returned array, which any library must hold.
   Medians over the runs. A last child loads only the model's ``tokenizer.json`` with ``tokenizers``: the RSS
   that the HF tokenizer alone adds, a floor for every library here (all three tokenize with it).

Every measurement is bounded: in-process timing loops stop at a time budget, children have a timeout.
Targets from the issue are evaluated at the end (met / NOT met / not evaluated). Writes ``encode.json`` and
``encode.png`` to ``--output`` (default ``benchmarks/results``) and prints a table with ratios staticst / other
(throughput: higher is better, so a ratio > 1 favours staticst; times and memory: a ratio < 1 favours staticst).
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = ("potion-base-8M", "wordllama-l2-supercat-256", "tokenlearn-10k-int8")
LIBRARIES = ("staticst", "model2vec", "sentence-transformers")
MODULES = {"staticst": "staticst", "model2vec": "model2vec", "sentence-transformers": "sentence_transformers"}
SHORT = {"staticst": "staticst", "model2vec": "model2vec", "sentence-transformers": "ST"}
MTEB_SOURCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("stsbenchmark-sts/train.jsonl", ("sentence1", "sentence2")),
    ("stsbenchmark-sts/validation.jsonl", ("sentence1", "sentence2")),
    ("stsbenchmark-sts/test.jsonl", ("sentence1", "sentence2")),
    ("sickr-sts/test.jsonl", ("sentence1", "sentence2")),
    ("banking77/train.jsonl", ("text",)),
    ("banking77/test.jsonl", ("text",)),
    ("emotion/train.jsonl", ("text",)),
    ("emotion/validation.jsonl", ("text",)),
    ("emotion/test.jsonl", ("text",)),
    ("scifact/queries.jsonl", ("text",)),
    ("scifact/corpus.jsonl", ("title",)),
)
FIRST_SENTENCE = "The weather is lovely today."
LARGE_BATCH = 1024
WARMUP_CALLS = 50
PARITY_TOL = 1e-6  # staticst vs model2vec: the tests require <= 1e-6 (0.0 in practice)
ST_TOL = 1e-3  # ST pools float16 tables in float16 (differences ~5e-4 on wordllama); a real mismatch is >> 1e-3
# ST keeps the tokenizer's unknown token, model2vec drops it: sentences with one differ. Up to this share of the
# corpus, ST is measured with a note (same work per sentence); above it, it is effectively another model: "n/a".
ST_MAX_DIFFERING = 0.01
BENCH_PREFIX = "BENCHJSON "

# ----------------------------------------------------------------------------- metrics
# (key, label, unit, higher_is_better, format)
METRICS: tuple[tuple[str, str, str, bool, str], ...] = (
    ("max_abs_diff", "max abs diff vs model2vec", "", False, "diff"),
    ("throughput_default", "throughput, default batch_size", "sent/s", True, "{:,.0f}"),
    ("throughput_1024", f"throughput, batch_size={LARGE_BATCH}", "sent/s", True, "{:,.0f}"),
    ("throughput_pool", "throughput, encode(pool=start_multi_process_pool())", "sent/s", True, "{:,.0f}"),
    ("latency_p50_us", "one sentence, p50", "µs", False, "{:.1f}"),
    ("cold_wall_ms", "cold start to first vector, wall (subprocess)", "ms", False, "{:,.0f}"),
    ("cold_inproc_ms", "cold start, in-process", "ms", False, "{:,.0f}"),
    ("torch_imported", "torch imported (cold start)", "", False, "bool"),
    ("peak_rss_mb", "peak RSS (load + encode corpus)", "MB", False, "{:.1f}"),
    ("footprint_mb", "footprint (peak - texts - output)", "MB", False, "{:.1f}"),
)


# ----------------------------------------------------------------------------- environment
def shared_dir(value: str | None) -> Path:
    if value:
        return Path(value)
    env = os.environ.get("STATICST_SHARED_DIR")
    return Path(env) if env else REPO.parent / "shared"


def installed(library: str) -> bool:
    return importlib.util.find_spec(MODULES[library]) is not None


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            dist: version(dist)
            for dist in ("staticst", "model2vec", "sentence-transformers", "torch", "numpy", "tokenizers")
        },
    }


# ----------------------------------------------------------------------------- corpus and models
def load_corpus(
    root: Path, text_files: Sequence[Path], use_mteb: bool, limit: int | None, seed: int = 0
) -> tuple[list[str], dict[str, int]]:
    """Real sentences: every line of the text files, plus the local MTEB data (capped at ``limit``), deduplicated
    and shuffled with a fixed seed."""
    own: list[str] = []
    sources: dict[str, int] = {}
    for path in text_files:
        with path.open(encoding="utf-8") as handle:
            lines = [line.rstrip("\r\n") for line in handle]
        lines = [line for line in lines if line.strip()]
        sources[str(path)] = len(lines)
        own += lines
    mteb: list[str] = []
    if use_mteb:
        data = root / "data" / "mteb"
        if not data.is_dir():
            raise SystemExit(f"no MTEB data in {data}: set --shared-dir / STATICST_SHARED_DIR, or use --no-mteb")
        for rel, fields in MTEB_SOURCES:
            path = data / rel
            if not path.is_file():
                print(f"  (corpus: {path} is missing, skipped)")
                continue
            count = 0
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    row = json.loads(line)
                    for field in fields:
                        value = row.get(field)
                        if isinstance(value, str) and value.strip():
                            mteb.append(value)
                            count += 1
            sources[f"mteb/{rel}"] = count
    rng = np.random.default_rng(seed)
    own = list(dict.fromkeys(own))
    seen = set(own)
    mteb = [t for t in dict.fromkeys(mteb) if t not in seen]
    mteb = [mteb[i] for i in rng.permutation(len(mteb))][:limit]  # the cap applies to the MTEB sentences only
    corpus = own + mteb
    corpus = [corpus[i] for i in rng.permutation(len(corpus))]
    if not corpus:
        raise SystemExit("the corpus is empty")
    return corpus, sources


def resolve_model(name: str, root: Path) -> Path:
    path = Path(name)
    if path.is_dir():
        return path.resolve()
    path = root / "models" / name
    if not path.is_dir():
        raise SystemExit(f"model {name!r} not found: {path} is not a folder (set --shared-dir / STATICST_SHARED_DIR)")
    return path


def table_info(folder: Path) -> dict[str, Any]:
    """Tensors of the model's safetensors file(s), read from the header: total size and their shapes / dtypes."""
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*/*.safetensors"))
    total = 0
    tensors: dict[str, Any] = {}
    for file in files:
        with file.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for key, meta in header.items():
            if key == "__metadata__":
                continue
            begin, end = meta["data_offsets"]
            total += end - begin
            tensors[key] = {"dtype": meta["dtype"], "shape": meta["shape"]}
    return {"table_mb": total / 2**20, "tensors": tensors}


def model_normalizes(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return bool(config.get("normalize", True))


def library_code(library: str, folder: Path) -> tuple[str, str]:
    """(import code, load code) that leaves the model in ``model``: run in-process and in the child processes."""
    path = repr(str(folder))
    if library == "staticst":
        return "from staticst import StaticSentenceTransformer", f"model = StaticSentenceTransformer({path})"
    if library == "model2vec":
        return "from model2vec import StaticModel", f"model = StaticModel.from_pretrained({path})"
    if (folder / "modules.json").is_file():
        return (
            "from sentence_transformers import SentenceTransformer",
            f"model = SentenceTransformer({path}, device='cpu')",
        )
    modules = f"StaticEmbedding.from_model2vec({path})" + (", Normalize()" if model_normalizes(folder) else "")
    return (
        "from sentence_transformers import SentenceTransformer\n"
        "from sentence_transformers.models import Normalize, StaticEmbedding",
        f"model = SentenceTransformer(modules=[{modules}], device='cpu')",
    )


# ----------------------------------------------------------------------------- in-process timing
class EnvGuard:
    """Puts ``TOKENIZERS_PARALLELISM`` back as it was (model2vec sets it to "false" when it uses threads)."""

    def __init__(self) -> None:
        self.value = os.environ.get("TOKENIZERS_PARALLELISM")

    def restore(self) -> None:
        if self.value is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = self.value


def rotated(items: Sequence[str], shift: int) -> list[str]:
    if not items:
        return []
    k = shift % len(items)
    return list(items[k:]) + list(items[:k])


def time_batch(
    models: dict[str, Any], libs: list[str], corpus: list[str], batch_size: int | None, repeats: int,
    budget_s: float, guard: EnvGuard,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Whole-corpus ``encode`` per library, alternating, ``repeats`` rounds (a library whose runs exceed
    ``budget_s`` in total stops early)."""
    runs: dict[str, list[float]] = {lib: [] for lib in libs}
    spent: dict[str, float] = dict.fromkeys(libs, 0.0)
    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    for r in range(repeats):
        for lib in rotated(libs, r):
            if spent[lib] > budget_s:
                continue
            gc.collect()
            start = time.perf_counter()
            models[lib].encode(corpus, **kwargs)
            elapsed = time.perf_counter() - start
            guard.restore()
            spent[lib] += elapsed
            runs[lib].append(elapsed)
    return {
        lib: {
            "sentences_per_s": len(corpus) / float(np.median(times)),
            "median_s": float(np.median(times)),
            "runs_s": [round(t, 4) for t in times],
        }
        for lib, times in runs.items()
    }


def time_single(
    models: dict[str, Any], libs: list[str], sentences: list[str], rounds: int, budget_s: float, guard: EnvGuard
) -> dict[str, dict[str, Any]]:
    """``encode(str)`` per call (µs), alternating libraries per round; median and p90 of each round, median of those."""
    for lib in libs:  # warm-up
        for text in sentences[:WARMUP_CALLS]:
            models[lib].encode(text)
        guard.restore()
    per_round: dict[str, list[tuple[float, float, int]]] = {lib: [] for lib in libs}
    clock = time.perf_counter_ns
    for r in range(rounds):
        for lib in rotated(libs, r):
            encode: Callable[[str], Any] = models[lib].encode
            gc.collect()
            times: list[int] = []
            deadline = time.perf_counter() + budget_s
            for i, text in enumerate(sentences):
                start = clock()
                encode(text)
                times.append(clock() - start)
                if i % 64 == 63 and time.perf_counter() > deadline:
                    break
            guard.restore()
            us = np.asarray(times) / 1000
            per_round[lib].append((float(np.median(us)), float(np.percentile(us, 90)), len(times)))
    return {
        lib: {
            "p50_us": float(np.median([p50 for p50, _, _ in stats])),
            "p90_us": float(np.median([p90 for _, p90, _ in stats])),
            "calls": sum(n for _, _, n in stats),
            "round_p50_us": [round(p50, 2) for p50, _, _ in stats],
        }
        for lib, stats in per_round.items()
    }


# ----------------------------------------------------------------------------- child processes
T0 = time.monotonic()


def log(message: str) -> None:
    """Print a progress line with the seconds since the start."""
    print(f"[{time.monotonic() - T0:6.1f} s] {message}", flush=True)


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


class PoolEncoder:
    """``encode`` through a staticst multi-process pool (one worker per usable CPU), as a user would call it."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.pool = model.start_multi_process_pool()
        self.workers = len(self.pool["processes"])

    def encode(self, texts: Any, **kwargs: Any) -> Any:
        return self.model.encode(texts, pool=self.pool, **kwargs)

    def stop(self) -> None:
        self.model.stop_multi_process_pool(self.pool)


# ----------------------------------------------------------------------------- one model
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


# ----------------------------------------------------------------------------- summary
def metric_value(model: dict[str, Any], lib: str, key: str) -> Any:
    """The value of a table metric, or a string ("n/a", "not installed", "error") when there is none."""
    state = model["libraries"][lib]
    if key == "max_abs_diff":
        if state["status"] in ("not installed", "skipped"):
            return state["status"]
        diff = model["parity"]["max_abs_diff"].get(lib)
        return "n/a" if diff is None else diff
    if state["status"] != "ok":
        return state["status"]
    r = model["results"][lib]
    if key == "throughput_default":
        return r["throughput_default"]["sentences_per_s"]
    if key == "throughput_1024":
        return r["throughput_1024"]["sentences_per_s"]
    if key == "throughput_pool":
        if lib != "staticst":
            return "not measured"
        return r["throughput_pool"]["sentences_per_s"] if "throughput_pool" in r else "n/a"
    if key == "latency_p50_us":
        return r["latency"]["p50_us"]
    cold, rss = r["cold_start"], r["rss"]
    if key == "cold_wall_ms":
        return cold.get("wall_ms", "error")
    if key == "cold_inproc_ms":
        return cold.get("total_ms", "error")
    if key == "torch_imported":
        return cold.get("torch_imported", "error")
    if key == "peak_rss_mb":
        return rss.get("peak_mb", "error")
    if key == "footprint_mb":
        return rss.get("footprint_mb", "error")
    raise KeyError(key)


def fmt(value: Any, style: str) -> str:
    if isinstance(value, str):
        return value
    if style == "bool":
        return "yes" if value else "no"
    if style == "diff":
        return "0.0" if value == 0 else f"{value:.2g}"
    return style.format(value)


def build_table(report_models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name, model in report_models.items():
        for key, label, unit, higher, style in METRICS:
            values = {lib: metric_value(model, lib, key) for lib in LIBRARIES}
            row: dict[str, Any] = {
                "model": name,
                "metric": key,
                "label": label,
                "unit": unit,
                "higher_is_better": higher,
            }
            row["values"] = values
            ours = values["staticst"]
            for other in ("model2vec", "sentence-transformers"):
                # the pool is compared with the other library's default call
                theirs = metric_value(model, other, "throughput_default") if key == "throughput_pool" else values[other]
                ok = (
                    style not in ("bool", "diff")
                    and isinstance(ours, float)
                    and isinstance(theirs, float)
                    and theirs > 0
                )
                row[f"ratio_vs_{other}"] = ours / theirs if ok else None
            row["format"] = style
            rows.append(row)
    return rows


def print_table(
    rows: list[dict[str, Any]], table_mb: dict[str, float], tokenizer_mb: dict[str, float | None], numpy_mb: float,
    texts_mb: float,
) -> None:  # fmt: skip
    print()
    print("| model | metric | staticst | model2vec | ST | staticst/model2vec | staticst/ST |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        unit = f" ({row['unit']}, {'higher' if row['higher_is_better'] else 'lower'} is better)" if row["unit"] else ""
        cells = [fmt(row["values"][lib], row["format"]) for lib in LIBRARIES]
        ratios = [
            "" if row[f"ratio_vs_{o}"] is None else f"{row[f'ratio_vs_{o}']:.2f}x"
            for o in ("model2vec", "sentence-transformers")
        ]
        print(f"| {row['model']} | {row['label']}{unit} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    print()
    for name, mb in table_mb.items():
        print(f"table size {name}: {mb:.1f} MB")
    for name, mb in tokenizer_mb.items():
        print(f"tokenizer {name}: {'n/a' if mb is None else f'{mb:.1f} MB'} RSS in a bare python + numpy")
    print(f"bare `python -c 'import numpy'` RSS: {numpy_mb:.1f} MB; the corpus texts: {texts_mb:.1f} MB")


def evaluate_targets(report_models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets; ``met`` is None when a target cannot be evaluated (model or library missing)."""
    targets: list[dict[str, Any]] = []

    def add(name: str, model: str, check: Callable[[dict[str, Any]], tuple[bool, str]]) -> None:
        entry: dict[str, Any] = {"target": name, "model": model, "met": None, "detail": ""}
        if model in report_models:
            try:
                entry["met"], entry["detail"] = check(report_models[model])
            except (KeyError, TypeError) as exc:
                entry["detail"] = f"missing measurement ({exc})"
        else:
            entry["detail"] = "model not benchmarked"
        targets.append(entry)

    def num(model: dict[str, Any], lib: str, key: str) -> float:
        value = metric_value(model, lib, key)
        if isinstance(value, str) or isinstance(value, bool):
            raise TypeError(f"{lib} {key} is {value}")
        return float(value)

    def throughput_ratio(model: dict[str, Any], least: float) -> tuple[bool, str]:
        ratio = num(model, "staticst", "throughput_default") / num(model, "model2vec", "throughput_default")
        return ratio >= least, f"{ratio:.2f}x model2vec's sentences/s (target >= {least:g}x)"

    def pool_ratio(model: dict[str, Any], least: float) -> tuple[bool, str]:
        ratio = num(model, "staticst", "throughput_pool") / num(model, "model2vec", "throughput_default")
        workers = model["pool"].get("workers")
        return ratio >= least, (
            f"{ratio:.2f}x model2vec's sentences/s with {workers} staticst worker processes (target >= {least:g}x)"
        )

    def latency_max(model: dict[str, Any], most: float) -> tuple[bool, str]:
        value = num(model, "staticst", "latency_p50_us")
        return value <= most, f"{value:.1f} µs (target <= {most:g} µs)"

    def latency_speedup(model: dict[str, Any], least: float) -> tuple[bool, str]:
        speedup = num(model, "model2vec", "latency_p50_us") / num(model, "staticst", "latency_p50_us")
        return speedup >= least, f"{speedup:.2f}x faster than model2vec (target >= {least:g}x)"

    def as_fast(model: dict[str, Any]) -> tuple[bool, str]:
        batch = num(model, "staticst", "throughput_default") / num(model, "model2vec", "throughput_default")
        single = num(model, "model2vec", "latency_p50_us") / num(model, "staticst", "latency_p50_us")
        return (
            batch >= 1 and single >= 1,
            f"batch {batch:.2f}x, one sentence {single:.2f}x model2vec's speed (>= 1x both)",
        )

    def cold(model: dict[str, Any]) -> tuple[bool, str]:
        ratio = num(model, "staticst", "cold_wall_ms") / num(model, "model2vec", "cold_wall_ms")
        torch = metric_value(model, "staticst", "torch_imported")
        return ratio <= 0.5, f"{ratio:.2f}x model2vec's wall time (target <= 0.5x); torch imported by staticst: {torch}"

    def rss(model: dict[str, Any]) -> tuple[bool, str]:
        footprint = num(model, "staticst", "footprint_mb")
        limit = model["table_mb"] + 40
        peak = num(model, "staticst", "peak_rss_mb")
        base = float(model["baseline_numpy_rss_mb"])
        tok = model.get("tokenizer_rss_mb")
        rest = footprint - base - model["table_mb"] - (tok or 0.0)
        return footprint <= limit, (
            f"footprint {footprint:.1f} MB (peak {peak:.1f} MB less texts and output) vs table "
            f"{model['table_mb']:.1f} MB + 40 MB = {limit:.1f} MB; it holds a bare python + numpy ({base:.1f} MB), "
            f"the table ({model['table_mb']:.1f} MB), "
            + ("" if tok is None else f"the HF tokenizer as `tokenizers` loads it ({tok:.1f} MB), ")
            + f"and {rest:.1f} MB of other code, caches and work buffers"
        )

    add("batch throughput >= 5x model2vec", "potion-base-8M", lambda m: throughput_ratio(m, 5))
    add("batch throughput >= 5x model2vec, staticst with its process pool", "potion-base-8M",
        lambda m: pool_ratio(m, 5))  # fmt: skip
    add("one sentence <= 15 µs", "potion-base-8M", lambda m: latency_max(m, 15))
    add("one sentence >= 9x faster than model2vec", "potion-base-8M", lambda m: latency_speedup(m, 9))
    for name in ("wordllama-l2-supercat-256", "tokenlearn-10k-int8"):
        add("at least as fast as model2vec (batch and one sentence)", name, as_fast)
    for name in report_models:
        add("cold start <= 0.5x model2vec", name, cold)
        add(
            "staticst must not import torch",
            name,
            lambda m: (
                metric_value(m, "staticst", "torch_imported") is False,
                f"torch in sys.modules: {metric_value(m, 'staticst', 'torch_imported')}",
            ),
        )
        add("peak RSS <= table size + 40 MB", name, rss)
    return targets


# ----------------------------------------------------------------------------- plot
def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(report["models"])
    colors = {"staticst": "#1f77b4", "model2vec": "#ff7f0e", "sentence-transformers": "#2ca02c"}
    default_series = [(SHORT[lib], lib, None) for lib in LIBRARIES]
    panels: list[tuple[str, str, bool, list[tuple[str, str, str | None]]]] = [
        (
            "throughput_default",
            "Batch throughput, whole corpus in one encode (sentences/s)",
            True,
            [
                *default_series,
                (f"ST, batch_size={LARGE_BATCH}", "sentence-transformers", "throughput_1024"),
                ("staticst, process pool", "staticst", "throughput_pool"),
            ],
        ),
        ("latency_p50_us", "One sentence, encode(str) p50 (µs)", True, default_series),
        ("cold_wall_ms", "Cold start: python -c import + load + first vector (ms, wall)", True, default_series),
        ("peak_rss_mb", "Peak RSS, load + encode the corpus (MB)", False, default_series),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    x = np.arange(len(models))
    for ax, (key, title, log, series) in zip(axes.flat, panels, strict=True):
        width = 0.8 / len(series)
        found: list[float] = []
        missing: list[tuple[float, str]] = []
        for k, (label, lib, series_key) in enumerate(series):
            values = [metric_value(report["models"][m], lib, series_key or key) for m in models]
            heights = [v if isinstance(v, float) else np.nan for v in values]
            offsets = x + (k - (len(series) - 1) / 2) * width
            bars = ax.bar(
                offsets, heights, width, label=label, color=colors[lib], hatch="//" if series_key else None,
                alpha=0.6 if series_key else 1.0,
            )  # fmt: skip
            labels = [fmt(v, "{:,.0f}" if v >= 100 else "{:.1f}") if isinstance(v, float) else "" for v in values]
            ax.bar_label(bars, labels=labels, fontsize=7, rotation=90, padding=2)
            found += [v for v in values if isinstance(v, float)]
            missing += [(float(o), v) for o, v in zip(offsets, values, strict=True) if not isinstance(v, float)]
        if key == "peak_rss_mb":
            for i, m in enumerate(models):
                limit = report["models"][m]["table_mb"] + 40
                ax.hlines(limit, i - 0.45, i + 0.45, colors="grey", linestyles="--", linewidth=1)
            ax.plot([], [], color="grey", linestyle="--", label="table + 40 MB")
        top = max(found, default=1.0)
        if log and found and min(found) > 0:
            ax.set_yscale("log")
            bottom = min(found) / 3
            ax.set_ylim(bottom, top * 30)
        else:
            bottom = 0.0
            ax.set_ylim(0, top * 1.35)
        for offset, text in missing:  # "n/a" / "not installed" where a bar would be
            ax.text(offset, bottom, f" {text}", rotation=90, ha="center", va="bottom", fontsize=7, color="grey")
        ax.set_xticks(x, models, fontsize=8)
        ax.set_xlim(-0.5, len(models) - 0.5)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="upper right")
    machine = report["machine"]
    fig.suptitle(
        f"staticst vs model2vec vs sentence-transformers: {report['corpus']['sentences']:,} sentences, "
        f"median of {report['settings']['repeats']} rounds; {machine['cpu']}, {machine['cpus']} CPUs, "
        f"load {machine['loadavg_1m_before']:.1f}->{machine['loadavg_1m_after']:.1f}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="2K sentences, 3 rounds, 1 cold start: well under a minute"
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
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.latency_calls = args.latency_calls or (300 if args.quick else 2000)
    args.cold_starts = args.cold_starts or (1 if args.quick else 3)
    limit = args.max_sentences if args.max_sentences is not None else (2000 if args.quick else None)
    if min(args.repeats, args.latency_calls, args.cold_starts) < 1 or (limit is not None and limit < 1):
        parser.error("--repeats, --latency-calls, --cold-starts and --max-sentences must be positive")
    if args.no_mteb and not args.text_file:
        parser.error("--no-mteb needs at least one --text-file")
    if "staticst" not in args.libraries:
        parser.error("--libraries must include staticst")
    if not installed("staticst"):
        raise SystemExit("staticst is not installed: pip install -e .")

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
        lines, error = run_child(
            BASELINE_SCRIPT.format(hwm_code=HWM_CODE, corpus=str(corpus_file), prefix=BENCH_PREFIX),
            args.timeout,
            workdir,
        )
        if error or not lines:
            raise SystemExit(f"the bare-numpy child failed: {error}")
        numpy_mb = float(lines[0][1]["numpy_mb"])
        texts_mb = max(0.0, float(lines[0][1]["input_mb"]) - numpy_mb)
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
            "default_batch_sizes": {"staticst": 32, "model2vec": 1024, "sentence-transformers": 32},
            "libraries": libs,
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
    print_table(
        rows, {n: m["table_mb"] for n, m in report_models.items()},
        {n: m["tokenizer_rss_mb"] for n, m in report_models.items()}, numpy_mb, texts_mb,
    )  # fmt: skip
    for name, model in report_models.items():
        for lib, state in model["libraries"].items():
            if state["status"] != "ok":
                print(f"{name} / {lib}: {state['status']} ({state.get('reason', '')})")
            elif state.get("note"):
                print(f"{name} / {lib}: measured, but {state['note']}")
    print()
    for t in targets:
        verdict = "not evaluated" if t["met"] is None else ("met" if t["met"] else "NOT met")
        print(f"target [{t['model']}] {t['target']}: {verdict} -- {t['detail']}")
    print()
    print(
        f"machine: {machine['cpu']}, {machine['cpus']} CPUs ({machine['cpus_usable']} usable), Python {machine['python']}"
    )
    print("versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in machine["versions"].items()))
    print(f"load average (1/5/15 min) at start: {machine['loadavg_before']}, at end: {machine['loadavg_after']}")
    plot(report, args.output / "encode.png")
    print(f"wrote {args.output / 'encode.json'} and {args.output / 'encode.png'} in {report['elapsed_s']:.0f} s")
    return 0 if all(m["parity"]["staticst_ok"] for m in report_models.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
