"""Pooling token rows into sentence vectors, in bounded memory, with each reference's arithmetic.

Everything works on flat token ids and ``offsets`` (``offsets[i]:offsets[i+1]`` are text ``i``'s ids).
Texts are summed position by position over length-sorted groups (see :func:`_segment_sums`): each
token row is read once, each text is summed in token order (the order numpy's ``mean`` uses in the
reference libraries, so results are bit-identical), no ``n_tokens x dim`` array is ever built for a
whole corpus, and there is no per-sentence Python loop over vectors.

The arithmetic is an explicit :class:`PoolingConfig`; its ``arithmetic`` names an entry of
:data:`ARITHMETICS`, one per reference family (:mod:`staticst.families` says which family uses which):

* ``"model2vec"`` (model2vec 0.10): mean = sum / count computed as numpy's ``mean`` does (float32 sum
  for float tables, float64 for integer tables, division in float64, stored in the table dtype for
  float16 tables), then ``x / (||x|| + 1e-32)`` when the config says ``normalize``; per-token weights
  multiply rows (``weights[id] * table[mapping[id]]``).
* ``"sentence-transformers"`` (ST 6.2 ``StaticEmbedding`` = ``nn.EmbeddingBag(mode="mean")``): float32
  sum / count, then ``x / max(||x||, 1e-12)`` when a ``Normalize`` module follows.

An empty text (or one whose tokens were all dropped) pools to a zero vector, never NaN. A text whose sum,
mean or norm overflows to Inf / NaN (a finite table with huge values) raises ``FloatingPointError`` naming
the text: a wrong vector is never returned (the engine turns it into :class:`~staticst.errors.PoolingOverflowError`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "ARITHMETICS",
    "LONG_TEXT_TOKENS",
    "WINDOW_BYTES",
    "Arithmetic",
    "PoolingConfig",
    "float64_means",
    "normalize_rows",
    "pool",
    "pool_one",
]

#: The name of a pooling arithmetic (a key of :data:`ARITHMETICS`).
ArithmeticName = Literal["model2vec", "sentence-transformers"]

#: Upper bound on the bytes of gathered rows held at once.
WINDOW_BYTES = 8 * 1024 * 1024
#: Texts longer than this many tokens are summed block by block on their own.
LONG_TEXT_TOKENS = 2048
#: Rows per block when turning sums into (normalised) means.
FINISH_ROWS = 1024


@dataclass(frozen=True)
class PoolingConfig:
    """The numeric semantics of one model (an explicit, documented model setting).

    Attributes:
        arithmetic: Whose mean / normalisation arithmetic to reproduce: ``"model2vec"`` or
            ``"sentence-transformers"``.
        normalize: L2-normalise pooled vectors (model2vec ``normalize``, or ST's ``Normalize`` module).
        denominator: ``"count"`` divides the (weighted) sum by the number of tokens, as model2vec 0.10
            and ST do; ``"weight_sum"`` divides by the sum of per-token weights (the attention-weighted
            mean ``sum(a_i e_i) / sum(a_i)`` of the SwiftEmbed paper). The two differ only by a
            per-text scale, so they agree exactly in direction and after normalisation.
    """

    arithmetic: ArithmeticName
    normalize: bool
    denominator: Literal["count", "weight_sum"] = "count"

    def __post_init__(self) -> None:
        if self.arithmetic not in ARITHMETICS:
            raise ValueError(f"unknown pooling arithmetic {self.arithmetic!r}; known: {sorted(ARITHMETICS)}")
        if self.denominator not in ("count", "weight_sum"):
            raise ValueError(f"denominator must be 'count' or 'weight_sum', got {self.denominator!r}")


class Arithmetic:
    """One reference's rounding: how a sum becomes a mean, and how a mean is L2-normalised.

    Subclasses are registered in :data:`ARITHMETICS`; a new reference family adds one entry.
    """

    name: str = ""

    def out_dtype(self, table_dtype: np.dtype) -> np.dtype:
        """The dtype the reference stores a mean in (the result is returned as float32)."""
        return np.dtype(np.float32)

    def mean(
        self, sums: np.ndarray, safe: np.ndarray, config: PoolingConfig, table_dtype: np.dtype, acc: np.dtype
    ) -> np.ndarray:
        """Means of a block of per-text sums (``safe``: the per-text denominators, never 0), in :meth:`out_dtype`."""
        raise NotImplementedError

    def norm_divisor(self, norms: np.ndarray) -> np.ndarray:
        """What a float32 row is divided by, given its float32 L2 norm (the reference's epsilon rule)."""
        raise NotImplementedError


class Model2VecArithmetic(Arithmetic):
    """model2vec 0.10: numpy's ``mean`` (float64 division, stored in the table dtype), ``x / (||x|| + 1e-32)``."""

    name = "model2vec"

    def out_dtype(self, table_dtype: np.dtype) -> np.dtype:  # noqa: D102
        return np.dtype(np.float32) if np.issubdtype(table_dtype, np.integer) else np.dtype(table_dtype)

    def mean(
        self, sums: np.ndarray, safe: np.ndarray, config: PoolingConfig, table_dtype: np.dtype, acc: np.dtype
    ) -> np.ndarray:  # noqa: D102
        # numpy's mean: sum in `acc`, true_divide by an intp count in float64, stored in the output dtype.
        out_dtype = self.out_dtype(table_dtype)
        if acc == np.float32 and config.denominator == "count" and float(safe.max(initial=0.0)) < 2**24:
            # float32 / (count < 2**24, exact in float32) equals the float64 quotient rounded to float32
            # (float64 has more than 2 * 24 + 2 bits): the same numbers without the float64 temporaries.
            return (sums / safe.astype(np.float32)).astype(out_dtype, copy=False)
        return (sums.astype(np.float64, copy=False) / safe).astype(acc, copy=False).astype(out_dtype)

    def norm_divisor(self, norms: np.ndarray) -> np.ndarray:  # noqa: D102
        return norms + 1e-32  # a Python float: added in the dtype of `norms`, as in model2vec


class SentenceTransformersArithmetic(Arithmetic):
    """sentence-transformers 6.2 (``EmbeddingBag(mode="mean")`` + ``Normalize``): float32 mean, ``x / max(||x||, 1e-12)``."""

    name = "sentence-transformers"

    def mean(
        self, sums: np.ndarray, safe: np.ndarray, config: PoolingConfig, table_dtype: np.dtype, acc: np.dtype
    ) -> np.ndarray:  # noqa: D102
        return (sums / safe.astype(sums.dtype)).astype(np.float32, copy=False)

    def norm_divisor(self, norms: np.ndarray) -> np.ndarray:  # noqa: D102
        return np.maximum(norms, 1e-12)


#: Pooling arithmetic by name: one entry per reference family.
ARITHMETICS: dict[str, Arithmetic] = {a.name: a for a in (Model2VecArithmetic(), SentenceTransformersArithmetic())}


def _accumulator(table: np.ndarray, weights: np.ndarray | None) -> np.dtype[np.floating]:
    if weights is not None:
        return np.dtype(np.result_type(table.dtype, weights.dtype, np.float32))
    if np.issubdtype(table.dtype, np.integer):
        return np.dtype(np.float64)
    return np.dtype(np.result_type(table.dtype, np.float32))


def _segment_sums(
    table: np.ndarray,
    ids: np.ndarray,
    offsets: np.ndarray,
    mapping: np.ndarray | None,
    weights: np.ndarray | None,
    acc: np.dtype[np.floating],
    gather_table: np.ndarray | None = None,
) -> np.ndarray:
    """Per-text sums of token rows, each text summed in token order (as numpy's ``mean`` does).

    Texts are sorted by length (longest first) and summed position by position: at position ``k``
    the texts still running are a prefix of that order, so one gather + one in-place add serves all
    of them. Every row is read once, memory is bounded by a group of texts, and the sum of every text
    is ``((x0 + x1) + x2) + ...``, bit-identical to the references' sequential reduction.
    """
    n = len(offsets) - 1
    dim = table.shape[1]
    sums = np.zeros((n, dim), dtype=acc)
    lengths = np.diff(offsets)

    source = table if gather_table is None else gather_table

    def rows(chunk: np.ndarray) -> np.ndarray:
        gathered = source[mapping[chunk] if mapping is not None else chunk]
        out = gathered.astype(acc, copy=False)
        if weights is not None:
            out = out * weights[chunk][:, None].astype(acc, copy=False)
        return out

    window = max(256, WINDOW_BYTES // max(1, dim * acc.itemsize))
    for i in np.flatnonzero(lengths > LONG_TEXT_TOKENS):
        # A very long text: sum blocks in order, carrying the running sum into the next block.
        t0, t1 = int(offsets[i]), int(offsets[i + 1])
        carry: np.ndarray | None = None
        for lo in range(t0, t1, window):
            block = rows(ids[lo : min(t1, lo + window)])
            if carry is not None:
                block = np.concatenate([carry[None, :], block])
            carry = np.add.reduce(block, axis=0)
        sums[i] = carry
    short = np.flatnonzero((lengths > 0) & (lengths <= LONG_TEXT_TOKENS))
    order = short[np.argsort(-lengths[short], kind="stable")]
    group = max(64, window // 4)
    for g0 in range(0, len(order), group):
        members = order[g0 : g0 + group]
        starts = offsets[members]
        lens = lengths[members]
        local = np.zeros((len(members), dim), dtype=acc)
        # active[k] = number of texts in this group longer than k (a prefix, lengths descending).
        active = np.searchsorted(-lens, -np.arange(int(lens[0])), side="left")
        for k, m in enumerate(active.tolist()):
            local[:m] += rows(ids[starts[:m] + k])
        sums[members] = local
    return sums


def float64_means(
    table: np.ndarray, ids: np.ndarray, offsets: np.ndarray, mapping: np.ndarray | None, weights: np.ndarray | None
) -> np.ndarray:
    """Per-text means in float64, unnormalised: sums in token order over the count (model2vec's float64 tables).

    Inf / NaN from an overflow are returned as they are (the caller names the input).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        sums = _segment_sums(table, ids, offsets, mapping, weights, np.dtype(np.float64))
        counts = np.diff(offsets)
        means: np.ndarray = sums / np.where(counts == 0, 1, counts)[:, None]
    return means


def overflow(message_index: int) -> FloatingPointError:
    """The error for a text whose vector overflowed (``message_index``: its position in the call)."""
    return FloatingPointError(
        f"the vector of input {message_index} overflowed to Inf/NaN: the table's values are too large to sum "
        "in float32 for a text this long"
    )


def normalize_rows(x: np.ndarray, arithmetic: ArithmeticName, first: int = 0) -> np.ndarray:
    """L2-normalise rows with the reference's epsilon rule (zero rows stay zero).

    Raises:
        FloatingPointError: A row's norm overflows (it would silently become zeros); ``first`` is the index
            of row 0 in the caller's batch, for the message.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is raised below, naming the row
        norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.isfinite(norms).all():
        raise overflow(first + int(np.flatnonzero(~np.isfinite(norms[:, 0]))[0]))
    return x / ARITHMETICS[arithmetic].norm_divisor(norms)


def pool(
    table: np.ndarray,
    ids: np.ndarray,
    offsets: np.ndarray,
    config: PoolingConfig,
    *,
    mapping: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    gather_table: np.ndarray | None = None,
    first: int = 0,
) -> np.ndarray:
    """Pool flat token ids into one float32 vector per text.

    Args:
        table: ``(rows, dim)`` embedding table (float32, float16 or int8; read-only).
        ids: Flat token ids of all texts (int64).
        offsets: ``len(texts) + 1`` boundaries into ``ids``.
        config: The model's numeric semantics.
        mapping: Vocabulary-quantization map from token id to table row, if any.
        weights: Per-token-id weights, if any.
        gather_table: An exact float32 copy of a float16 ``table`` to read rows from (converting rows
            one gather at a time is several times slower); the arithmetic still follows ``table``'s dtype.
        first: The index of the first text in the caller's batch (named by an overflow error).

    Returns:
        ``(len(texts), dim)`` float32 array.

    Raises:
        FloatingPointError: A text's sum, mean or norm overflowed to Inf / NaN.
    """
    n = len(offsets) - 1
    dim = table.shape[1]
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32)
    acc = _accumulator(table, weights)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is raised by _finish, naming the text
        sums = _segment_sums(table, ids, offsets, mapping, weights, acc, gather_table)
    counts = np.diff(offsets)
    if config.denominator == "weight_sum" and weights is not None:
        per_token = weights[ids].astype(np.float64)
        denom = np.bincount(np.repeat(np.arange(n), counts), weights=per_token, minlength=n)
    else:
        denom = counts.astype(np.float64)
    safe = np.where(denom == 0, 1.0, denom)[:, None]
    # Finish block by block: the same row-wise expressions, with temporaries bounded by FINISH_ROWS rows.
    out = sums if sums.dtype == np.float32 else np.empty((n, dim), dtype=np.float32)
    for r0 in range(0, n, FINISH_ROWS):
        r1 = min(n, r0 + FINISH_ROWS)
        out[r0:r1] = _finish(sums[r0:r1], safe[r0:r1], config, table.dtype, acc, first + r0)
    return out


def _finish(
    sums: np.ndarray,
    safe: np.ndarray,
    config: PoolingConfig,
    table_dtype: np.dtype,
    acc: np.dtype[np.floating],
    first: int = 0,
) -> np.ndarray:
    """Mean (and normalisation) of a block of per-text sums, in the reference's arithmetic.

    Raises:
        FloatingPointError: A text's mean or norm overflowed (``first``: the block's first text, for the message).
    """
    arithmetic = ARITHMETICS[config.arithmetic]
    with np.errstate(over="ignore", invalid="ignore"):
        mean = arithmetic.mean(sums, safe, config, table_dtype, acc)
    finite = np.isfinite(mean).all(axis=1)
    if not finite.all():
        raise overflow(first + int(np.flatnonzero(~finite)[0]))
    if config.normalize:
        with np.errstate(over="ignore"):
            m32 = mean.astype(np.float32)
        mean = normalize_rows(m32, config.arithmetic, first).astype(arithmetic.out_dtype(table_dtype))
    return mean.astype(np.float32, copy=False)


def pool_one(
    table: np.ndarray,
    ids: np.ndarray | list[int],
    config: PoolingConfig,
    *,
    mapping: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    gather_table: np.ndarray | None = None,
) -> np.ndarray:
    """Pool the ids of a single text: the same arithmetic as :func:`pool`, with fewer numpy calls.

    This is the short path of ``encode(str)``; ``tests/test_pooling.py`` checks it equals ``pool``.
    """
    dim = table.shape[1]
    n = len(ids)
    if n == 0 or n > LONG_TEXT_TOKENS:
        offsets = np.array([0, n], dtype=np.int64)
        ids = np.asarray(ids, dtype=np.int64)
        return pool(table, ids, offsets, config, mapping=mapping, weights=weights, gather_table=gather_table)[0]
    if mapping is None and weights is None and table.dtype == np.float32:
        # The common case in as few numpy calls as possible. The references divide in float64 and round
        # to float32 (numpy's mean), or normalise in float32; float64 has more than 2 * 24 + 2 bits, so
        # rounding a float64 quotient, sum or square root of float32 operands to float32 gives exactly the
        # float32 operation's result. Hence plain float32 operations and math.sqrt are bit-identical here.
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.add.reduce(table.take(ids, axis=0), axis=0)
            total /= np.float32(n)
            square = float(np.add.reduce(total * total))
        if not (np.isfinite(total).all() and (not config.normalize or math.isfinite(square))):
            raise overflow(0)
        if config.normalize:
            norm = np.float32(math.sqrt(square))
            total /= ARITHMETICS[config.arithmetic].norm_divisor(norm)
        return total
    ids = np.asarray(ids, dtype=np.int64)
    acc = _accumulator(table, weights)
    source = table if gather_table is None else gather_table
    rows = source[mapping[ids] if mapping is not None else ids].astype(acc, copy=False)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is raised by _finish
        if weights is not None:
            rows = rows * weights[ids][:, None].astype(acc, copy=False)
        total = np.add.reduce(rows, axis=0)  # sequential over tokens, as in pool()
    if config.denominator == "weight_sum" and weights is not None:
        # summed in token order in float64, exactly as pool()'s bincount does
        denom = float(np.bincount(np.zeros(n, dtype=np.intp), weights=weights[ids].astype(np.float64))[0]) or 1.0
    else:
        denom = float(n)
    return _finish(total[None, :], np.array([[denom]]), config, table.dtype, acc).reshape(dim)
