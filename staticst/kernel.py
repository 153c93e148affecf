"""The compiled kernel's Python face: whether it is there, which backend an engine runs, and its threads.

``staticst._kernel`` (C11, built at install from ``staticst/_kernel/``) tokenizes, looks up and pools a
batch in native code with the GIL released, split over threads; the pure numpy path
(:mod:`staticst.pooling` + :mod:`staticst.tokenization`) stays as the oracle and the fallback. Both give
bit-identical vectors.

Choosing the backend (first that applies):

1. the ``kernel=`` argument of :class:`~staticst.StaticSentenceTransformer` / :class:`~staticst.engine.Embedder`;
2. the environment variable ``STATICST_KERNEL`` (read, never written);
3. ``"auto"``: native when the extension is built and supports the model, else numpy.

``"native"`` refuses (with the reason) when the kernel cannot run the model; ``"numpy"`` always works.
Threads: ``STATICST_NUM_THREADS``, else the CPUs this process may use (affinity and cgroup CPU quota);
set per model with ``model.num_threads = n``. Inputs under about 32 KB of text stay on the calling thread.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from staticst.pooling import PoolingConfig
from staticst.tokenization import TextTokenizer
from staticst.tokenization.fast import hf_flat

_kernel: Any
IMPORT_ERROR: str | None
try:
    from staticst import _kernel

    IMPORT_ERROR = None
except ImportError as exc:  # no compiler at install time, or STATICST_NO_KERNEL=1
    _kernel = None
    IMPORT_ERROR = str(exc)

__all__ = [
    "ENV_KERNEL",
    "ENV_THREADS",
    "KERNELS",
    "NativeKernel",
    "available",
    "build_native",
    "choose",
    "default_threads",
    "empty_rows",
    "new_word_table",
]

KERNELS = ("auto", "native", "numpy")
ENV_KERNEL = "STATICST_KERNEL"
ENV_THREADS = "STATICST_NUM_THREADS"
#: Words the native word table holds at most (about 50 bytes each); it starts again empty when full.
WORD_TABLE_WORDS = 262_144
_ARITHMETIC = {"model2vec": 0, "sentence-transformers": 1}
_MODE_NONE = 5


def available() -> bool:
    """Whether the compiled kernel was built and imports."""
    return _kernel is not None


def _cgroup_cpus() -> float | None:
    """The CPU quota of this process's cgroup (v2 ``cpu.max`` or v1 ``cfs_quota_us``), if any."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def default_threads() -> int:
    """Native threads for a large batch: ``STATICST_NUM_THREADS``, else the CPUs this process may use.

    Raises:
        ValueError: ``STATICST_NUM_THREADS`` is set but not a positive integer.
    """
    value = os.environ.get(ENV_THREADS)
    if value is not None and value.strip():
        try:
            threads = int(value)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ValueError(f"{ENV_THREADS}={value!r} is not a positive integer; unset it or give e.g. 2.")
        return threads
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpus()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def choose(kernel: str | None) -> str:
    """The requested backend: ``kernel`` if given, else ``STATICST_KERNEL``, else ``"auto"``.

    Raises:
        ValueError: The value is not one of ``"auto"``, ``"native"``, ``"numpy"``.
    """
    source = "kernel"
    if kernel is None:
        kernel = os.environ.get(ENV_KERNEL) or "auto"
        source = ENV_KERNEL
    if kernel not in KERNELS:
        raise ValueError(f"{source}={kernel!r} is not a kernel; use one of {', '.join(KERNELS)}.")
    return kernel


def new_word_table() -> Any:
    """A fresh native word table (shared by the kernels of one tokenizer)."""
    assert _kernel is not None
    return _kernel.WordTable(max_words=WORD_TABLE_WORDS)


def empty_rows(n: int, dim: int) -> np.ndarray:
    """An uninitialised ``(n, dim)`` float32 array (large ones backed by huge pages where the OS allows)."""
    if _kernel is None:
        return np.empty((n, dim), dtype=np.float32)
    rows: np.ndarray = _kernel.empty_rows(n, dim)
    return rows


