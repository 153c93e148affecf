"""``quantize_embeddings``: int8 / uint8 / binary / ubinary, as sentence-transformers quantizes."""

from __future__ import annotations

import logging
from typing import overload

import numpy as np

from staticst.errors import EmbeddingShapeError
from staticst.util._arrays import Embeddings, _as_array, _is_tensor, _tensor_to_numpy

logger = logging.getLogger("staticst.util")

_PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


def _quantization_ranges(
    embeddings: np.ndarray, precision: str, calibration_embeddings: Embeddings | None
) -> np.ndarray:
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
