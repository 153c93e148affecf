"""Evaluators with sentence-transformers' names and results, without torch.

:class:`EmbeddingSimilarityEvaluator` is sentence-transformers 6.x's evaluator of the same name (Pearson and
Spearman correlations between the similarity of sentence pairs and gold scores, the STSBenchmark metric), for any
model with sentence-transformers' ``encode`` and ``similarity_fn_name``: a :class:`~staticst.StaticSentenceTransformer`
(for example one :func:`staticst.distill` made). It needs SciPy for the correlations (``pip install scipy``; the
``distill`` extra has it through scikit-learn); sentence-transformers' own evaluators import torch.

Example::

    from staticst import StaticSentenceTransformer
    from staticst.evaluation import EmbeddingSimilarityEvaluator

    evaluator = EmbeddingSimilarityEvaluator(sentences1, sentences2, scores, name="sts-test")
    results = evaluator(StaticSentenceTransformer("minilm-static"))
    results[evaluator.primary_metric]  # "sts-test_spearman_cosine"
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from staticst.util.similarity import (
    pairwise_cos_sim,
    pairwise_dot_score,
    pairwise_euclidean_sim,
    pairwise_manhattan_sim,
)

__all__ = ["EmbeddingSimilarityEvaluator"]

SimilarityName = Literal["cosine", "euclidean", "manhattan", "dot"]
Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]

_SIMILARITIES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "cosine": pairwise_cos_sim,
    "manhattan": pairwise_manhattan_sim,
    "euclidean": pairwise_euclidean_sim,
    "dot": pairwise_dot_score,
}
# sentence-transformers' SimilarityFunction values, and "dot_product" (the enum's name for "dot")
_MAIN_NAMES = {
    "cosine": "cosine",
    "euclidean": "euclidean",
    "manhattan": "manhattan",
    "dot": "dot",
    "dot_product": "dot",
}
_PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


class EmbeddingSimilarityEvaluator:
    """Correlation of pair similarities with gold scores, as sentence-transformers' ``EmbeddingSimilarityEvaluator``.

    The same constructor, call, metric names (``pearson_cosine``, ``spearman_cosine``, ..., ``pearson_max`` /
    ``spearman_max`` with several similarity functions, prefixed with ``name + "_"`` when a name is given),
    ``primary_metric`` and CSV file. Unlike sentence-transformers it does not write the metrics into the model's
    card data.

    Args:
        sentences1: First sentence of each pair.
        sentences2: Second sentence of each pair.
        scores: Gold similarity of each pair (any scale: only correlations are computed).
        batch_size: Passed to ``encode``.
        main_similarity: ``"cosine"``, ``"euclidean"``, ``"manhattan"`` or ``"dot"`` (also ``"dot_product"``):
            the similarity whose Spearman correlation is the primary metric; alone computed when
            ``similarity_fn_names`` is not given.
        similarity_fn_names: Similarities to compute (default: ``main_similarity``, else the model's
            ``similarity_fn_name``).
        name: Prefix of the metric names and part of the CSV file's name.
        show_progress_bar: Passed to ``encode``.
        write_csv: Append the results to ``similarity_evaluation[_name][_precision]_results.csv`` in the
            ``output_path`` of a call.
        precision: Quantize the embeddings first, as ``encode(precision=...)`` does (then normalised).
        truncate_dim: Keep the first ``truncate_dim`` dimensions.

    Raises:
        ValueError: The three lists differ in length, or an option is not one of its values.
    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        scores: Sequence[float],
        batch_size: int = 16,
        main_similarity: str | None = None,
        similarity_fn_names: Sequence[SimilarityName] | None = None,
        name: str = "",
        show_progress_bar: bool = False,
        write_csv: bool = True,
        precision: Precision | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        if not len(sentences1) == len(sentences2) == len(scores):
            raise ValueError(
                f"sentences1, sentences2 and scores must have one entry per pair: got {len(sentences1)}, "
                f"{len(sentences2)} and {len(scores)}."
            )
        main = getattr(main_similarity, "value", main_similarity)  # sentence-transformers' SimilarityFunction
        if main is not None and str(main).lower() not in _MAIN_NAMES:
            raise ValueError(f"main_similarity={main_similarity!r} is not one of {sorted(_MAIN_NAMES)}.")
        for fn_name in similarity_fn_names or []:
            if fn_name not in _SIMILARITIES:
                raise ValueError(f"similarity_fn_names has {fn_name!r}: use any of {sorted(_SIMILARITIES)}.")
        if precision is not None and precision not in _PRECISIONS:
            raise ValueError(f"precision={precision!r} is not one of {list(_PRECISIONS)} (or None).")
        self.sentences1 = list(sentences1)
        self.sentences2 = list(sentences2)
        self.scores = list(scores)
        self.batch_size = batch_size
        self.main_similarity: str | None = _MAIN_NAMES[str(main).lower()] if main is not None else None
        self.similarity_fn_names: list[str] = list(similarity_fn_names or [])
        if not self.similarity_fn_names and self.main_similarity is not None:
            self.similarity_fn_names = [self.main_similarity]
        self.name = name
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.precision = precision
        self.truncate_dim = truncate_dim
        self.primary_metric: str | None = None
        self.csv_file = (
            "similarity_evaluation"
            + (f"_{name}" if name else "")
            + (f"_{precision}" if precision else "")
            + "_results.csv"
        )

    @classmethod
    def from_input_examples(cls, examples: Sequence[Any], **kwargs: Any) -> EmbeddingSimilarityEvaluator:
        """Build from examples with ``texts`` (two sentences) and ``label`` (sentence-transformers' ``InputExample``)."""
        return cls(
            [e.texts[0] for e in examples], [e.texts[1] for e in examples], [e.label for e in examples], **kwargs
        )

    @property
    def csv_headers(self) -> list[str]:
        """The CSV columns: epoch, steps, then ``<similarity>_pearson`` and ``<similarity>_spearman`` for each."""
        return ["epoch", "steps"] + [f"{fn}_{m}" for fn in self.similarity_fn_names for m in ("pearson", "spearman")]

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encode both sides, correlate each similarity with the gold scores.

        Args:
            model: A model with sentence-transformers' ``encode`` and ``similarity_fn_name``.
            output_path: Folder of the CSV file (``write_csv``); nothing is written without it.
            epoch: Written to the CSV row.
            steps: Written to the CSV row.

        Returns:
            The metrics, as sentence-transformers names them (``primary_metric`` names the main one).

        Raises:
            ImportError: SciPy is not installed.
        """
        try:
            from scipy.stats import pearsonr, spearmanr
        except ImportError as exc:  # pragma: no cover - scipy comes with the distill extra
            raise ImportError("EmbeddingSimilarityEvaluator needs SciPy: pip install scipy") from exc
        if self.precision in ("int8", "uint8"):  # both sides calibrated together, as sentence-transformers does
            both = self._embed(model, [*self.sentences1, *self.sentences2])
            first, second = both[: len(self.sentences1)], both[len(self.sentences1) :]
        else:
            first, second = self._embed(model, self.sentences1), self._embed(model, self.sentences2)
        if self.precision == "binary":
            first, second = first.astype(np.int16) + 128, second.astype(np.int16) + 128
        if self.precision in ("ubinary", "binary"):
            first = np.unpackbits(first.astype(np.uint8), axis=1)
            second = np.unpackbits(second.astype(np.uint8), axis=1)
        if self.precision in ("int8", "uint8", "ubinary", "binary"):
            first, second = first.astype(np.float32), second.astype(np.float32)
        if not self.similarity_fn_names:
            self.similarity_fn_names = [str(model.similarity_fn_name)]
        metrics: dict[str, float] = {}
        for fn_name in self.similarity_fn_names:
            similarity = _SIMILARITIES[fn_name](first, second)
            metrics[f"pearson_{fn_name}"] = float(pearsonr(self.scores, similarity)[0])
            metrics[f"spearman_{fn_name}"] = float(spearmanr(self.scores, similarity)[0])
        if output_path is not None and self.write_csv:
            self._append_csv(output_path, epoch, steps, metrics)
        if len(self.similarity_fn_names) > 1:
            metrics["pearson_max"] = max(metrics[f"pearson_{fn}"] for fn in self.similarity_fn_names)
            metrics["spearman_max"] = max(metrics[f"spearman_{fn}"] for fn in self.similarity_fn_names)
        if self.main_similarity is not None:
            self.primary_metric = f"spearman_{self.main_similarity}"
        elif len(self.similarity_fn_names) > 1:
            self.primary_metric = "spearman_max"
        else:
            self.primary_metric = f"spearman_{self.similarity_fn_names[0]}"
        if self.name:
            metrics = {f"{self.name}_{key}": value for key, value in metrics.items()}
            if not self.primary_metric.startswith(f"{self.name}_"):
                self.primary_metric = f"{self.name}_{self.primary_metric}"
        return metrics

    def _embed(self, model: Any, sentences: list[str]) -> np.ndarray:
        return np.asarray(
            model.encode(
                sentences,
                batch_size=self.batch_size,
                show_progress_bar=self.show_progress_bar,
                convert_to_numpy=True,
                precision=self.precision or "float32",
                normalize_embeddings=bool(self.precision),
                truncate_dim=self.truncate_dim,
            )
        )

    def _append_csv(self, output_path: str, epoch: int, steps: int, metrics: dict[str, float]) -> None:
        os.makedirs(output_path, exist_ok=True)
        path = os.path.join(output_path, self.csv_file)
        exists = os.path.isfile(path)
        with open(path, newline="", mode="a" if exists else "w", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if not exists:
                writer.writerow(self.csv_headers)
            row = [metrics[f"{m}_{fn}"] for fn in self.similarity_fn_names for m in ("pearson", "spearman")]
            writer.writerow([epoch, steps, *row])

    @property
    def description(self) -> str:
        """``"Semantic Similarity"``, as sentence-transformers."""
        return "Semantic Similarity"

    def get_config_dict(self) -> dict[str, Any]:
        """The options that change the results (``truncate_dim``, ``precision``) when set."""
        return {key: getattr(self, key) for key in ("truncate_dim", "precision") if getattr(self, key) is not None}
