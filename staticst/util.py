"""numpy versions of sentence-transformers' util functions (same names and semantics, no torch).

Every function accepts what its sentence-transformers counterpart accepts (numpy arrays, nested lists,
lists of arrays, torch tensors) and returns numpy arrays where sentence-transformers returns tensors.
Dtypes follow sentence-transformers: float16 / bfloat16 inputs are computed in float32, float64 inputs
stay float64, and a list of Python floats is read as float32 (as ``torch.tensor`` does).

Bad shapes raise :class:`EmbeddingShapeError`, a ``ValueError`` that is also a ``RuntimeError``
(what torch raises inside sentence-transformers for the same input).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias, overload

import numpy as np

from staticst.errors import EmbeddingShapeError

__all__ = [
    "EmbeddingShapeError",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "manhattan_sim",
    "normalize_embeddings",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "pairwise_similarity_fn",
    "paraphrase_mining",
    "paraphrase_mining_embeddings",
    "quantize_embeddings",
    "semantic_search",
    "similarity_fn",
]

logger = logging.getLogger(__name__)

Embeddings: TypeAlias = Any
"""A numpy array, a (nested) list of numbers or of arrays, or a torch tensor (or a list of tensors)."""

ScoreFunction: TypeAlias = Callable[[Any, Any], Any]
"""``f(queries, corpus) -> (len(queries), len(corpus))`` scores, as a numpy array or a tensor."""

_PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")

# Upper bound on the elements of one (rows, corpus, dim) difference block in euclidean/manhattan_sim.
_DIFF_BLOCK_ELEMENTS = 1 << 22


# ---------------------------------------------------------------------------------------------------------
# input conversion and validation


def _is_tensor(a: Any) -> bool:
    """Whether ``a`` looks like a torch tensor (checked without importing torch)."""
    return hasattr(a, "detach") and hasattr(a, "cpu") and hasattr(a, "numpy")


def _tensor_to_numpy(t: Any) -> np.ndarray:
    """A CPU numpy copy of a (possibly sparse, bfloat16 or float8) torch tensor."""
    t = t.detach()
    if getattr(t, "is_sparse", False):
        t = t.to_dense()
    if t.is_floating_point() and str(t.dtype) not in ("torch.float16", "torch.float32", "torch.float64"):
        t = t.float()  # bfloat16 / float8 have no numpy dtype
    return np.asarray(t.cpu().numpy())


def _as_array(a: Embeddings, name: str) -> np.ndarray:
    """Read ``a`` as a numeric numpy array the way sentence-transformers' ``_convert_to_tensor`` does.

    Raises:
        ValueError: ``a`` is ragged, or holds something other than real numbers.
    """
    if _is_tensor(a):
        arr = _tensor_to_numpy(a)
    elif isinstance(a, (list, tuple)):
        if a and all(_is_tensor(x) for x in a):
            parts = [_tensor_to_numpy(x) for x in a]
        elif a and all(isinstance(x, np.ndarray) for x in a):
            parts = list(a)
        else:
            parts = None
        try:
            if parts is not None:
                arr = np.stack(parts)
            else:
                arr = np.asarray(a)
                if arr.dtype == np.float64:
                    arr = arr.astype(np.float32)  # torch.tensor reads Python floats as float32
        except ValueError as err:
            raise ValueError(
                f"{name} is a ragged list ({err}); pass rows of one length, e.g. a 2-D (n, dim) array."
            ) from None
    else:
        arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}; pass float embeddings.")
    return arr


def _upcast(arr: np.ndarray) -> np.ndarray:
    """``arr`` in float32 at least: float16 and integers are upcast, float64 is kept."""
    return arr.astype(np.result_type(arr.dtype, np.float32), copy=False)


def _as_float(a: Embeddings, name: str) -> np.ndarray:
    """:func:`_as_array`, upcast to float32 at least (see :func:`_upcast`)."""
    return _upcast(_as_array(a, name))


def _as_matrix(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` as a 2-D ``(n, dim)`` matrix; a 1-D embedding becomes one row."""
    if arr.ndim == 1:
        return arr[None, :]
    if arr.ndim != 2:
        raise EmbeddingShapeError(
            f"{name} must be one embedding (1-D) or a 2-D (n, dim) matrix, got shape {arr.shape}; "
            "reshape it to (n, dim)."
        )
    return arr


