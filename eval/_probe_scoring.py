"""Failure probes, scoring: cosine margins per probe, per-category accuracy and mean margin, and the
similarities of the paper pairs, for one model given as a batch encoder."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from _paper import PaperPair, cosine_pairs
from _probe_data import CATEGORIES, Probe

Encoder = Callable[[list[str]], np.ndarray]
"""Maps a list of texts to a ``(n, dim)`` array of (not necessarily normalised) embeddings."""


@dataclass(frozen=True)
class ProbeScore:
    """The score of one model on one probe."""

    id: str
    category: str
    sim_positive: float
    sim_negative: float
    margin: float
    correct: bool


@dataclass(frozen=True)
class CategorySummary:
    """Accuracy and mean margin of one model over one category (or ``overall``)."""

    n: int
    accuracy: float
    mean_margin: float


def _encode_unique(encode: Encoder, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Encode each distinct text once; returns text -> float64 unit vector."""
    unique = list(dict.fromkeys(texts))
    emb = np.asarray(encode(unique), dtype=np.float64)
    if emb.ndim != 2 or emb.shape[0] != len(unique):
        raise ValueError(
            f"encoder returned shape {emb.shape} for {len(unique)} texts; expected ({len(unique)}, dim)"
        )
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    zero = [unique[i] for i in np.flatnonzero(norms[:, 0] == 0.0)]
    if zero:
        raise ValueError(
            f"the model produced an all-zero embedding for {zero[:3]}; cosine similarity is undefined"
        )
    return dict(zip(unique, emb / norms, strict=True))


def score_probes(encode: Encoder, probes: Sequence[Probe]) -> list[ProbeScore]:
    """Score one model on every probe.

    Args:
        encode: The model's batch encoder.
        probes: The probes to score.

    Returns:
        One :class:`ProbeScore` per probe, in input order.
    """
    vectors = _encode_unique(encode, [t for p in probes for t in (p.anchor, p.positive, p.negative)])
    scores: list[ProbeScore] = []
    for p in probes:
        anchor = vectors[p.anchor]
        sim_pos = float(anchor @ vectors[p.positive])
        sim_neg = float(anchor @ vectors[p.negative])
        margin = sim_pos - sim_neg
        scores.append(ProbeScore(p.id, p.category, sim_pos, sim_neg, margin, margin > 0.0))
    return scores


def summarize(scores: Sequence[ProbeScore]) -> dict[str, CategorySummary]:
    """Per-category and overall accuracy and mean margin.

    Args:
        scores: Per-probe scores of one model.

    Returns:
        A mapping from each category present (in :data:`CATEGORIES` order) and ``"overall"`` to its summary.
    """
    groups: dict[str, list[ProbeScore]] = {c: [s for s in scores if s.category == c] for c in CATEGORIES}
    groups = {c: g for c, g in groups.items() if g}
    groups["overall"] = list(scores)
    return {
        name: CategorySummary(
            n=len(group),
            accuracy=sum(s.correct for s in group) / len(group) if group else math.nan,
            mean_margin=float(np.mean([s.margin for s in group])) if group else math.nan,
        )
        for name, group in groups.items()
    }


def score_pairs(encode: Encoder, pairs: Sequence[PaperPair]) -> list[float]:
    """Cosine similarity of each pair under one model.

    Args:
        encode: The model's batch encoder.
        pairs: The sentence pairs.

    Returns:
        One cosine similarity per pair, in input order.
    """
    return cosine_pairs(encode, pairs)


def evaluate(
    role: str, encode: Encoder, info: dict[str, Any], probes: Sequence[Probe], pairs: Sequence[PaperPair]
) -> dict[str, Any]:
    """Score one model on the probes and pairs and bundle the results as JSON-ready data.

    Args:
        role: ``"static"`` or ``"baseline"``.
        encode: The model's batch encoder.
        info: A description of the model.
        probes: The probes.
        pairs: The paper pairs (may be empty).

    Returns:
        A dict with ``role``, ``info``, ``summary`` (per category), ``probes`` (per probe) and ``pairs``.
    """
    scores = score_probes(encode, probes)
    return {
        "role": role,
        "info": info,
        "summary": {k: asdict(v) for k, v in summarize(scores).items()},
        "probes": [asdict(s) for s in scores],
        "pairs": score_pairs(encode, pairs),
    }


