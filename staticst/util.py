"""numpy versions of sentence-transformers' util functions (same names and semantics, no torch)."""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
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


def _to_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a torch tensor, without importing torch
        a = a.detach().cpu().numpy()
    elif isinstance(a, list) and a and hasattr(a[0], "detach"):
        a = np.stack([x.detach().cpu().numpy() for x in a])
    arr = np.asarray(a)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float32)
    return arr


def normalize_embeddings(embeddings: Any) -> np.ndarray:
    """L2-normalise rows (zero rows stay zero, eps 1e-12 as ``torch.nn.functional.normalize``)."""
    a = _to_numpy(embeddings)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def cos_sim(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity matrix ``(len(a), len(b))``."""
    return (normalize_embeddings(a) @ normalize_embeddings(b).T).astype(np.float32, copy=False)


def dot_score(a: Any, b: Any) -> np.ndarray:
    """Dot-product matrix ``(len(a), len(b))``."""
    return (_to_numpy(a) @ _to_numpy(b).T).astype(np.float32, copy=False)


def pairwise_cos_sim(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity of ``a[i]`` and ``b[i]``."""
    return np.sum(normalize_embeddings(a) * normalize_embeddings(b), axis=-1).astype(np.float32, copy=False)


def pairwise_dot_score(a: Any, b: Any) -> np.ndarray:
    """Dot product of ``a[i]`` and ``b[i]``."""
    return np.sum(_to_numpy(a) * _to_numpy(b), axis=-1).astype(np.float32, copy=False)


def manhattan_sim(a: Any, b: Any) -> np.ndarray:
    """Negative L1 distance matrix."""
    x, y = _to_numpy(a), _to_numpy(b)
    return -np.abs(x[:, None, :] - y[None, :, :]).sum(axis=-1).astype(np.float32, copy=False)


def pairwise_manhattan_sim(a: Any, b: Any) -> np.ndarray:
    """Negative L1 distance of ``a[i]`` and ``b[i]``."""
    return -np.abs(_to_numpy(a) - _to_numpy(b)).sum(axis=-1).astype(np.float32, copy=False)


def euclidean_sim(a: Any, b: Any) -> np.ndarray:
    """Negative L2 distance matrix."""
    x, y = _to_numpy(a), _to_numpy(b)
    return -np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(axis=-1)).astype(np.float32, copy=False)


def pairwise_euclidean_sim(a: Any, b: Any) -> np.ndarray:
    """Negative L2 distance of ``a[i]`` and ``b[i]``."""
    return -np.sqrt(((_to_numpy(a) - _to_numpy(b)) ** 2).sum(axis=-1)).astype(np.float32, copy=False)


_FNS: dict[str, tuple[Callable[[Any, Any], np.ndarray], Callable[[Any, Any], np.ndarray]]] = {
    "cosine": (cos_sim, pairwise_cos_sim),
    "dot": (dot_score, pairwise_dot_score),
    "euclidean": (euclidean_sim, pairwise_euclidean_sim),
    "manhattan": (manhattan_sim, pairwise_manhattan_sim),
}


def _lookup(name: str, index: int) -> Callable[[Any, Any], np.ndarray]:
    if name not in _FNS:
        raise ValueError(f"Unknown similarity function {name!r}; use one of {sorted(_FNS)}.")
    return _FNS[name][index]


def similarity_fn(name: str) -> Callable[[Any, Any], np.ndarray]:
    """The all-pairs similarity function called ``name`` (cosine, dot, euclidean, manhattan)."""
    return _lookup(name, 0)


def pairwise_similarity_fn(name: str) -> Callable[[Any, Any], np.ndarray]:
    """The pairwise similarity function called ``name``."""
    return _lookup(name, 1)


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500000,
    top_k: int = 10,
    score_function: Callable[[Any, Any], np.ndarray] = cos_sim,
) -> list[list[dict[str, int | float]]]:
    """Top-k corpus hits per query, chunked over queries and corpus (ST's semantics and output)."""
    queries, corpus = _to_numpy(query_embeddings), _to_numpy(corpus_embeddings)
    results: list[list[dict[str, int | float]]] = [[] for _ in range(len(queries))]
    for q0 in range(0, len(queries), query_chunk_size):
        for c0 in range(0, len(corpus), corpus_chunk_size):
            scores = np.asarray(score_function(queries[q0 : q0 + query_chunk_size], corpus[c0 : c0 + corpus_chunk_size]))
            k = min(top_k, scores.shape[1])
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            for qi in range(scores.shape[0]):
                for ci in top[qi]:
                    results[q0 + qi].append({"corpus_id": int(c0 + ci), "score": float(scores[qi, ci])})
    return [sorted(hits, key=lambda h: h["score"], reverse=True)[:top_k] for hits in results]


