"""``community_detection``: sentence-transformers' fast community detection on numpy."""

from __future__ import annotations

import numpy as np

from staticst.util._arrays import Embeddings, _as_float
from staticst.util.similarity import _normalize

__all__ = ["community_detection"]


def community_detection(
    embeddings: Embeddings,
    threshold: float = 0.75,
    min_community_size: int = 10,
    batch_size: int = 1024,
    show_progress_bar: bool = False,
) -> list[list[int]]:
    """Groups of embeddings whose cosine similarity to a central point is at least ``threshold``.

    The CPU algorithm of sentence-transformers: for every point with at least ``min_community_size``
    neighbours at ``threshold``, its neighbours by decreasing similarity; then communities largest first,
    each keeping only points no larger community claimed, and only if still ``min_community_size`` large.

    Args:
        embeddings: ``(n, dim)`` embeddings (or one ``(dim,)`` embedding).
        threshold: Minimum cosine similarity to the central point.
        min_community_size: Smallest community returned.
        batch_size: Rows of the similarity matrix computed at once.
        show_progress_bar: Show a progress bar over the batches.

    Returns:
        Communities as lists of indices, largest first; each starts with its central point. Points of equal
        similarity to a centre are listed by index (torch leaves their order unspecified).
    """
    if len(embeddings) == 0:
        return []
    emb = _as_float(embeddings, "embeddings")
    if emb.ndim == 1:
        emb = emb[None, :]
    n = len(emb)
    if n < min_community_size:
        return []
    limit = np.float32(threshold)  # ST compares against a float32 tensor
    emb = _normalize(emb)
    sort_max_size = min(max(2 * min_community_size, 50), n)
    extracted: list[tuple[int, np.ndarray]] = []
    starts = range(0, n, batch_size)
    if show_progress_bar:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="Finding clusters")
    for start in starts:
        scores = emb[start : start + batch_size] @ emb.T
        kth = -np.partition(-scores, min_community_size - 1, axis=1)[:, min_community_size - 1]
        for i in np.flatnonzero(kth >= limit):
            row = scores[i]
            order = np.argsort(-row, kind="stable")
            while row[order[sort_max_size - 1]] >= limit and sort_max_size < n:
                sort_max_size = min(2 * sort_max_size, n)
            top = order[:sort_max_size]
            extracted.append((start + int(i), top[row[top] >= limit].astype(np.uint32)))
    extracted.sort(key=lambda x: len(x[1]), reverse=True)
    unique: list[list[int]] = []
    used = np.zeros(n, dtype=bool)
    for center, community in extracted:
        if used[center]:
            continue
        free = community[~used[community]]
        if len(free) >= min_community_size:
            members = [center] + free[free != center].tolist()
            unique.append(members)
            used[members] = True
    return sorted(unique, key=len, reverse=True)
