"""Similarity functions: ``cos_sim``, ``dot_score``, euclidean / manhattan and their pairwise forms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from staticst.errors import EmbeddingShapeError
from staticst.util._arrays import Embeddings, _as_array, _as_float, _matrices, _pairs, _upcast

# Upper bound on the elements of one (rows, corpus, dim) difference block in euclidean/manhattan_sim.
_DIFF_BLOCK_ELEMENTS = 1 << 22


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


_FNS: dict[
    str, tuple[Callable[[Embeddings, Embeddings], np.ndarray], Callable[[Embeddings, Embeddings], np.ndarray]]
] = {
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


def pytorch_cos_sim(a: Embeddings, b: Embeddings) -> np.ndarray:
    """Alias of :func:`cos_sim` (sentence-transformers' older name).

    Args:
        a: ``(n, dim)`` embeddings, or one ``(dim,)`` embedding.
        b: ``(m, dim)`` embeddings, or one ``(dim,)`` embedding.

    Returns:
        ``(n, m)`` cosine similarity matrix.
    """
    return cos_sim(a, b)


def pairwise_angle_sim(x: Embeddings, y: Embeddings) -> np.ndarray:
    """Absolute AnglE similarity ``|cos(x[i], y[i]) + sin(x[i], y[i])|`` after L2 normalisation (as ST computes it).

    Dimensions ``j`` and ``j + dim / 2`` are paired for the sine term; an odd dimension is padded with a zero.

    Args:
        x: ``(n, dim)`` embeddings.
        y: ``(n, dim)`` embeddings.

    Returns:
        ``(n,)`` vector of angle similarities.

    Raises:
        EmbeddingShapeError: The inputs are not 2-D matrices of one shape.
    """
    a = _as_float(x, "x")
    b = _as_float(y, "y")
    if a.ndim != 2 or b.ndim != 2 or a.shape != b.shape:
        raise EmbeddingShapeError(f"x and y must be (n, dim) matrices of one shape, got {a.shape} and {b.shape}.")
    if a.shape[1] % 2:
        a = np.pad(a, ((0, 0), (0, 1)))
        b = np.pad(b, ((0, 0), (0, 1)))
    na, nb = _normalize(a), _normalize(b)
    half = na.shape[1] // 2
    cosines = np.sum(na * nb, axis=1)
    sines = np.sum(na[:, half:] * nb[:, :half] - na[:, :half] * nb[:, half:], axis=1)
    return np.abs(cosines + sines)


def truncate_embeddings(embeddings: Any, truncate_dim: int | None) -> Any:
    """The first ``truncate_dim`` dimensions of every embedding (``None``: all), for numpy arrays or tensors alike.

    Args:
        embeddings: ``(..., dim)`` embeddings.
        truncate_dim: Dimensions to keep, or ``None``.

    Returns:
        A view of ``embeddings`` cut to ``truncate_dim`` dimensions.
    """
    return embeddings[..., :truncate_dim]
