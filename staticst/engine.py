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
from typing import Any

import numpy as np

from staticst import kernel as _kernels
from staticst.errors import PoolingOverflowError
from staticst.families import Family
from staticst.persistence.load import ModelParts, read_model
from staticst.pooling import PoolingConfig, pool, pool_one
from staticst.tokenization import TextTokenizer, TokenizerSettings

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


class _Shared:
    """State shared by an embedder and its :meth:`Embedder.with_settings` copies."""

    __slots__ = ("gather_table", "words")

    def __init__(self) -> None:
        self.gather_table: np.ndarray | None = None
        self.words: Any = None  # the native word table, made with the first native kernel


class Embedder:
    """Texts in, the model's float32 vectors out.

    Args:
        table: ``(rows, dim)`` embedding table (float32, float16, float64 or int8; may be memory-mapped).
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
        self._native: _kernels.NativeKernel | None = None
        self.backend_reason = "the numpy path was requested (kernel='numpy')"
        self._build_native()

    def _build_native(self) -> None:
        """(Re)build the native kernel for the current settings, as :attr:`kernel_request` asks."""
        self._native = None
        if self.kernel_request == "numpy":
            self.backend_reason = "the numpy path was requested (kernel='numpy')"
            return
        if _kernels.available() and self._shared.words is None:
            self._shared.words = _kernels.new_word_table()
        native, reason = _kernels.build_native(
            self.table, self.mapping, self.weights, self.tokenizer, self.pooling, self._shared.words, self._threads
        )
        if native is None and self.kernel_request == "native":
            raise ValueError(f"kernel='native' cannot run this model: {reason}. Use kernel='auto' or 'numpy'.")
        self._native = native
        self.backend_reason = reason if native is not None else f"numpy path: {reason}"

    @property
    def backend(self) -> str:
        """``"native"`` (the compiled kernel) or ``"numpy"`` (the pure path); :attr:`backend_reason` says why."""
        return "native" if self._native is not None else "numpy"

    @property
    def threads(self) -> int:
        """Native threads a large batch is split over (results never depend on it)."""
        return self._threads

    @threads.setter
    def threads(self, value: int) -> None:
        self._threads = _check_threads(value)
        if self._native is not None:
            self._native.threads = self._threads

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
            family: Read the model under this family's semantics instead of its layout's (e.g. model2vec's
                rules for a sentence-transformers folder, as ``model2vec.StaticModel`` reads one).
            normalize: Normalise the output (default: the layout's ``Normalize`` module / ``normalize`` key).
        """
        family = family or parts.family
        median = family.median_length(parts.tokenizer)
        settings = family.tokenizer_settings(parts.config, parts.truncation, median)
        return cls(
            parts.table,
            TextTokenizer(parts.tokenizer, settings, copy=False),
            family.pooling(parts.resolved.normalize_module if normalize is None else normalize),
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

    def with_settings(self, settings: TokenizerSettings | None = None, pooling: PoolingConfig | None = None) -> Embedder:
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
            clone._build_native()
        return clone

    def with_kernel(self, kernel: str | None) -> Embedder:
        """The same engine on another backend (``"auto"``, ``"native"``, ``"numpy"``)."""
        clone = _shallow_copy(self)
        clone.kernel_request = _kernels.choose(kernel)
        clone._build_native()
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
        if self._native is not None:
            ids, offsets = self._native.tokenize(list(texts))
            return ids.astype(np.int64), offsets
        return self.tokenizer.encode_flat(texts)

    def pool_ids(self, ids: np.ndarray, offsets: np.ndarray, first: int = 0) -> np.ndarray:
        """Pool flat ids (as :meth:`tokenize` returns them) into ``(len(offsets) - 1, dim)`` float32 (numpy path).

        Raises:
            FloatingPointError: A text's vector overflowed (``first``: the index of text 0, for the message).
        """
        return pool(
            self.table,
            ids,
            offsets,
            self.pooling,
            mapping=self.mapping,
            weights=self.weights,
            gather_table=self._gather_table(len(ids)),
            first=first,
        )

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

    def embed_counted(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """:meth:`embed`, and the number of token ids pooled (an OpenAI-style ``usage`` count), in one pass.

        Raises:
            PoolingOverflowError: A text's vector overflowed to Inf / NaN (the message names it).
        """
        try:
            native = self._native
            if native is not None:  # the kernel works in bounded chunks itself
                batch = texts if isinstance(texts, list) else list(texts)
                out = _kernels.empty_rows(len(batch), self.dim)
                return out, native.embed_into(batch, out)
            bounds = steps(texts)
            out = np.empty((len(texts), self.dim), dtype=np.float32)
            tokens = 0
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
                ids, offsets = self.tokenize(texts[lo:hi])
                tokens += len(ids)
                out[lo:hi] = self.pool_ids(ids, offsets, first=lo)
            return out, tokens
        except FloatingPointError as exc:
            raise PoolingOverflowError(str(exc)) from None

    def embed_one(self, text: str) -> np.ndarray:
        """The model's vector of one text: ``(dim,)`` float32, equal to ``embed([text])[0]``.

        Raises:
            PoolingOverflowError: The text's vector overflowed to Inf / NaN.
        """
        try:
            if self._native is not None:
                return self._native.embed_one(text)
            return self._embed_one_numpy(text)
        except FloatingPointError as exc:
            raise PoolingOverflowError(str(exc)) from None

    def _embed_one_numpy(self, text: str) -> np.ndarray:
        return pool_one(
            self.table,
            self.tokenizer.encode_one(text),
            self.pooling,
            mapping=self.mapping,
            weights=self.weights,
            gather_table=self._shared.gather_table,
        )

    def info(self) -> dict[str, Any]:
        """The engine's facts: family, arithmetic, token rules and the tokenizer's fast path."""
        return {
            "backend": self.backend,
            "backend_reason": self.backend_reason,
            "threads": self._threads,
            "family": self.family.name,
            "arithmetic": self.pooling.arithmetic,
            "normalize": self.pooling.normalize,
            "max_length": self.settings.max_length,
            "drop_unknown": self.settings.drop_unknown,
            "fast_tokenizer": self.tokenizer.fast_path,
        }
