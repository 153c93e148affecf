"""The compiled kernel's Python face: whether it is there, which backend an engine runs, and its threads.

``staticst._kernel`` (C11, built at install from ``csrc/``) tokenizes, looks up and pools a
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

import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from staticst.pooling import PoolingConfig
from staticst.tokenization import TextTokenizer
from staticst.tokenization.fast import hf_flat
from staticst.tokenization.native import NativePipeline, compile_pipeline
from staticst.tokenization.pretokenizers import Unsupported

if TYPE_CHECKING:
    from staticst._kernel import Kernel, WordTable

@dataclass(frozen=True, slots=True)
class KernelConfig:
    """Everything the compiled ``Kernel`` is built from: ``_kernel.Kernel(config)`` reads these fields by name.

    The field names are the C module's own list (``_kernel.KERNEL_CONFIG_FIELDS``, exported from
    ``csrc/kernel_type.c``; ``tests/test_kernel.py`` checks the two agree). Sizes use ``-1`` for "none", as the
    C side does.

    Attributes:
        words: The word cache (shared by the kernels of one engine).
        table: ``(rows, dim)`` C-contiguous float32 / float16 / float64 / int8 table.
        mapping: Token id -> table row (int64), or ``None``.
        weights: Per-token weights (float32 / float64), or ``None``.
        mode: Pre-tokenizer family code (``_kernel.MODES``).
        prepend_space: Prepend a space to each text (Metaspace-style families).
        norm_table: The normaliser's output per ASCII character (128 entries).
        raw: Substrings that send a text to the slow path before normalising.
        normalized: Substrings that send a text to the slow path after normalising.
        char_limit: Characters kept per text (``-1``: all).
        max_length: Token ids kept per text (``-1``: all).
        truncate_left: Keep the last ``max_length`` ids instead of the first.
        unk_id: The unknown token's id (``-1``: none).
        drop_unknown: Drop unknown-token ids before pooling (model2vec's rule).
        arithmetic: Pooling arithmetic code (``_kernel.ARITHMETICS``).
        normalize: L2-normalise each vector.
        weight_sum: Divide by the sum of weights instead of the id count.
        resolve: Word-cache miss resolver (keys -> ids), for the word-cache path.
        fallback: Texts -> ``(ids, offsets)`` through the Hugging Face tokenizer.
        threads: Threads per call.
        boundary: ASCII chunk separators for non-ASCII text, or ``None``.
        pipeline: The native tokenizer pipeline, or ``None``.
    """

    words: WordTable
    table: np.ndarray
    mapping: np.ndarray | None
    weights: np.ndarray | None
    mode: int
    prepend_space: bool
    norm_table: Sequence[bytes]
    raw: Sequence[bytes]
    normalized: Sequence[bytes]
    char_limit: int
    max_length: int
    truncate_left: bool
    unk_id: int
    drop_unknown: bool
    arithmetic: int
    normalize: bool
    weight_sum: bool
    resolve: Callable[[list[str]], Sequence[Sequence[int]]]
    fallback: Callable[[list[str]], tuple[np.ndarray, np.ndarray]]
    threads: int
    boundary: bytes | None = None
    pipeline: Any = None


BUILD_RECORD = Path(__file__).with_name("_kernel_build.json")
"""Written by ``setup.py`` at install: ``{"status": "built" | "failed", "reason": ...}``."""


def build_record() -> dict[str, str] | None:
    """What ``setup.py`` recorded about building the kernel when this copy was installed (``None``: no record).

    Returns:
        ``{"status": "built" | "failed", "reason": ...}``, or ``None`` when the install wrote none
        (built with ``STATICST_NO_KERNEL=1``, or by an older ``setup.py``).
    """
    try:
        record = json.loads(BUILD_RECORD.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("status", "reason")):
        return None
    return {"status": record["status"], "reason": record["reason"]}


def _not_built_reason(exc: ImportError) -> str:
    """Why ``staticst._kernel`` does not import, for :attr:`~staticst.engine.Embedder.backend_reason`."""
    record = build_record()
    if record is not None and record["status"] == "failed":
        return (
            f"the compiled kernel failed to build when staticst was installed ({record['reason']}); install a C "
            "compiler (e.g. gcc) and reinstall staticst"
        )
    if not any(BUILD_RECORD.parent.glob("_kernel.*")):
        return "the compiled kernel is not part of this install (built with STATICST_NO_KERNEL=1?); reinstall with a C compiler present"
    return f"the compiled kernel does not import ({exc}); reinstall staticst with a C compiler present"


# The compiled module, typed by its stub (staticst/_kernel.pyi, checked against it by stubtest); None when it is
# not built. mypy sees the module: every `_kernel is None` test below guards the numpy fallback.
IMPORT_ERROR: str | None
try:
    from staticst import _kernel

    if getattr(_kernel, "__file__", None) is None:  # a folder named _kernel imports as a namespace package
        raise ImportError(f"staticst._kernel is a namespace package ({list(_kernel.__path__)}), not the extension")
    IMPORT_ERROR = None
except ImportError as exc:  # no compiler at install time, or STATICST_NO_KERNEL=1
    _kernel = None  # type: ignore[assignment]  # the stub types the module; None means the numpy path
    IMPORT_ERROR = _not_built_reason(exc)
_warned_build_failure = False

__all__ = [
    "BUILD_RECORD",
    "ENV_KERNEL",
    "ENV_THREADS",
    "KERNELS",
    "KernelConfig",
    "NativeKernel",
    "available",
    "build_native",
    "build_record",
    "choose",
    "default_threads",
    "empty_rows",
    "native_pipeline",
    "new_word_table",
]

KERNELS = ("auto", "native", "numpy")
ENV_KERNEL = "STATICST_KERNEL"
ENV_THREADS = "STATICST_NUM_THREADS"
#: Words the native word table holds at most (about 50 bytes each); it starts again empty when full.
WORD_TABLE_WORDS = 262_144


def _warn_build_failure() -> None:
    """Warn once per process when the kernel failed to build at install (the numpy path runs instead).

    pip shows a build's output only with ``-v``, so this is where a user without a compiler first hears of
    it. Installs without the kernel on purpose (``STATICST_NO_KERNEL=1``) and ``kernel="numpy"`` stay quiet.
    """
    global _warned_build_failure
    record = build_record()
    if _warned_build_failure or record is None or record["status"] != "failed":
        return
    _warned_build_failure = True
    warnings.warn(
        f"staticst runs its numpy backend (same vectors, slower): {IMPORT_ERROR}.", RuntimeWarning, stacklevel=4
    )


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


def new_word_table() -> WordTable:
    """A fresh native word table (shared by the kernels of one tokenizer)."""
    if _kernel is None:
        raise RuntimeError(f"no native word table: {IMPORT_ERROR}")
    return _kernel.WordTable(max_words=WORD_TABLE_WORDS)


def trim_heap() -> bool:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim``; ``False`` elsewhere)."""
    return _kernel is not None and bool(_kernel.trim_heap())


def empty_rows(n: int, dim: int) -> np.ndarray:
    """An uninitialised ``(n, dim)`` float32 array (large ones backed by huge pages where the OS allows)."""
    if _kernel is None:
        return np.empty((n, dim), dtype=np.float32)
    return _kernel.empty_rows(n, dim)


#: How the native kernel tokenizes (``info()["tokenizer"]``).
TOKENIZER_NATIVE = "native"
TOKENIZER_WORD_CACHE = "native word cache, Hugging Face model for new words (ASCII text)"
TOKENIZER_HF = "Hugging Face tokenizer"


def native_pipeline(tokenizer: TextTokenizer) -> tuple[NativePipeline | None, str]:
    """The tokenizer compiled for the kernel, or ``None`` and the reason (the component it does not implement)."""
    if _kernel is None:
        return None, f"the compiled kernel is not built ({IMPORT_ERROR})"
    try:
        compiled = compile_pipeline(tokenizer.tokenizer)
    except Unsupported as exc:
        return None, str(exc)
    return compiled, compiled.description


class NativeKernel:
    """The compiled path of one engine: ``embed`` / ``embed_one`` / ``tokenize`` as the numpy path computes them."""

    def __init__(
        self, core: Kernel, reason: str, tokenizer: str = TOKENIZER_NATIVE, tokenizer_reason: str = ""
    ) -> None:
        self._core = core
        self.reason = reason
        self.tokenizer = tokenizer
        self.tokenizer_reason = tokenizer_reason

    @property
    def threads(self) -> int:
        """Native threads a large batch is split over."""
        return self._core.threads

    @threads.setter
    def threads(self, value: int) -> None:
        self._core.threads = value

    def embed_into(self, texts: list[str], out: np.ndarray) -> int:
        """Pool ``texts`` into the rows of ``out`` (C-contiguous float32, ``(len(texts), dim)``); returns the ids pooled."""
        return self._core.embed(texts, out)

    def embed_one(self, text: str) -> np.ndarray:
        """The vector of one text."""
        return self._core.embed_one(text)

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The ids pooled for ``texts`` (``int32``) and their ``int64`` offsets."""
        return self._core.tokenize(texts)

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
    if family.kernel_mode not in ("whitespace", "bert", "words") or family.prefix or plan.normalized_substrings:
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
    words: WordTable,
    threads: int,
    pipeline: tuple[NativePipeline | None, str] | None = None,
) -> tuple[NativeKernel | None, str]:
    """The native kernel for these parts, or ``None`` and the reason it cannot run them.

    ``pipeline``: :func:`native_pipeline` of this tokenizer (computed here when not given). With a native
    pipeline every text is tokenized in C; without one, ASCII text takes the word-cache plan when the tokenizer
    has one, and the rest the Hugging Face tokenizer.
    """
    if _kernel is None:
        _warn_build_failure()
        return None, str(IMPORT_ERROR)
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
    if plan is not None and (plan.family.kernel_mode is None or any(len(out) > _kernel.MAX_NORM for out in plan.table)):
        plan = None
    hf_tokenizer = tokenizer.tokenizer

    def fallback(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return hf_flat(hf_tokenizer, list(tokenizer.cut_all(texts)))

    resolve: Callable[[list[str]], list[tuple[int, ...]]]
    boundary: bytes | None = None
    native, native_why = pipeline if pipeline is not None else native_pipeline(tokenizer)
    compiled = None
    norm_table: tuple[bytes, ...]
    raw: tuple[bytes, ...]
    normalized: tuple[bytes, ...]
    if native is not None:

        def resolve(keys: list[str]) -> list[tuple[int, ...]]:
            raise AssertionError("a native pipeline never looks words up in Python")

        compiled = native.pipeline
        mode, norm_table, raw, normalized, prepend = _kernel.MODES["none"], (b"",) * 128, (), (), False
        path, path_reason = TOKENIZER_NATIVE, native_why
        reason = f"native kernel, {native_why}, {threads} thread(s)"
    elif plan is not None and fast is not None:
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

        assert family.kernel_mode is not None  # checked above
        mode = _kernel.MODES[family.kernel_mode]
        norm_table = tuple(out.encode("ascii") for out in plan.table)
        raw = tuple(s.encode("utf-8") for s in plan.raw_substrings if s)
        if boundary is not None and family.name == "llama-space":
            # the word-boundary proof assumes no replacement character in the text itself ("▁" + " " would
            # let a "▁▁" merge cross a boundary): such texts take the Hugging Face tokenizer
            raw += (family.prefix.encode("utf-8"),)
        normalized = _ascii_bytes(plan.normalized_substrings)
        prepend = family.prepend_space
        unicode = (
            "non-ASCII text in independent chunks" if boundary else "non-ASCII text through the Hugging Face tokenizer"
        )
        path, path_reason = TOKENIZER_WORD_CACHE, f"no native tokenizer: {native_why}"
        reason = f"native kernel, {family.name} tokenizer family ({unicode}; {path_reason}), {threads} thread(s)"
    else:

        def resolve(keys: list[str]) -> list[tuple[int, ...]]:
            raise AssertionError("no fast path: the kernel never looks words up")

        mode, norm_table, raw, normalized, prepend = _kernel.MODES["none"], (b"",) * 128, (), (), False
        why = tokenizer.fast_path_reason
        path, path_reason = TOKENIZER_HF, f"no native tokenizer: {native_why}; no word-cache plan: {why}"
        reason = f"native pooling; every text through the Hugging Face tokenizer ({path_reason}), {threads} thread(s)"
    try:
        config = KernelConfig(
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
            arithmetic=_kernel.ARITHMETICS[pooling.arithmetic],
            normalize=pooling.normalize,
            weight_sum=pooling.denominator == "weight_sum",
            resolve=resolve,
            fallback=fallback,
            threads=threads,
            boundary=boundary,
            pipeline=compiled,
        )
        core = _kernel.Kernel(config)
    except ValueError as exc:
        return None, f"the native kernel cannot run this model ({exc})"
    kernel = NativeKernel(core, reason, path, path_reason)
    kernel._core_dim = int(table.shape[1])
    return kernel, reason