def _check_same_dim(a: np.ndarray, b: np.ndarray) -> None:
    """Raise unless the embedding (last) dimensions of ``a`` and ``b`` agree."""
    if a.shape[-1] != b.shape[-1]:
        raise EmbeddingShapeError(
            f"Embedding dimensions differ: a has {a.shape[-1]} (shape {a.shape}), b has {b.shape[-1]} "
            f"(shape {b.shape}); embed both with the same model and truncate_dim."
        )


def _matrices(a: Embeddings, b: Embeddings) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs of an all-pairs function as float matrices of the same width."""
    x, y = _as_matrix(_as_float(a, "a"), "a"), _as_matrix(_as_float(b, "b"), "b")
    _check_same_dim(x, y)
    return x, y


def _pairs(a: Embeddings, b: Embeddings) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs of a pairwise function: at least 1-D, same width, broadcastable row counts."""
    x, y = _as_float(a, "a"), _as_float(b, "b")
    for name, arr in (("a", x), ("b", y)):
        if arr.ndim == 0:
            raise EmbeddingShapeError(f"{name} must be an embedding (1-D) or a (n, dim) matrix, got a scalar.")
    _check_same_dim(x, y)
    try:
        np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise EmbeddingShapeError(
            f"Pairwise similarity needs as many rows in a as in b, got shapes {x.shape} and {y.shape}; "
            "pass aligned pairs, or use the all-pairs function (e.g. cos_sim) for every combination."
        ) from None
    return x, y


def _check_int(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int, which must be at least ``minimum``.

    Raises:
        TypeError: ``value`` is not an integer.
        ValueError: ``value`` is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}.")
    return int(value)


# ---------------------------------------------------------------------------------------------------------
# similarity functions