def paraphrase_mining_embeddings(
    embeddings: Any,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: Callable[[Any, Any], np.ndarray] = cos_sim,
) -> list[list[float | int]]:
    """``[score, i, j]`` for the most similar pairs ``i < j`` (ST's semantics)."""
    emb = _to_numpy(embeddings)
    top_k += 1
    pairs: list[tuple[float, int, int]] = []
    for c0 in range(0, len(emb), corpus_chunk_size):
        for q0 in range(0, len(emb), query_chunk_size):
            scores = np.asarray(score_function(emb[q0 : q0 + query_chunk_size], emb[c0 : c0 + corpus_chunk_size]))
            k = min(top_k, scores.shape[1])
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            for qi in range(scores.shape[0]):
                for ci in top[qi]:
                    i, j = q0 + qi, c0 + int(ci)
                    if i != j:
                        entry = (float(scores[qi, ci]), i, j)
                        if len(pairs) < max_pairs:
                            heapq.heappush(pairs, entry)
                        else:
                            heapq.heappushpop(pairs, entry)
    seen: set[tuple[int, int]] = set()
    out: list[list[float | int]] = []
    for score, i, j in sorted(pairs, key=lambda x: x[0], reverse=True):
        a, b = sorted((i, j))
        if a != b and (a, b) not in seen:
            seen.add((a, b))
            out.append([score, a, b])
    return out


def paraphrase_mining(
    model: Any,
    sentences: list[str],
    show_progress_bar: bool = False,
    batch_size: int = 32,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: Callable[[Any, Any], np.ndarray] = cos_sim,
) -> list[list[float | int]]:
    """Encode ``sentences`` with ``model`` and return :func:`paraphrase_mining_embeddings`."""
    embeddings = model.encode(sentences, show_progress_bar=show_progress_bar, batch_size=batch_size)
    return paraphrase_mining_embeddings(embeddings, query_chunk_size, corpus_chunk_size, max_pairs, top_k, score_function)


def quantize_embeddings(
    embeddings: Any,
    precision: str,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize to ``float32``, ``int8``, ``uint8``, ``binary`` or ``ubinary`` exactly as sentence-transformers does.

    Raises:
        ValueError: Unknown precision, or int8/uint8 ranges that would come from a single embedding.
    """
    if hasattr(embeddings, "detach"):
        embeddings = embeddings.detach().cpu().numpy()
    emb = np.asarray(embeddings)
    if emb.dtype in (np.uint8, np.int8):
        raise ValueError("Embeddings to quantize must be float rather than int8 or uint8.")
    if emb.ndim == 2 and emb.shape[0] == 0:
        dim = emb.shape[1]
        if precision.endswith("int8"):
            return np.zeros((0, dim), dtype=np.int8 if precision == "int8" else np.uint8)
        if precision.endswith("binary"):
            return np.zeros((0, (dim + 7) // 8), dtype=np.int8 if precision == "binary" else np.uint8)
    if precision == "float32":
        return emb.astype(np.float32)
    if precision in ("int8", "uint8"):
        if ranges is None:
            calib = calibration_embeddings
            if calib is None:
                if emb.ndim == 1 or emb.shape[0] == 1:
                    raise ValueError(
                        f"Cannot compute {precision} quantization ranges from a single embedding. Call "
                        "`quantize_embeddings` with `ranges` or `calibration_embeddings` from a representative set."
                    )
                calib = emb
            ranges = np.vstack((np.min(calib, axis=0), np.max(calib, axis=0)))
        ranges = np.asarray(ranges).astype(np.float32, copy=False)
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        q = np.clip(np.floor((emb - starts) / steps), 0, 255)
        return q.astype(np.uint8) if precision == "uint8" else (q - 128).astype(np.int8)
    if precision == "binary":
        return (np.packbits(emb > 0, axis=-1) - 128).astype(np.int8)
    if precision == "ubinary":
        return np.packbits(emb > 0, axis=-1)
    raise ValueError(f"Precision {precision!r} is not supported")
