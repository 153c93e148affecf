"""Search and mining: ``semantic_search``, ``paraphrase_mining`` and ``paraphrase_mining_embeddings``."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

import numpy as np

from staticst.util._arrays import (
    Embeddings,
    ScoreFunction,
    _as_array,
    _as_matrix,
    _check_int,
    _is_tensor,
    _tensor_to_numpy,
    _upcast,
)
from staticst.util.similarity import _normalize, cos_sim, dot_score


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


def information_retrieval(*args: Any, **kwargs: Any) -> list[list[dict[str, int | float]]]:
    """Deprecated alias of :func:`semantic_search` (as in sentence-transformers)."""
    return semantic_search(*args, **kwargs)