def _normalize(x: np.ndarray) -> np.ndarray:
    """L2-normalise along the last axis as ``torch.nn.functional.normalize`` does (norms clamped at 1e-12)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def normalize_embeddings(embeddings: Embeddings) -> np.ndarray:
    """Scale every embedding (along the last axis) to unit length; zero embeddings stay zero.

    Args:
        embeddings: One embedding ``(dim,)``, a matrix ``(n, dim)`` or any ``(..., dim)`` array.

    Returns:
        The normalised embeddings, same shape and float dtype as the input (integers give float32).

    Raises:
        EmbeddingShapeError: ``embeddings`` is a scalar.
    """
    arr = _as_array(embeddings, "embeddings")
    if arr.ndim == 0:
        raise EmbeddingShapeError("embeddings must be an embedding (1-D) or a (n, dim) matrix, got a scalar.")
    out_dtype = arr.dtype if arr.dtype.kind == "f" else np.dtype(np.float32)
    return _normalize(_upcast(arr)).astype(out_dtype, copy=False)


def cos_sim(a: Embeddings, b: Embeddings) -> np.ndarray:
    """Cosine similarity of every row of ``a`` with every row of ``b``.

    Args:
        a: ``(n, dim)`` embeddings, or one ``(dim,)`` embedding (read as one row).
        b: ``(m, dim)`` embeddings, or one ``(dim,)`` embedding.

    Returns:
        ``(n, m)`` matrix with ``res[i, j] = cos(a[i], b[j])``; 0 where either vector is zero.

    Raises:
        EmbeddingShapeError: An input is not 1-D / 2-D, or the dimensions differ.
    """
    x, y = _matrices(a, b)
    return _normalize(x) @ _normalize(y).T


def dot_score(a: Embeddings, b: Embeddings) -> np.ndarray:
    """Dot product of every row of ``a`` with every row of ``b``.

    Args:
        a: ``(n, dim)`` embeddings, or one ``(dim,)`` embedding (read as one row).
        b: ``(m, dim)`` embeddings, or one ``(dim,)`` embedding.

    Returns:
        ``(n, m)`` matrix with ``res[i, j] = a[i] · b[j]``.

    Raises:
        EmbeddingShapeError: An input is not 1-D / 2-D, or the dimensions differ.
    """
    x, y = _matrices(a, b)
    return x @ y.T


def pairwise_cos_sim(a: Embeddings, b: Embeddings) -> np.ndarray:
    """Cosine similarity of ``a[i]`` with ``b[i]``.

    Args:
        a: ``(n, dim)`` embeddings (or ``(dim,)``, which gives a 0-d result).
        b: Embeddings broadcastable against ``a`` (same ``n``, or one row).

    Returns:
        ``(n,)`` vector with ``res[i] = cos(a[i], b[i])``.

    Raises:
        EmbeddingShapeError: The dimensions differ, or the row counts do not broadcast.
    """
    x, y = _pairs(a, b)
    return np.asarray(np.sum(_normalize(x) * _normalize(y), axis=-1))


def pairwise_dot_score(a: Embeddings, b: Embeddings) -> np.ndarray:
    """Dot product of ``a[i]`` with ``b[i]``.

    Args:
        a: ``(n, dim)`` embeddings (or ``(dim,)``, which gives a 0-d result).
        b: Embeddings broadcastable against ``a`` (same ``n``, or one row).

    Returns:
        ``(n,)`` vector with ``res[i] = a[i] · b[i]``.

    Raises:
        EmbeddingShapeError: The dimensions differ, or the row counts do not broadcast.
    """
    x, y = _pairs(a, b)
    return np.asarray(np.sum(x * y, axis=-1))


def _distance_blocks(x: np.ndarray, y: np.ndarray, reduce: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``reduce(x[i] - y[j])`` for all ``i, j``, over row blocks so the difference tensor stays bounded."""
    out = np.empty((len(x), len(y)), dtype=np.result_type(x, y))
    step = max(1, _DIFF_BLOCK_ELEMENTS // max(1, len(y) * x.shape[1]))
    for start in range(0, len(x), step):
        out[start : start + step] = reduce(x[start : start + step, None, :] - y[None, :, :])
    return out


def manhattan_sim(a: Embeddings, b: Embeddings) -> np.ndarray:
    """Negative L1 distance of every row of ``a`` to every row of ``b``.

    Args:
        a: ``(n, dim)`` embeddings, or one ``(dim,)`` embedding (read as one row).
        b: ``(m, dim)`` embeddings, or one ``(dim,)`` embedding.

    Returns:
        ``(n, m)`` matrix with ``res[i, j] = -sum(|a[i] - b[j]|)``.

    Raises:
        EmbeddingShapeError: An input is not 1-D / 2-D, or the dimensions differ.
    """
    x, y = _matrices(a, b)
    return -_distance_blocks(x, y, lambda d: np.abs(d, out=d).sum(axis=-1))


def pairwise_manhattan_sim(a: Embeddings, b: Embeddings) -> np.ndarray:
    """Negative L1 distance of ``a[i]`` to ``b[i]``.

    Args:
        a: ``(n, dim)`` embeddings (or ``(dim,)``, which gives a 0-d result).
        b: Embeddings broadcastable against ``a`` (same ``n``, or one row).

    Returns:
        ``(n,)`` vector with ``res[i] = -sum(|a[i] - b[i]|)``.

    Raises:
        EmbeddingShapeError: The dimensions differ, or the row counts do not broadcast.
    """
    x, y = _pairs(a, b)
    return np.asarray(-np.abs(x - y).sum(axis=-1))


def euclidean_sim(a: Embeddings, b: Embeddings) -> np.ndarray:
    """Negative L2 distance of every row of ``a`` to every row of ``b`` (computed exactly, not via a Gram matrix).

    Args:
        a: ``(n, dim)`` embeddings, or one ``(dim,)`` embedding (read as one row).
        b: ``(m, dim)`` embeddings, or one ``(dim,)`` embedding.

    Returns:
        ``(n, m)`` matrix with ``res[i, j] = -||a[i] - b[j]||``.

    Raises:
        EmbeddingShapeError: An input is not 1-D / 2-D, or the dimensions differ.
    """
    x, y = _matrices(a, b)
    return -_distance_blocks(x, y, lambda d: np.sqrt(np.einsum("ijk,ijk->ij", d, d)))


def pairwise_euclidean_sim(a: Embeddings, b: Embeddings) -> np.ndarray:
    """Negative L2 distance of ``a[i]`` to ``b[i]``.

    Args:
        a: ``(n, dim)`` embeddings (or ``(dim,)``, which gives a 0-d result).
        b: Embeddings broadcastable against ``a`` (same ``n``, or one row).

    Returns:
        ``(n,)`` vector with ``res[i] = -||a[i] - b[i]||``.

    Raises:
        EmbeddingShapeError: The dimensions differ, or the row counts do not broadcast.
    """
    x, y = _pairs(a, b)
    return np.asarray(-np.linalg.norm(x - y, axis=-1))


_FNS: dict[str, tuple[Callable[[Embeddings, Embeddings], np.ndarray], Callable[[Embeddings, Embeddings], np.ndarray]]] = {
    "cosine": (cos_sim, pairwise_cos_sim),
    "dot": (dot_score, pairwise_dot_score),
    "euclidean": (euclidean_sim, pairwise_euclidean_sim),
    "manhattan": (manhattan_sim, pairwise_manhattan_sim),
}


def _lookup(name: object, index: int) -> Callable[[Embeddings, Embeddings], np.ndarray]:
    """Entry ``index`` (0 all-pairs, 1 pairwise) of the similarity called ``name`` (a str or an enum)."""
    key = getattr(name, "value", name)
    if key not in _FNS:
        raise ValueError(f"Unknown similarity function {key!r}; use one of {list(_FNS)}.")
    return _FNS[key][index]


def similarity_fn(name: object) -> Callable[[Embeddings, Embeddings], np.ndarray]:
    """The all-pairs similarity function called ``name``, as ``SimilarityFunction.to_similarity_fn``.

    Args:
        name: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"`` (or a ``SimilarityFunction``).

    Returns:
        :func:`cos_sim`, :func:`dot_score`, :func:`euclidean_sim` or :func:`manhattan_sim`.

    Raises:
        ValueError: Any other name (the multi-vector MaxSim family included).
    """
    return _lookup(name, 0)


def pairwise_similarity_fn(name: object) -> Callable[[Embeddings, Embeddings], np.ndarray]:
    """The pairwise similarity function called ``name``, as ``SimilarityFunction.to_similarity_pairwise_fn``.

    Args:
        name: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"`` (or a ``SimilarityFunction``).

    Returns:
        :func:`pairwise_cos_sim`, :func:`pairwise_dot_score`, :func:`pairwise_euclidean_sim` or
        :func:`pairwise_manhattan_sim`.

    Raises:
        ValueError: Any other name.
    """
    return _lookup(name, 1)


# ---------------------------------------------------------------------------------------------------------
# search and mining


def _top_k_columns(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best scores of every row and their columns, by descending score, ties by lower column."""
    n, m = scores.shape
    if k == 0:
        return np.empty((n, 0), scores.dtype), np.empty((n, 0), np.intp)
    if k >= m:
        cols = np.broadcast_to(np.arange(m), (n, m))
    else:
        cols = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(scores, cols, axis=1).min(axis=1, keepdims=True)
        # argpartition picks arbitrarily among scores tied with the k-th best; take the lowest columns.
        for row in np.flatnonzero((scores >= kth).sum(axis=1) > k):
            cols[row] = np.argsort(-scores[row], kind="stable")[:k]
    values = np.take_along_axis(scores, cols, axis=1)
    order = np.lexsort((cols, -values), axis=-1)
    return np.take_along_axis(values, order, axis=1), np.take_along_axis(cols, order, axis=1)


def _score_chunk(score_function: ScoreFunction, queries: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    """``score_function(queries, corpus)`` as a float numpy matrix of the expected shape."""
    raw = score_function(queries, corpus)
    scores = _tensor_to_numpy(raw) if _is_tensor(raw) else np.asarray(raw)
    if scores.shape != (len(queries), len(corpus)):
        raise ValueError(
            f"score_function returned shape {scores.shape} for {len(queries)} queries and {len(corpus)} corpus "
            f"rows; it must return a ({len(queries)}, {len(corpus)}) matrix, like cos_sim."
        )
    return scores if scores.dtype.kind == "f" else scores.astype(np.float64)


def _chunked_top_k(
    queries: np.ndarray,
    corpus: np.ndarray,
    query_chunk_size: int,
    corpus_chunk_size: int,
    k: int,
    score_function: ScoreFunction,
) -> Iterator[tuple[int, list[int], list[float]]]:
    """Yield ``(query index, corpus ids, scores)`` for every query, in order: its ``k`` best corpus rows.

    Chunk sizes change memory use only (and the last bit of a score, as BLAS blocks differently): a query's best
    rows are kept across corpus chunks, by descending score with ties broken by the lower corpus id.
    """
    if score_function is cos_sim:  # normalise once instead of once per chunk pair; same scores
        queries, corpus, score_function = _normalize(_upcast(queries)), _normalize(_upcast(corpus)), dot_score
    for q0 in range(0, len(queries), query_chunk_size):
        chunk = queries[q0 : q0 + query_chunk_size]
        best_scores: np.ndarray = np.empty((len(chunk), 0))
        best_ids: np.ndarray = np.empty((len(chunk), 0), np.intp)
        for c0 in range(0, len(corpus), corpus_chunk_size):
            scores, cols = _top_k_columns(_score_chunk(score_function, chunk, corpus[c0 : c0 + corpus_chunk_size]), k)
            if best_ids.shape[1] == 0:
                best_scores, best_ids = scores, cols + c0
                continue
            merged_scores = np.concatenate([best_scores, scores], axis=1)
            merged_ids = np.concatenate([best_ids, cols + c0], axis=1)
            keep = np.lexsort((merged_ids, -merged_scores), axis=-1)[:, :k]
            best_scores = np.take_along_axis(merged_scores, keep, axis=1)
            best_ids = np.take_along_axis(merged_ids, keep, axis=1)
        for row, (row_ids, row_scores) in enumerate(zip(best_ids.tolist(), best_scores.tolist(), strict=True)):
            yield q0 + row, row_ids, row_scores


def semantic_search(
    query_embeddings: Embeddings,
    corpus_embeddings: Embeddings,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500000,
    top_k: int = 10,
    score_function: ScoreFunction = cos_sim,
) -> list[list[dict[str, int | float]]]:
    """The ``top_k`` most similar corpus entries of every query (sentence-transformers' semantics and output).

    Args:
        query_embeddings: ``(n, dim)`` query embeddings, or one ``(dim,)`` query.
        corpus_embeddings: ``(m, dim)`` corpus embeddings.
        query_chunk_size: Queries scored at once (memory, not results); at least 1.
        corpus_chunk_size: Corpus rows scored at once (memory, not results); at least 1.
        top_k: Hits per query (fewer when the corpus is smaller); at least 0.
        score_function: ``f(queries, corpus)`` score matrix; :func:`cos_sim` by default. It receives numpy
            arrays and may return a numpy array or a tensor.

    Returns:
        One list per query of ``{"corpus_id": int, "score": float}`` dicts, by decreasing score; equal
        scores are ordered (and cut at ``top_k``) by increasing ``corpus_id``.

    Raises:
        EmbeddingShapeError: An input is not 1-D / 2-D (or the dimensions differ, for the built-in scores).
        TypeError: A size is not an int.
        ValueError: A chunk size below 1 or a negative ``top_k``.
    """
    queries = _as_matrix(_as_array(query_embeddings, "query_embeddings"), "query_embeddings")
    corpus = _as_matrix(_as_array(corpus_embeddings, "corpus_embeddings"), "corpus_embeddings")
    query_chunk_size = _check_int(query_chunk_size, "query_chunk_size", 1)
    corpus_chunk_size = _check_int(corpus_chunk_size, "corpus_chunk_size", 1)
    top_k = _check_int(top_k, "top_k", 0)
    results: list[list[dict[str, int | float]]] = [[] for _ in range(len(queries))]
    for i, ids, scores in _chunked_top_k(queries, corpus, query_chunk_size, corpus_chunk_size, top_k, score_function):
        results[i] = [{"corpus_id": cid, "score": score} for cid, score in zip(ids, scores, strict=True)]
    return results


def paraphrase_mining_embeddings(
    embeddings: Embeddings,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: ScoreFunction = cos_sim,
) -> list[list[float | int]]:
    """The most similar pairs among ``embeddings`` (sentence-transformers' semantics).

    Each embedding contributes its ``top_k`` nearest others; the ``max_pairs`` best distinct pairs are kept.

    Args:
        embeddings: ``(n, dim)`` embeddings.
        query_chunk_size: Rows scored at once as queries (memory, not results); at least 1.
        corpus_chunk_size: Rows scored at once as corpus (memory, not results); at least 1.
        max_pairs: Most pairs returned; at least 0.
        top_k: Neighbours taken per embedding; at least 0.
        score_function: ``f(a, b)`` score matrix, assumed symmetric (each pair keeps the score it was first
            found with); :func:`cos_sim` by default.

    Returns:
        ``[score, i, j]`` triplets with ``i < j``, by decreasing score, equal scores by increasing ``(i, j)``.

    Raises:
        EmbeddingShapeError: ``embeddings`` is not 1-D / 2-D.
        TypeError: A size is not an int.
        ValueError: A chunk size below 1, or a negative ``max_pairs`` / ``top_k``.
    """
    emb = _as_matrix(_as_array(embeddings, "embeddings"), "embeddings")
    query_chunk_size = _check_int(query_chunk_size, "query_chunk_size", 1)
    corpus_chunk_size = _check_int(corpus_chunk_size, "corpus_chunk_size", 1)
    max_pairs = _check_int(max_pairs, "max_pairs", 0)
    top_k = _check_int(top_k, "top_k", 0)

    pairs: list[tuple[float, int, int]] = []  # min-heap of (score, i, j), i < j, at most max_pairs long
    queued: set[tuple[int, int]] = set()  # the (i, j) of every pair in `pairs`
    min_score = float("-inf")  # the best score evicted so far: nothing at or below it can get in again
    for i, ids, scores in _chunked_top_k(emb, emb, query_chunk_size, corpus_chunk_size, top_k + 1, score_function):
        neighbours = [(j, score) for j, score in zip(ids, scores, strict=True) if j != i][:top_k]
        for j, score in neighbours:
            pair = (i, j) if i < j else (j, i)
            if score <= min_score or pair in queued:
                continue
            queued.add(pair)
            if len(pairs) < max_pairs:
                heapq.heappush(pairs, (score, *pair))
            else:
                evicted = heapq.heappushpop(pairs, (score, *pair))
                queued.discard(evicted[1:])
                min_score = evicted[0]
    return [[score, i, j] for score, i, j in sorted(pairs, key=lambda p: (-p[0], p[1], p[2]))]


def paraphrase_mining(
    model: Any,
    sentences: list[str],
    show_progress_bar: bool = False,
    batch_size: int = 32,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: ScoreFunction = cos_sim,
    truncate_dim: int | None = None,
    prompt_name: str | None = None,
    prompt: str | None = None,
) -> list[list[float | int]]:
    """Encode ``sentences`` with ``model`` and return their most similar pairs.

    Args:
        model: A :class:`~staticst.StaticSentenceTransformer` (or anything with a compatible ``encode``).
        sentences: The texts to compare with each other.
        show_progress_bar: Show a progress bar while encoding.
        batch_size: Encoding batch size.
        query_chunk_size: As in :func:`paraphrase_mining_embeddings`.
        corpus_chunk_size: As in :func:`paraphrase_mining_embeddings`.
        max_pairs: As in :func:`paraphrase_mining_embeddings`.
        top_k: As in :func:`paraphrase_mining_embeddings`.
        score_function: As in :func:`paraphrase_mining_embeddings`.
        truncate_dim: Dimension to truncate the embeddings to; ``None`` uses the model's setting.
        prompt_name: Name of one of the model's prompts to prepend to every sentence.
        prompt: Text to prepend to every sentence; wins over ``prompt_name``.

    Returns:
        ``[score, i, j]`` triplets with ``i < j``, by decreasing score.
    """
    embeddings = model.encode(
        sentences,
        show_progress_bar=show_progress_bar,
        batch_size=batch_size,
        truncate_dim=truncate_dim,
        prompt_name=prompt_name,
        prompt=prompt,
    )
    return paraphrase_mining_embeddings(
        embeddings,
        query_chunk_size=query_chunk_size,
        corpus_chunk_size=corpus_chunk_size,
        max_pairs=max_pairs,
        top_k=top_k,
        score_function=score_function,
    )


# ---------------------------------------------------------------------------------------------------------
# quantization


def _quantization_ranges(embeddings: np.ndarray, precision: str, calibration_embeddings: Embeddings | None) -> np.ndarray:
    """Per-dimension ``[min, max]`` rows, from ``calibration_embeddings`` or else from ``embeddings`` itself."""
    dim = embeddings.shape[-1]
    if calibration_embeddings is not None:
        calib = _as_array(calibration_embeddings, "calibration_embeddings")
        if calib.ndim != 2 or calib.shape[0] == 0 or calib.shape[1] != dim:
            raise EmbeddingShapeError(
                f"calibration_embeddings must be a non-empty (n, {dim}) matrix to match the embeddings, "
                f"got shape {calib.shape}."
            )
    else:
        if embeddings.ndim == 1 or embeddings.shape[0] == 1:
            raise ValueError(
                f"Cannot compute {precision} quantization ranges from a single embedding. Call "
                "`quantize_embeddings` with `ranges` or `calibration_embeddings` from a representative set of "
                "embeddings instead."
            )
        if embeddings.ndim != 2:
            raise EmbeddingShapeError(
                f"Cannot compute {precision} quantization ranges from embeddings of shape {embeddings.shape}; "
                "pass `ranges` of shape (2, dim), or a list of 2-D matrices."
            )
        if embeddings.shape[0] < 100:
            logger.warning(
                f"Computing {precision} quantization buckets based on {len(embeddings)} embeddings. {precision} "
                "quantization is more stable with `ranges` calculated from more embeddings or a "
                "`calibration_embeddings` that can be used to calculate the buckets."
            )
        calib = embeddings
    return np.vstack((np.min(calib, axis=0), np.max(calib, axis=0)))


@overload
def quantize_embeddings(
    embeddings: np.ndarray,
    precision: str,
    ranges: np.ndarray | None = None,
    calibration_embeddings: Embeddings | None = None,
) -> np.ndarray: ...


@overload
def quantize_embeddings(
    embeddings: Embeddings,
    precision: str,
    ranges: np.ndarray | None = None,
    calibration_embeddings: Embeddings | None = None,
) -> np.ndarray | list[np.ndarray]: ...


def quantize_embeddings(
    embeddings: Embeddings,
    precision: str,
    ranges: np.ndarray | None = None,
    calibration_embeddings: Embeddings | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Quantize to ``float32``, ``int8``, ``uint8``, ``binary`` or ``ubinary`` exactly as sentence-transformers does.

    Args:
        embeddings: Float embeddings ``(n, dim)`` or ``(dim,)``; or a list of 2-D ``(tokens, dim)`` matrices,
            which share one set of ranges.
        precision: ``"float32"``, ``"int8"``, ``"uint8"``, ``"binary"`` or ``"ubinary"``.
        ranges: ``(2, dim)`` per-dimension minimum and maximum for int8 / uint8; computed from
            ``calibration_embeddings`` (else from ``embeddings``) when ``None``.
        calibration_embeddings: ``(n, dim)`` embeddings to compute int8 / uint8 ranges from.

    Returns:
        The quantized embeddings (binary precisions pack 8 dimensions per byte); a list for a list of matrices.

    Raises:
        ValueError: Unknown precision, integer input, or int8 / uint8 ranges that would come from a single
            embedding.
        EmbeddingShapeError: ``ranges`` or ``calibration_embeddings`` do not match the embedding dimension.
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"Precision {precision!r} is not supported; use one of {list(_PRECISIONS)}.")
    if isinstance(embeddings, (list, tuple)):
        if not embeddings:
            return []
        items = [_tensor_to_numpy(e) if _is_tensor(e) else e for e in embeddings]
        if isinstance(items[0], np.ndarray) and items[0].ndim == 2:  # multi-vector: one matrix per document
            if precision.endswith("int8") and ranges is None:  # calibrate once so all documents share ranges
                stacked = np.concatenate(items, axis=0)
                if len(stacked if calibration_embeddings is None else calibration_embeddings):
                    ranges = _quantization_ranges(stacked, precision, calibration_embeddings)
            return [quantize_embeddings(np.asarray(m), precision, ranges, calibration_embeddings) for m in items]
        embeddings = items
    emb = _tensor_to_numpy(embeddings) if _is_tensor(embeddings) else np.asarray(embeddings)
    if emb.dtype in (np.int8, np.uint8):
        raise ValueError(
            f"Embeddings to quantize must be float rather than int8 or uint8, got {emb.dtype}; they look "
            "quantized already."
        )
    if emb.dtype.kind not in "biuf":
        raise ValueError(f"Embeddings to quantize must be float, got dtype {emb.dtype}.")
    if emb.ndim == 0:
        raise EmbeddingShapeError("Embeddings to quantize must be 1-D (dim,) or 2-D (n, dim), got a scalar.")

    if emb.ndim == 2 and emb.shape[0] == 0:  # e.g. a fully-masked multi-vector document
        dim = emb.shape[1]
        width = dim if precision.endswith("int8") else (dim + 7) // 8
        if precision != "float32":
            return np.zeros((0, width), dtype=np.uint8 if precision.startswith("u") else np.int8)
    if precision == "float32":
        return emb.astype(np.float32)
    if precision in ("int8", "uint8"):
        if ranges is None:
            ranges = _quantization_ranges(emb, precision, calibration_embeddings)
        ranges = _as_array(ranges, "ranges").astype(np.float32, copy=False)
        if ranges.shape != (2, emb.shape[-1]):
            raise EmbeddingShapeError(
                f"ranges must have shape (2, {emb.shape[-1]}) (per-dimension min and max rows), got {ranges.shape}."
            )
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        q = np.clip(np.floor((emb - starts) / steps), 0, 255)
        return q.astype(np.uint8) if precision == "uint8" else (q - 128).astype(np.int8)
    packed = np.packbits(emb > 0, axis=-1)
    return (packed - 128).astype(np.int8) if precision == "binary" else packed
