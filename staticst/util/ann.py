"""``semantic_search_faiss`` and ``semantic_search_usearch``: sentence-transformers' index searches, torch-free.

Both follow sentence-transformers 6.2 step by step (index choice, query quantisation, oversampling and
rescoring with the float queries, padding slots dropped). They need the optional libraries:
``pip install staticst[faiss]`` (``faiss-cpu``) or ``staticst[usearch]``.
"""

from __future__ import annotations

import importlib
import logging
import time
from typing import Any, Literal

import numpy as np

from staticst.errors import MissingDependencyError
from staticst.util.quantization import _quantization_ranges, quantize_embeddings

__all__ = ["semantic_search_faiss", "semantic_search_usearch"]

logger = logging.getLogger("staticst.util")

_RESCORE_UNQUANTIZED = (
    "Rescoring is enabled but the corpus is not quantized. Either pass `rescore=False` or "
    'quantize the corpus embeddings with `quantize_embeddings(embeddings, precision="...") `'
    'and pass `corpus_precision="..."` to `{}`.'
)
_RESCORE_QUANTIZED_QUERY = (
    "Rescoring is enabled but the query embeddings are quantized. Either pass `rescore=False` or don't quantize "
    "the query embeddings."
)


def _optional(module: str, extra: str) -> Any:
    """Import an optional search library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed; it is needed for this search. Install it: pip install staticst[{extra}]."
        ) from exc


def _dequantize(embeddings: np.ndarray, precision: str, ranges: np.ndarray) -> np.ndarray:
    """Scalar-quantized candidates back in the coordinates of the float query (ST's ``_dequantize_embeddings``)."""
    ranges = ranges.astype(np.float32, copy=False)
    steps = (ranges[1] - ranges[0]) / 255
    steps = np.where(steps == 0, 1, steps)
    values = embeddings.astype(np.float64)
    if precision == "int8":
        values += 128
    return values * steps + ranges[0]


def _check_corpus(
    corpus_embeddings: Any, corpus_index: Any, corpus_precision: str, allowed: tuple[str, ...], lib: str
) -> None:
    if corpus_embeddings is not None and corpus_index is not None:
        raise ValueError("Only corpus_embeddings or corpus_index should be used, not both.")
    if corpus_embeddings is None and corpus_index is None:
        raise ValueError("Either corpus_embeddings or corpus_index should be used.")
    if corpus_precision not in allowed:
        raise ValueError(f"corpus_precision must be one of {list(allowed)} for {lib}, got {corpus_precision!r}.")


def _prepare_queries(
    query_embeddings: np.ndarray,
    quantized_corpus: bool,
    corpus_precision: str,
    scalar: str,
    top_k: int,
    ranges: np.ndarray | None,
    calibration_embeddings: np.ndarray | None,
    rescore: bool,
    rescore_multiplier: int,
    name: str,
) -> tuple[np.ndarray, np.ndarray | None, int, np.ndarray | None]:
    """``(queries in the corpus precision, float queries to rescore with or None, k to search, ranges)``."""
    rescore_embeddings = None
    k = top_k
    if query_embeddings.dtype not in (np.uint8, np.int8):
        if rescore:
            if quantized_corpus:
                rescore_embeddings = query_embeddings
                k *= rescore_multiplier
            else:
                logger.warning(_RESCORE_UNQUANTIZED.format(name))
        if rescore_embeddings is not None and corpus_precision == scalar and ranges is None:
            ranges = _quantization_ranges(query_embeddings, corpus_precision, calibration_embeddings)
        query_embeddings = np.asarray(
            quantize_embeddings(
                query_embeddings,
                precision=corpus_precision,
                ranges=ranges,
                calibration_embeddings=calibration_embeddings,
            )
        )
    elif rescore:
        logger.warning(_RESCORE_QUANTIZED_QUERY)
    return query_embeddings, rescore_embeddings, k, ranges


def _rescored(
    rescore_embeddings: np.ndarray, candidates: np.ndarray, precision: str, scalar: str, ranges: Any, dim: int
) -> np.ndarray:
    """Float-query scores of the candidate rows ``(queries, k, width)`` (binary rows unpacked first)."""
    if precision in ("ubinary", "binary"):
        candidates = np.unpackbits(candidates.astype(np.uint8), axis=-1)[..., :dim]
    candidates = candidates.astype(int)
    if precision == scalar:
        candidates = _dequantize(candidates, precision, ranges)
    return np.einsum("ij,ikj->ik", rescore_embeddings, candidates).astype(np.float64, copy=False)


def semantic_search_faiss(
    query_embeddings: np.ndarray,
    corpus_embeddings: np.ndarray | None = None,
    corpus_index: Any = None,
    corpus_precision: Literal["float32", "uint8", "ubinary"] = "float32",
    top_k: int = 10,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
    rescore: bool = True,
    rescore_multiplier: int = 2,
    exact: bool = True,
    output_index: bool = False,
) -> tuple[Any, ...]:
    """Semantic search with a FAISS index, as sentence-transformers 6.2 does it (needs ``faiss-cpu``).

    Args:
        query_embeddings: ``(n, dim)`` queries, ideally float (so the results can be rescored).
        corpus_embeddings: ``(m, dim)`` corpus, float32 or quantized to ``corpus_precision``.
        corpus_index: A FAISS index of the corpus instead of ``corpus_embeddings``.
        corpus_precision: ``"float32"``, ``"uint8"`` or ``"ubinary"``.
        top_k: Results per query.
        ranges: ``(2, dim)`` uint8 quantisation ranges of the corpus.
        calibration_embeddings: Embeddings to compute ``ranges`` from.
        rescore: Rescore the oversampled candidates of a quantized corpus with the float queries.
        rescore_multiplier: Oversampling factor when rescoring.
        exact: Exact (flat) index, else HNSW.
        output_index: Also return the index.

    Returns:
        ``(results, seconds)`` or ``(results, seconds, index)``; ``results[q]`` is a list of
        ``{"corpus_id": int, "score": float}`` by decreasing score.

    Raises:
        ValueError: Both or neither of ``corpus_embeddings`` / ``corpus_index``, or an unknown precision.
        MissingDependencyError: faiss is not installed.
    """
    faiss = _optional("faiss", "faiss")
    _check_corpus(corpus_embeddings, corpus_index, corpus_precision, ("float32", "uint8", "ubinary"), "faiss")
    if corpus_index is None:
        assert corpus_embeddings is not None
        dim = corpus_embeddings.shape[1]
        if corpus_precision in ("float32", "uint8"):
            corpus_index = faiss.IndexFlatIP(dim) if exact else faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
        else:
            corpus_index = faiss.IndexBinaryFlat(dim * 8) if exact else faiss.IndexBinaryHNSW(dim * 8, 16)
        corpus_index.add(corpus_embeddings)
    queries, rescore_embeddings, k, ranges = _prepare_queries(
        query_embeddings, corpus_precision != "float32", corpus_precision, "uint8", top_k, ranges,
        calibration_embeddings, rescore, rescore_multiplier, "semantic_search_faiss",
    )  # fmt: skip
    start = time.time()
    scores, indices = corpus_index.search(queries, k)
    if rescore_embeddings is not None:
        width = corpus_index.d // 8 if corpus_precision == "ubinary" else corpus_index.d
        zero = np.zeros(width, dtype=np.uint8 if corpus_precision == "ubinary" else np.float32)
        candidates = np.array(
            [[corpus_index.reconstruct(idx.item()) if idx != -1 else zero for idx in row] for row in indices]
        )
        rescored = _rescored(
            rescore_embeddings, candidates, corpus_precision, "uint8", ranges, rescore_embeddings.shape[-1]
        )
        rescored[indices == -1] = -np.inf
        order = np.argsort(-rescored)[:, :top_k]
        rows = np.arange(len(queries))[:, None]
        indices, scores = indices[rows, order], rescored[rows, order]
    seconds = time.time() - start
    results = [
        [{"corpus_id": int(c), "score": float(s)} for s, c in zip(scores[q], indices[q], strict=True) if c != -1]
        for q in range(len(queries))
    ]
    return (results, seconds, corpus_index) if output_index else (results, seconds)


def semantic_search_usearch(
    query_embeddings: np.ndarray,
    corpus_embeddings: np.ndarray | None = None,
    corpus_index: Any = None,
    corpus_precision: Literal["float32", "int8", "ubinary", "binary"] = "float32",
    top_k: int = 10,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
    rescore: bool = True,
    rescore_multiplier: int = 2,
    exact: bool = True,
    output_index: bool = False,
) -> tuple[Any, ...]:
    """Semantic search with a usearch index, as sentence-transformers 6.2 does it (needs ``usearch``).

    Args:
        query_embeddings: ``(n, dim)`` queries, ideally float (so the results can be rescored).
        corpus_embeddings: ``(m, dim)`` corpus, float32 or quantized to ``corpus_precision``.
        corpus_index: A usearch index of the corpus instead of ``corpus_embeddings``.
        corpus_precision: ``"float32"``, ``"int8"``, ``"ubinary"`` or ``"binary"``.
        top_k: Results per query.
        ranges: ``(2, dim)`` int8 quantisation ranges of the corpus.
        calibration_embeddings: Embeddings to compute ``ranges`` from.
        rescore: Rescore the oversampled candidates of a quantized corpus with the float queries.
        rescore_multiplier: Oversampling factor when rescoring.
        exact: Exact search.
        output_index: Also return the index.

    Returns:
        ``(results, seconds)`` or ``(results, seconds, index)``, as :func:`semantic_search_faiss`.

    Raises:
        ValueError: Both or neither of ``corpus_embeddings`` / ``corpus_index``, or an unknown precision.
        MissingDependencyError: usearch is not installed.
    """
    index_module = _optional("usearch.index", "usearch")
    compiled = _optional("usearch.compiled", "usearch")
    _check_corpus(
        corpus_embeddings, corpus_index, corpus_precision, ("float32", "int8", "ubinary", "binary"), "usearch"
    )
    if corpus_index is None:
        assert corpus_embeddings is not None
        dim = corpus_embeddings.shape[1]
        if corpus_precision == "float32":
            corpus_index = index_module.Index(ndim=dim, metric="cos", dtype="f32")
        elif corpus_precision == "int8":
            corpus_index = index_module.Index(ndim=dim, metric="ip", dtype="i8")
        else:
            corpus_index = index_module.Index(ndim=dim * 8, metric="hamming", dtype="b1")
            if corpus_precision == "binary":  # a b1 index reads raw bytes: undo quantize_embeddings' -128
                corpus_embeddings = corpus_embeddings.view(np.uint8) ^ 0x80
        corpus_index.add(np.arange(len(corpus_embeddings)), corpus_embeddings)
    queries, rescore_embeddings, k, ranges = _prepare_queries(
        query_embeddings, corpus_index.dtype != compiled.ScalarKind.F32, corpus_precision, "int8", top_k, ranges,
        calibration_embeddings, rescore, rescore_multiplier, "semantic_search_usearch",
    )  # fmt: skip
    start = time.time()
    if corpus_precision == "binary":
        queries = queries.view(np.uint8) ^ 0x80
    matches = corpus_index.search(queries, count=k, exact=exact)
    scores, indices = np.atleast_2d(matches.distances), np.atleast_2d(matches.keys)
    counts = np.reshape(np.asarray(getattr(matches, "counts", indices.shape[1])), (-1, 1))
    valid = np.arange(indices.shape[1]) < counts
    if rescore_embeddings is not None and valid.any():
        safe = np.where(valid, indices, indices[valid][0])
        candidates = np.array([corpus_index.get(row) for row in safe])
        rescored = _rescored(
            rescore_embeddings, candidates, corpus_precision, "int8", ranges, rescore_embeddings.shape[-1]
        )
        rescored[~valid] = -np.inf
        rows = np.arange(len(queries))[:, None]
        order = np.argsort(-rescored)[:, :top_k]
        indices, scores, valid = indices[rows, order], rescored[rows, order], valid[rows, order]
    seconds = time.time() - start
    results = [
        [
            {"corpus_id": int(c), "score": float(s)}
            for s, c, ok in zip(scores[q], indices[q], valid[q], strict=True)
            if ok
        ]
        for q in range(len(queries))
    ]
    return (results, seconds, corpus_index) if output_index else (results, seconds)