class NativeKernel:
    """The compiled path of one engine: ``embed`` / ``embed_one`` / ``tokenize`` as the numpy path computes them."""

    def __init__(self, core: Any, reason: str) -> None:
        self._core = core
        self.reason = reason

    @property
    def threads(self) -> int:
        """Native threads a large batch is split over."""
        threads: int = self._core.threads
        return threads

    @threads.setter
    def threads(self, value: int) -> None:
        self._core.threads = value

    def embed_into(self, texts: list[str], out: np.ndarray) -> int:
        """Pool ``texts`` into the rows of ``out`` (C-contiguous float32, ``(len(texts), dim)``); returns the ids pooled."""
        tokens: int = self._core.embed(texts, out)
        return tokens

    def embed_one(self, text: str) -> np.ndarray:
        """The vector of one text."""
        vec: np.ndarray = self._core.embed_one(text)
        return vec

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The ids pooled for ``texts`` (``int32``) and their ``int64`` offsets."""
        ids, offsets = self._core.tokenize(texts)
        return ids, offsets

    def pool(self, ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Pool given ids (``int32``, with ``int64`` offsets) into ``(len(offsets) - 1, dim)`` float32."""
        out = np.empty((len(offsets) - 1, self._core_dim), dtype=np.float32)
        self._core.pool(np.ascontiguousarray(ids, dtype=np.int32), np.ascontiguousarray(offsets, dtype=np.int64), out)
        return out

    _core_dim = 0


def _ascii_bytes(strings: Sequence[str]) -> tuple[bytes, ...]:
    """The substrings that can occur in ASCII text, as bytes (others never match it)."""
    return tuple(s.encode("ascii") for s in strings if s and s.isascii())


#: Normalisers that act within a run of text that ASCII whitespace delimits (no context crosses a space).
_CHUNK_LOCAL_NORMALIZERS = {"BertNormalizer", "Lowercase", "NFC", "NFD", "NFKC", "NFKD", "StripAccents"}


def _normalizer_types(spec: Any) -> set[str]:
    if spec is None:
        return set()
    if spec.get("type") == "Sequence":
        return set().union(*(_normalizer_types(part) for part in spec.get("normalizers") or []))
    return {str(spec.get("type"))}


def _chunk_boundary(plan: Any, tokenizer: Any) -> bytes | None:
    """The ASCII bytes at which any text (non-ASCII included) splits into chunks tokenized independently.

    Exact when the pre-tokenizer splits at whitespace (BERT, WhitespaceSplit, Whitespace families, or the
    Llama family's single spaces, whose independence the plan proved from the vocabulary), the normaliser
    only maps characters in place (no Precompiled charsmap, no Replace), the byte normalises to a whitespace
    character, and no added token holds whitespace (so none spans two chunks). ``None`` otherwise: non-ASCII
    text then goes to the Hugging Face tokenizer whole.
    """
    from staticst.tokenization.plan import pipeline_config
    from staticst.tokenization.pretokenizers import RUST_WS

    family = plan.family
    if family.name == "llama-space":
        return b" "
    if family.kernel_mode not in (0, 1, 2) or family.prefix or plan.normalized_substrings:
        return None
    if not _normalizer_types(pipeline_config(tokenizer).get("normalizer")) <= _CHUNK_LOCAL_NORMALIZERS:
        return None
    if any(any(c in RUST_WS for c in token.content) for token in tokenizer.get_added_tokens_decoder().values()):
        return None
    separators = bytes(c for c in range(128) if len(plan.table[c]) == 1 and plan.table[c] in RUST_WS)
    return separators or None


