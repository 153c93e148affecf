"""The engine: one object that *is* the embedder (table + mapping + weights + tokenizer + pooling settings).

:class:`Embedder` turns texts into the model's own vectors (its normalisation, no prompt, no
``truncate_dim``, no quantisation) and nothing else: no sentence-transformers argument handling. The
facade (:class:`staticst.StaticSentenceTransformer`), the worker processes (:mod:`staticst.multiprocess`)
and the server call it; a compiled kernel goes behind :meth:`Embedder.embed` / :meth:`Embedder.embed_one`.

Memory is bounded: a batch is handled in steps of at most :data:`ENCODE_STEP` texts and about
:data:`ENCODE_STEP_CHARS` characters, and pooling itself works in bounded windows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from copy import copy as _shallow_copy
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from staticst import kernel as _kernels
from staticst.errors import PoolingOverflowError
from staticst.families import Family
from staticst.persistence.load import ModelParts, read_model
from staticst.pooling import PoolingConfig, float64_means, pool, pool_one
from staticst.tokenization import TextTokenizer, TokenizerSettings
from staticst.tokenization.reloadable import RELEASE_MIN_VOCAB, ReloadableTokenizer

__all__ = ["ENCODE_STEP", "ENCODE_STEP_CHARS", "GATHER_COPY_TOKENS", "Embedder", "steps"]

#: Texts handled per internal step of :meth:`Embedder.embed` (bounds the memory of one step).
ENCODE_STEP = 8192
#: Characters handled per internal step (long texts: bounds the words held at once).
ENCODE_STEP_CHARS = 1 << 20
#: A float16 table's exact float32 copy is made for the first step with at least this many tokens.
GATHER_COPY_TOKENS = 1 << 16


def _check_threads(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 1024:
        raise ValueError(f"threads must be an integer in 1..1024, got {value!r}.")
    return int(value)


def steps(texts: Sequence[str]) -> list[int]:
    """Step boundaries ``[0, ..., len(texts)]`` of :meth:`Embedder.embed`.

    A step holds at most :data:`ENCODE_STEP` texts and about :data:`ENCODE_STEP_CHARS` characters (a single
    longer text is a step of its own).
    """
    n = len(texts)
    if n <= ENCODE_STEP and sum(map(len, texts)) <= ENCODE_STEP_CHARS:
        return [0, n]
    ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=n))
    bounds = [0]
    while bounds[-1] < n:
        lo = bounds[-1]
        base = int(ends[lo - 1]) if lo else 0
        by_chars = int(np.searchsorted(ends, base + ENCODE_STEP_CHARS, side="right"))
        bounds.append(min(n, lo + ENCODE_STEP, max(lo + 1, by_chars)))
    return bounds


def _release_large(text_tokenizer: TextTokenizer) -> None:
    """Release a large tokenizer's memory: the native pipeline tokenizes every text (a later use rebuilds it)."""
    tokenizer = text_tokenizer.tokenizer
    if isinstance(tokenizer, ReloadableTokenizer) and tokenizer.loaded and text_tokenizer.vocab_size >= RELEASE_MIN_VOCAB:
        tokenizer.release()
        _kernels.trim_heap()  # else glibc keeps the freed pages: the process would not shrink


class _Shared:
    """State shared by an embedder and its :meth:`Embedder.with_settings` copies."""

    __slots__ = ("gather_table", "pipeline", "words")

    def __init__(self) -> None:
        self.gather_table: np.ndarray | None = None
        self.words: Any = None  # the native word table, made with the first native kernel
        self.pipeline: tuple[Any, str] | None = None  # the tokenizer compiled for the kernel (or why not), once


