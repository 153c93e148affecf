"""numpy versions of sentence-transformers' util functions (same names and semantics, no torch).

Every function accepts what its sentence-transformers counterpart accepts (numpy arrays, nested lists,
lists of arrays, torch tensors) and returns numpy arrays where sentence-transformers returns tensors.
Dtypes follow sentence-transformers: float16 / bfloat16 inputs are computed in float32, float64 inputs
stay float64, and a list of Python floats is read as float32 (as ``torch.tensor`` does).

Bad shapes raise :class:`EmbeddingShapeError`, a ``ValueError`` that is also a ``RuntimeError``
(what torch raises inside sentence-transformers for the same input).

The functions live in ``similarity``, ``search``, ``community``, ``quantization`` and ``ann`` (the FAISS /
usearch index searches, behind the ``faiss`` / ``usearch`` extras); this package face hands them on.
"""

from __future__ import annotations

from staticst.errors import EmbeddingShapeError
from staticst.util.ann import semantic_search_faiss, semantic_search_usearch
from staticst.util.community import community_detection
from staticst.util.quantization import quantize_embeddings
from staticst.util.search import information_retrieval, paraphrase_mining, paraphrase_mining_embeddings, semantic_search
from staticst.util.similarity import (
    cos_sim,
    dot_score,
    euclidean_sim,
    manhattan_sim,
    normalize_embeddings,
    pairwise_angle_sim,
    pairwise_cos_sim,
    pairwise_dot_score,
    pairwise_euclidean_sim,
    pairwise_manhattan_sim,
    pairwise_similarity_fn,
    pytorch_cos_sim,
    similarity_fn,
    truncate_embeddings,
)

__all__ = [
    "EmbeddingShapeError",
    "community_detection",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "information_retrieval",
    "manhattan_sim",
    "normalize_embeddings",
    "pairwise_angle_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "pairwise_similarity_fn",
    "paraphrase_mining",
    "paraphrase_mining_embeddings",
    "pytorch_cos_sim",
    "quantize_embeddings",
    "semantic_search",
    "semantic_search_faiss",
    "semantic_search_usearch",
    "similarity_fn",
    "truncate_embeddings",
]