def build_native(
    table: np.ndarray,
    mapping: np.ndarray | None,
    weights: np.ndarray | None,
    tokenizer: TextTokenizer,
    pooling: PoolingConfig,
    words: Any,
    threads: int,
) -> tuple[NativeKernel | None, str]:
    """The native kernel for these parts, or ``None`` and the reason it cannot run them."""
    if _kernel is None:
        return None, f"the compiled kernel is not built ({IMPORT_ERROR}); reinstall with a C compiler present"
    if table.ndim != 2 or table.shape[1] < 2:
        return None, f"tables of shape {table.shape} are pooled by the numpy path"
    if table.dtype not in (np.float32, np.float16, np.float64, np.int8):
        return None, f"{table.dtype} tables are pooled by the numpy path"
    if weights is not None and weights.dtype not in (np.float32, np.float64):
        return None, f"{weights.dtype} token weights are pooled by the numpy path"
    if weights is not None and table.dtype == np.float16 and weights.dtype == np.float64:
        return None, "a float16 table with float64 weights is pooled by the numpy path"
    settings = tokenizer.settings
    fast = tokenizer.fast
    plan = fast.plan if fast is not None else None
    if plan is not None and (plan.family.kernel_mode < 0 or any(len(out) > 8 for out in plan.table)):
        plan = None
    hf_tokenizer = tokenizer.tokenizer

    def fallback(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return hf_flat(hf_tokenizer, list(tokenizer.cut_all(texts)))

    resolve: Callable[[list[str]], list[tuple[int, ...]]]
    boundary: bytes | None = None
    if plan is not None and fast is not None:
        tokenize_words = fast.tokenize_words
        boundary = _chunk_boundary(plan, hf_tokenizer)
        family = plan.family
        model = hf_tokenizer.model

        def chunk_ids(chunk: str) -> tuple[int, ...]:
            """The ids of a chunk holding non-ASCII text, from the tokenizer itself."""
            if family.name == "llama-space":
                return tuple(t.id for t in model.tokenize(family.prefix + chunk))
            return tuple(hf_tokenizer.encode(chunk, add_special_tokens=False).ids)

        def resolve(keys: list[str]) -> list[tuple[int, ...]]:
            # U+0080 starts the key of a chunk with non-ASCII text (keys of ASCII text are ASCII: no collision)
            found = tokenize_words([k for k in keys if not k.startswith("\x80")])
            return [chunk_ids(key[1:]) if key.startswith("\x80") else found[key] for key in keys]

        mode = family.kernel_mode
        norm_table = tuple(out.encode("ascii") for out in plan.table)
        raw = tuple(s.encode("utf-8") for s in plan.raw_substrings if s)
        if boundary is not None and family.name == "llama-space":
            # the word-boundary proof assumes no replacement character in the text itself ("▁" + " " would
            # let a "▁▁" merge cross a boundary): such texts take the Hugging Face tokenizer
            raw += (family.prefix.encode("utf-8"),)
        normalized = _ascii_bytes(plan.normalized_substrings)
        prepend = family.prepend_space
        unicode = "non-ASCII text in independent chunks" if boundary else "non-ASCII text through the Hugging Face tokenizer"
        reason = f"native kernel, {family.name} tokenizer family ({unicode}), {threads} thread(s)"
    else:

        def resolve(keys: list[str]) -> list[tuple[int, ...]]:
            raise AssertionError("no fast path: the kernel never looks words up")

        mode, norm_table, raw, normalized, prepend = _MODE_NONE, (b"",) * 128, (), (), False
        why = tokenizer.fast_path_reason
        reason = f"native pooling; every text through the Hugging Face tokenizer ({why}), {threads} thread(s)"
    try:
        core = _kernel.Kernel(
            words=words,
            table=np.ascontiguousarray(table),
            mapping=None if mapping is None else np.ascontiguousarray(mapping, dtype=np.int64),
            weights=None if weights is None else np.ascontiguousarray(weights),
            mode=mode,
            prepend_space=prepend,
            norm_table=norm_table,
            raw=raw,
            normalized=normalized,
            char_limit=-1 if settings.char_limit is None else settings.char_limit,
            max_length=-1 if settings.max_length is None else settings.max_length,
            truncate_left=settings.truncation_side == "left",
            unk_id=-1 if tokenizer.unk_id is None else tokenizer.unk_id,
            drop_unknown=settings.drop_unknown,
            arithmetic=_ARITHMETIC[pooling.arithmetic],
            normalize=pooling.normalize,
            weight_sum=pooling.denominator == "weight_sum",
            resolve=resolve,
            fallback=fallback,
            threads=threads,
            boundary=boundary,
        )
    except ValueError as exc:
        return None, f"the native kernel cannot run this model ({exc})"
    kernel = NativeKernel(core, reason)
    kernel._core_dim = int(table.shape[1])
    return kernel, reason