class Backend(Protocol):
    """How an engine turns texts into ids and vectors: the numpy path or the native kernel, chosen once per engine.

    Each method gets the engine (its table, tokenizer and pooling settings in force): a backend holds no model
    state of its own beyond the compiled kernel, so an engine's settings copies can share one.
    """

    name: str

    def tokenize(self, engine: Embedder, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The ids pooled for ``texts``: ``(flat int64 ids, offsets)``."""
        ...

    def embed_counted(self, engine: Embedder, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """``(len(texts), dim)`` float32 vectors and the number of ids pooled (raises FloatingPointError on overflow)."""
        ...

    def embed_one(self, engine: Embedder, text: str) -> np.ndarray:
        """One text's ``(dim,)`` float32 vector (raises FloatingPointError on overflow)."""
        ...

    def pool_ids(self, engine: Embedder, ids: np.ndarray, offsets: np.ndarray, first: int) -> np.ndarray:
        """Pool given flat ids into ``(len(offsets) - 1, dim)`` float32 (raises FloatingPointError on overflow)."""
        ...

    def tokenizer_path(self, engine: Embedder) -> tuple[str, str]:
        """How texts become ids on this backend, and why."""
        ...

    def set_threads(self, threads: int) -> None:
        """Native threads a large batch is split over (no effect on the numpy path)."""
        ...


class NumpyBackend:
    """The pure path: the engine's tokenizer (word cache or Hugging Face), pooling in numpy; the oracle."""

    name = "numpy"

    def tokenize(self, engine: Embedder, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return engine.tokenizer.encode_flat(texts)

    def embed_counted(self, engine: Embedder, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        bounds = steps(texts)
        out = np.empty((len(texts), engine.dim), dtype=np.float32)
        tokens = 0
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
            ids, offsets = engine.tokenizer.encode_flat(texts[lo:hi])
            tokens += len(ids)
            out[lo:hi] = self.pool_ids(engine, ids, offsets, lo)
        return out, tokens

    def pool_ids(self, engine: Embedder, ids: np.ndarray, offsets: np.ndarray, first: int) -> np.ndarray:
        return pool(
            engine.table,
            ids,
            offsets,
            engine.pooling,
            mapping=engine.mapping,
            weights=engine.weights,
            gather_table=engine._gather_table(len(ids)),
            first=first,
        )

    def embed_one(self, engine: Embedder, text: str) -> np.ndarray:
        return pool_one(
            engine.table,
            engine.tokenizer.encode_one(text),
            engine.pooling,
            mapping=engine.mapping,
            weights=engine.weights,
            gather_table=engine.gather_table,
        )

    def tokenizer_path(self, engine: Embedder) -> tuple[str, str]:
        if engine.tokenizer.fast_path:
            return "Python word cache, Hugging Face model for new words (ASCII text)", engine.tokenizer.fast_path_reason
        return "Hugging Face tokenizer", engine.tokenizer.fast_path_reason

    def set_threads(self, threads: int) -> None:
        return None


class NativeBackend:
    """The compiled kernel: tokenize, look up and pool in C (bit-identical to :class:`NumpyBackend`).

    Args:
        kernel: The kernel built for the engine's table, tokenizer and settings.
    """

    name = "native"

    def __init__(self, kernel: _kernels.NativeKernel) -> None:
        self.kernel = kernel

    def tokenize(self, engine: Embedder, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        ids, offsets = self.kernel.tokenize(list(texts))
        return ids.astype(np.int64), offsets

    def embed_counted(self, engine: Embedder, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        batch = texts if isinstance(texts, list) else list(texts)  # the kernel works in bounded chunks itself
        out = _kernels.empty_rows(len(batch), engine.dim)
        return out, self.kernel.embed_into(batch, out)

    def embed_one(self, engine: Embedder, text: str) -> np.ndarray:
        return self.kernel.embed_one(text)

    def pool_ids(self, engine: Embedder, ids: np.ndarray, offsets: np.ndarray, first: int) -> np.ndarray:
        try:
            return self.kernel.pool(ids, offsets)
        except FloatingPointError:  # rare: the numpy path raises the same error, naming the input in the call
            return NumpyBackend().pool_ids(engine, ids, offsets, first)

    def tokenizer_path(self, engine: Embedder) -> tuple[str, str]:
        return self.kernel.tokenizer, self.kernel.tokenizer_reason

    def set_threads(self, threads: int) -> None:
        self.kernel.threads = threads


#: The numpy path (stateless: shared by every engine on it).
NUMPY = NumpyBackend()


class Embedder:
    """Texts in, the model's float32 vectors out.

    Args:
        table: ``(rows, dim)`` embedding table (float32, float16, float64 or int8; may be a read-only view of a shared copy).
        tokenizer: The model's tokenizer under its token rules.
        pooling: The pooling arithmetic and normalisation.
        family: The reference family (decides how a new token limit changes the character cut).
        mapping: Token id -> table row of a vocabulary-quantized model.
        weights: Per-token-id weights.
        median_length: The tokenizer's median token length (the family's character cut uses it).
        kernel: ``"auto"``, ``"native"`` or ``"numpy"`` (``None``: ``STATICST_KERNEL``, else ``"auto"``); see
            :mod:`staticst.kernel`.
        threads: Native threads for large batches (``None``: :func:`staticst.kernel.default_threads`).

    Raises:
        ValueError: An unknown ``kernel``, or ``"native"`` for a model the kernel cannot run (the message says why).
    """

    def __init__(
        self,
        table: np.ndarray,
        tokenizer: TextTokenizer,
        pooling: PoolingConfig,
        family: Family,
        *,
        mapping: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        median_length: int = 0,
        kernel: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.table = table
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.family = family
        self.mapping = mapping
        self.weights = weights
        self.median_length = median_length
        self._shared = _Shared()
        self.kernel_request = _kernels.choose(kernel)
        self._threads = _kernels.default_threads() if threads is None else _check_threads(threads)
        self._backend: Backend = NUMPY
        self.backend_reason = "the numpy path was requested (kernel='numpy')"
        self._build_backend()

    def _build_backend(self) -> None:
        """(Re)choose the backend for the current settings, as :attr:`kernel_request` asks (built once per settings)."""
        self._backend = NUMPY
        if self.kernel_request == "numpy":
            self.backend_reason = "the numpy path was requested (kernel='numpy')"
            return
        shared = self._shared
        if _kernels.available() and shared.words is None:
            shared.words = _kernels.new_word_table()
        if _kernels.available() and shared.pipeline is None:
            shared.pipeline = _kernels.native_pipeline(self.tokenizer)
        native, reason = _kernels.build_native(
            self.table,
            self.mapping,
            self.weights,
            self.tokenizer,
            self.pooling,
            shared.words,
            self._threads,
            pipeline=shared.pipeline,
        )
        if native is None and self.kernel_request == "native":
            raise ValueError(f"kernel='native' cannot run this model: {reason}. Use kernel='auto' or 'numpy'.")
        self.backend_reason = reason if native is not None else f"numpy path: {reason}"
        if native is None:
            return
        self._backend = NativeBackend(native)
        if native.tokenizer == _kernels.TOKENIZER_NATIVE:
            _release_large(self.tokenizer)

    @property
    def backend(self) -> str:
        """``"native"`` (the compiled kernel) or ``"numpy"`` (the pure path); :attr:`backend_reason` says why."""
        return self._backend.name

    @property
    def threads(self) -> int:
        """Native threads a large batch is split over (results never depend on it)."""
        return self._threads

    @threads.setter
    def threads(self, value: int) -> None:
        self._threads = _check_threads(value)
        self._backend.set_threads(self._threads)

    @classmethod
    def from_parts(
        cls,
        parts: ModelParts,
        kernel: str | None = None,
        threads: int | None = None,
        family: Family | None = None,
        normalize: bool | None = None,
    ) -> Embedder:
        """The engine of a model read by :func:`staticst.persistence.load.read_model`.

        The parts' tokenizer is handed over: its padding and truncation are switched off (they are kept in
        ``parts.padding`` / ``parts.truncation``).

        Args:
            parts: The checked parts of a model folder.
            kernel: ``"auto"``, ``"native"`` or ``"numpy"`` (``None``: ``STATICST_KERNEL``, else ``"auto"``).
            threads: Native threads for large batches.
            family: Read the model under this family's semantics instead of its layout's (the faces choose:
                ``StaticSentenceTransformer`` sentence-transformers', ``StaticModel`` model2vec's).
            normalize: Normalise the output (default: where the family reads it, :meth:`Family.normalize`).
        """
        family = family or parts.family
        median = family.median_length(parts.tokenizer)
        settings = family.tokenizer_settings(parts.config, parts.truncation, median)
        return cls(
            parts.table,
            TextTokenizer(parts.tokenizer, settings, copy=False),
            family.pooling(family.normalize(parts.resolved) if normalize is None else normalize),
            family,
            mapping=parts.mapping,
            weights=parts.weights,
            median_length=median,
            kernel=kernel,
            threads=threads,
        )

    @classmethod
    def load(cls, folder: str | os.PathLike[str], kernel: str | None = None) -> Embedder:
        """The engine of the model in a local ``folder`` (what each worker process does)."""
        return cls.from_parts(read_model(Path(folder)), kernel=kernel)

    # ------------------------------------------------------------------ settings

    @property
    def dim(self) -> int:
        """Width of the table (and of :meth:`embed`'s rows)."""
        return int(self.table.shape[1])

    @property
    def settings(self) -> TokenizerSettings:
        """The token rules in force."""
        return self.tokenizer.settings

    def with_settings(
        self, settings: TokenizerSettings | None = None, pooling: PoolingConfig | None = None
    ) -> Embedder:
        """The same engine (table, tokenizer and word cache shared) under other token rules or pooling."""
        clone = _shallow_copy(self)
        changed = False
        if settings is not None and settings != self.settings:
            clone.tokenizer = self.tokenizer.with_settings(settings)
            changed = True
        if pooling is not None and pooling != self.pooling:
            clone.pooling = pooling
            changed = True
        if changed:
            clone._build_backend()
        return clone

    def with_kernel(self, kernel: str | None) -> Embedder:
        """The same engine on another backend (``"auto"``, ``"native"``, ``"numpy"``)."""
        clone = _shallow_copy(self)
        clone.kernel_request = _kernels.choose(kernel)
        clone._build_backend()
        return clone

    def with_max_length(self, max_length: int | None) -> Embedder:
        """:meth:`with_settings` with another token limit (the family derives the character cut from it)."""
        return self.with_settings(self.family.with_max_length(self.settings, max_length, self.median_length))

    @property
    def gather_table(self) -> np.ndarray | None:
        """The exact float32 copy of a float16 table, once a large step made it (else ``None``)."""
        return self._shared.gather_table

    def _gather_table(self, n_tokens: int) -> np.ndarray | None:
        # float16 rows are converted to float32 for every sum anyway; one exact copy makes batch pooling ~5x
        # faster. The copy costs about what converting 64K gathered rows costs: made for the first large step.
        shared = self._shared
        if shared.gather_table is None and self.table.dtype == np.float16 and n_tokens >= GATHER_COPY_TOKENS:
            shared.gather_table = self.table.astype(np.float32)  # racing threads compute the same copy
        return shared.gather_table

    # ------------------------------------------------------------------ embedding

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The ids pooled for ``texts``: ``(flat int64 ids, offsets)`` with ``len(texts) + 1`` offsets."""
        return self._backend.tokenize(self, texts)

    def pool_ids(self, ids: np.ndarray, offsets: np.ndarray, first: int = 0) -> np.ndarray:
        """Pool flat ids (as :meth:`tokenize` returns them) into ``(len(offsets) - 1, dim)`` float32, on the backend.

        Raises:
            PoolingOverflowError: A text's vector overflowed to Inf / NaN (``first``: the index of text 0, for the
                message), as :meth:`embed` raises it.
        """
        try:
            return self._backend.pool_ids(self, ids, offsets, first)
        except FloatingPointError as exc:
            raise PoolingOverflowError(str(exc)) from None

    def token_rows(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The table row of every token pooled for each text: ``table[mapping[ids]] * weights[ids]``.

        Rows keep the table's dtype (``* weights`` promotes as numpy does); a text with no token gives a
        ``(0, dim)`` float64 array, as model2vec's ``encode_as_sequence`` returns.
        """
        ids, offsets = self.tokenize(texts)
        rows = self.table[self.mapping[ids] if self.mapping is not None else ids]
        if self.weights is not None:
            rows = rows * self.weights[ids][:, None]
        return [
            rows[lo:hi] if hi > lo else np.zeros((0, self.dim))
            for lo, hi in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
        ]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The model's vectors of ``texts``: ``(len(texts), dim)`` float32, memory bounded per step.

        Raises:
            PoolingOverflowError: A text's vector overflowed to Inf / NaN (the message names it).
        """
        return self.embed_counted(texts)[0]

    def embed_float64(self, texts: Sequence[str]) -> np.ndarray:
        """Unnormalised means in float64, ``(len(texts), dim)``: what model2vec gives for a float64 table.

        The same token ids as :meth:`embed`, summed in token order in float64 (pooling's sums, which follow
        numpy's reduction order) and divided by the token count, as numpy's ``mean`` in model2vec does.

        Raises:
            PoolingOverflowError: A text's vector overflowed to Inf / NaN (the message names it).
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        bounds = steps(texts)
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
            ids, offsets = self.tokenize(texts[lo:hi])
            out[lo:hi] = float64_means(self.table, ids, offsets, self.mapping, self.weights)
            bad = ~np.isfinite(out[lo:hi]).all(axis=1)
            if bad.any():
                raise PoolingOverflowError(f"the vector of input {lo + int(np.flatnonzero(bad)[0])} overflowed to Inf/NaN")
        return out

    def embed_counted(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """:meth:`embed`, and the number of token ids pooled (an OpenAI-style ``usage`` count), in one pass.

        Raises:
            PoolingOverflowError: A text's vector overflowed to Inf / NaN (the message names it).
        """
        try:
            return self._backend.embed_counted(self, texts)
        except FloatingPointError as exc:
            raise PoolingOverflowError(str(exc)) from None

    def embed_one(self, text: str) -> np.ndarray:
        """The model's vector of one text: ``(dim,)`` float32, equal to ``embed([text])[0]``.

        Raises:
            PoolingOverflowError: The text's vector overflowed to Inf / NaN.
        """
        try:
            return self._backend.embed_one(self, text)
        except FloatingPointError as exc:
            raise PoolingOverflowError(str(exc)) from None

    @property
    def tokenizer_path(self) -> tuple[str, str]:
        """How texts become ids on this backend, and why.

        The native tokenizer, the native word cache over the Hugging Face model, the Python word cache (numpy
        backend), or the Hugging Face tokenizer.
        """
        return self._backend.tokenizer_path(self)

    def info(self) -> dict[str, Any]:
        """The engine's facts: backend, tokenizer path, family, arithmetic, token rules and the fast path."""
        path, path_reason = self.tokenizer_path
        return {
            "backend": self.backend,
            "backend_reason": self.backend_reason,
            "tokenizer": path,
            "tokenizer_reason": path_reason,
            "threads": self._threads,
            "family": self.family.name,
            "arithmetic": self.pooling.arithmetic,
            "normalize": self.pooling.normalize,
            "max_length": self.settings.max_length,
            "drop_unknown": self.settings.drop_unknown,
            "fast_tokenizer": self.tokenizer.fast_path,
        }
