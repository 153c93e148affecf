"""Encoding benchmark, setup: the libraries and models compared, the corpus, the machine, and the code that
loads a model in each library (run in-process and in the child processes)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = (
    "potion-base-8M", "potion-base-2M-sentence-transformers", "wordllama-l2-supercat-256", "tokenlearn-10k-int8"
)  # fmt: skip
# staticst is measured three ways in the same rounds: the default (native kernel when built, all usable CPUs), the
# native kernel on one thread, and the pure numpy path. Keys are the JSON names; SHORT the table's column names.
STATICST_VARIANTS = ("staticst", "staticst-1-thread", "staticst-numpy")
OTHERS = ("model2vec", "laghu", "sentence-transformers")
LIBRARIES = (*STATICST_VARIANTS, *OTHERS)
MODULES = {
    **dict.fromkeys(STATICST_VARIANTS, "staticst"),
    "model2vec": "model2vec",
    "laghu": "laghu",
    "sentence-transformers": "sentence_transformers",
}
SHORT = {
    "staticst": "staticst",
    "staticst-1-thread": "staticst 1 thread",
    "staticst-numpy": "staticst numpy",
    "model2vec": "model2vec",
    "laghu": "laghu",
    "sentence-transformers": "ST",
}
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

T0 = time.monotonic()


def log(message: str) -> None:
    """Print a progress line with the seconds since the start."""
    print(f"[{time.monotonic() - T0:6.1f} s] {message}", flush=True)


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
    usable: int | None
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
            for dist in (
                "staticst",
                "model2vec",
                "laghu",
                "laghu-rs",
                "sentence-transformers",
                "torch",
                "numpy",
                "tokenizers",
            )
        },
        "staticst_kernel": kernel_build(),
    }


def kernel_build() -> dict[str, Any]:
    """The compiled kernel staticst would import (found without importing staticst): its file, and whether it is
    a sanitizer build (one that ``.ci/sanitize`` leaves in place while it runs: importing it without the sanitizer
    runtime preloaded aborts, and its timings would mean nothing)."""
    spec = importlib.util.find_spec("staticst")
    locations = list(spec.submodule_search_locations or []) if spec else []
    files = sorted(f for loc in locations for f in Path(loc).glob("_kernel.*.so"))
    package = locations[0] if locations else None
    if not files:
        return {"package": package, "built": False, "file": None, "sanitized": False}
    data = files[0].read_bytes()
    return {
        "package": package,
        "built": True,
        "file": str(files[0]),
        "mtime": time.ctime(files[0].stat().st_mtime),
        "sanitized": b"__asan_init" in data or b"__ubsan_handle" in data,
    }


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


def st_layout(folder: Path) -> bool:
    """A sentence-transformers layout (``modules.json`` and no model2vec ``config.json``): model2vec and laghu
    read its table but not its ``Normalize`` module, so sentence-transformers is the reference there."""
    return (folder / "modules.json").is_file() and not (folder / "config.json").is_file()


def reference_order(folder: Path) -> tuple[str, ...]:
    """The libraries whose vectors the others are checked against, first available wins."""
    return ("sentence-transformers",) if st_layout(folder) else ("model2vec", "sentence-transformers", "laghu")


def library_code(library: str, folder: Path) -> tuple[str, str]:
    """(import code, load code) that leaves the model in ``model``: run in-process and in the child processes."""
    path = repr(str(folder))
    if library in STATICST_VARIANTS:
        # the reference is the class: a model2vec folder is measured under model2vec's rules (the reference of the
        # table), a sentence-transformers folder under sentence-transformers' (the face's default)
        rules = "" if st_layout(folder) else ", family='model2vec'"
        load = {
            "staticst": f"model = StaticSentenceTransformer({path}{rules})",
            "staticst-1-thread": f"model = StaticSentenceTransformer({path}{rules}, kernel='native')\nmodel.num_threads = 1",
            "staticst-numpy": f"model = StaticSentenceTransformer({path}{rules}, kernel='numpy')",
        }[library]
        return "from staticst import StaticSentenceTransformer", load
    if library == "model2vec":
        return "from model2vec import StaticModel", f"model = StaticModel.from_pretrained({path})"
    if library == "laghu":
        return "import laghu", f"model = laghu.LeanModel.from_pretrained({path})"
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
