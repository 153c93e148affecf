"""From one transformer vector per token to the static table: PCA, Zipf/SIF weighting, quantization.

model2vec 0.10's post-processing, step for step:

- **PCA** (:func:`apply_pca`): the rows are centred and the covariance's eigenvectors taken (scikit-learn's
  ``PCA(svd_solver="covariance_eigh")``, the computation model2vec writes out with ``numpy.linalg.eigh``);
  ``pca_dims`` an int keeps that many components, a float in (0, 1) the fewest that explain that share of the
  variance, ``"auto"`` all of them (a rotation), ``None`` skips PCA. **Sign convention** (model2vec's): each
  component is oriented so that its largest-magnitude score is positive.
- **Zipf / SIF weights** (:func:`sif_weights`): token ``i`` (in id order, taken as frequency rank ``i + 2``)
  is scaled by ``a / (a + p_i)``, ``p`` the Zipf distribution over the vocabulary, ``a`` the
  ``sif_coefficient``.
- **quantize_to**: ``float16`` (the default), ``float32``, ``float64`` or ``int8`` (symmetric scale), as
  ``StaticModel.from_pretrained(quantize_to=...)``.
"""

from __future__ import annotations

import logging
from typing import Literal, TypeAlias

import numpy as np

from staticst.errors import MissingDependencyError

__all__ = ["PCADims", "apply_pca", "sif_weights", "validate_pca_dims"]

logger = logging.getLogger("staticst.distill")

PCADims: TypeAlias = int | float | Literal["auto"] | None


def validate_pca_dims(pca_dims: object) -> PCADims:
    """``pca_dims`` as given, if it is one model2vec understands.

    Raises:
        ValueError: Not ``None``, ``"auto"``, a positive int, or a float strictly between 0 and 1.
    """
    if pca_dims is None or pca_dims == "auto":
        return pca_dims
    if isinstance(pca_dims, bool) or not isinstance(pca_dims, (int, float, np.integer, np.floating)):
        raise ValueError(
            f"pca_dims={pca_dims!r} is not a number of components: pass an int (e.g. 256), a float in (0, 1) "
            "(the share of variance to keep), 'auto' (rotate, keep every dimension) or None (no PCA)."
        )
    if isinstance(pca_dims, (float, np.floating)):
        if not 0.0 < float(pca_dims) < 1.0:
            raise ValueError(
                f"pca_dims={pca_dims!r}: a float is the share of variance to keep and must be in (0, 1); "
                f"for {int(pca_dims)} components pass the int {int(pca_dims)}."
            )
        return float(pca_dims)
    if int(pca_dims) < 1:
        raise ValueError(f"pca_dims={pca_dims!r} must be at least 1 (or None for no PCA).")
    return int(pca_dims)


def sif_weights(n_tokens: int, sif_coefficient: float | None) -> np.ndarray:
    """model2vec's ``compute_weights``: Zipf-estimated frequencies turned into SIF weights (float64, ones for ``None``)."""
    if sif_coefficient is None:
        return np.ones(n_tokens)
    inv_rank = 1 / (np.arange(2, n_tokens + 2))
    proba = inv_rank / np.sum(inv_rank)
    weights: np.ndarray = sif_coefficient / (sif_coefficient + proba)
    return weights


def _components(pca_dims: int | float, eigenvalues: np.ndarray, n_available: int) -> int:
    if isinstance(pca_dims, float):
        cumulative = np.cumsum(eigenvalues) / eigenvalues.sum()
        return min(int(np.searchsorted(cumulative, pca_dims)) + 1, n_available)
    return int(pca_dims)


def apply_pca(embeddings: np.ndarray, pca_dims: PCADims) -> np.ndarray:
    """model2vec's ``apply_pca`` with scikit-learn's PCA: ``(n, k)`` scores in ``embeddings``' dtype.

    A ``pca_dims`` above the width is clamped to it; one at or above the number of rows skips PCA (both
    logged as warnings, as model2vec does).

    Raises:
        MissingDependencyError: scikit-learn is not installed.
    """
    if pca_dims is None:
        return embeddings
    n_rows, n_features = embeddings.shape
    dims: int | float = n_features if pca_dims == "auto" else pca_dims
    if dims > n_features:
        logger.warning(
            f"PCA dimension ({dims}) is larger than the number of dimensions in the embeddings ({n_features}): "
            "applying PCA without reducing the dimensionality (pca_dims=None skips PCA)."
        )
        dims = n_features
    if dims >= n_rows:
        logger.warning(f"PCA dimension ({dims}) is not below the number of tokens ({n_rows}): not applying PCA.")
        return embeddings
    try:
        from sklearn.decomposition import PCA
    except ImportError as exc:
        raise MissingDependencyError(
            "Distillation's PCA needs scikit-learn, which is not installed: pip install 'staticst[distill]'"
        ) from exc
    centred = embeddings - embeddings.mean(axis=0)
    pca = PCA(svd_solver="covariance_eigh").fit(centred)
    eigenvalues = np.asarray(pca.explained_variance_)
    k = _components(dims, eigenvalues, pca.components_.shape[0])
    scores: np.ndarray = centred @ pca.components_[:k].T.astype(embeddings.dtype)
    # model2vec's sign convention: each component's largest-magnitude score is positive
    largest = np.argmax(np.abs(scores), axis=0)
    scores *= np.sign(scores[largest, np.arange(scores.shape[1])])
    if k < n_features:
        explained = float(eigenvalues[:k].sum() / eigenvalues.sum()) if eigenvalues.sum() > 0 else 1.0
        logger.info(f"PCA: {n_features} -> {k} dimensions, explained variance ratio {explained:.3f}.")
    return scores
