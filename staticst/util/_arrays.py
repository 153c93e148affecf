"""Input conversion and validation shared by the util functions (numpy arrays, lists, torch tensors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np

from staticst.errors import EmbeddingShapeError

Embeddings: TypeAlias = Any
"""A numpy array, a (nested) list of numbers or of arrays, or a torch tensor (or a list of tensors)."""

ScoreFunction: TypeAlias = Callable[[Any, Any], Any]
"""``f(queries, corpus) -> (len(queries), len(corpus))`` scores, as a numpy array or a tensor."""


def _is_tensor(a: Any) -> bool:
    """Whether ``a`` looks like a torch tensor (checked without importing torch)."""
    return hasattr(a, "detach") and hasattr(a, "cpu") and hasattr(a, "numpy")


def _tensor_to_numpy(t: Any) -> np.ndarray:
    """A CPU numpy copy of a (possibly sparse, bfloat16 or float8) torch tensor."""
    t = t.detach()
    if getattr(t, "is_sparse", False):
        t = t.to_dense()
    if t.is_floating_point() and str(t.dtype) not in ("torch.float16", "torch.float32", "torch.float64"):
        t = t.float()  # bfloat16 / float8 have no numpy dtype
    return np.asarray(t.cpu().numpy())


def _as_array(a: Embeddings, name: str) -> np.ndarray:
    """Read ``a`` as a numeric numpy array the way sentence-transformers' ``_convert_to_tensor`` does.

    Raises:
        ValueError: ``a`` is ragged, or holds something other than real numbers.
    """
    if _is_tensor(a):
        arr = _tensor_to_numpy(a)
    elif isinstance(a, (list, tuple)):
        if a and all(_is_tensor(x) for x in a):
            parts = [_tensor_to_numpy(x) for x in a]
        elif a and all(isinstance(x, np.ndarray) for x in a):
            parts = list(a)
        else:
            parts = None
        try:
            if parts is not None:
                arr = np.stack(parts)
            else:
                arr = np.asarray(a)
                if arr.dtype == np.float64:
                    arr = arr.astype(np.float32)  # torch.tensor reads Python floats as float32
        except ValueError as err:
            raise ValueError(
                f"{name} is a ragged list ({err}); pass rows of one length, e.g. a 2-D (n, dim) array."
            ) from None
    else:
        arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}; pass float embeddings.")
    return arr


def _upcast(arr: np.ndarray) -> np.ndarray:
    """``arr`` in float32 at least: float16 and integers are upcast, float64 is kept."""
    return arr.astype(np.result_type(arr.dtype, np.float32), copy=False)


def _as_float(a: Embeddings, name: str) -> np.ndarray:
    """:func:`_as_array`, upcast to float32 at least (see :func:`_upcast`)."""
    return _upcast(_as_array(a, name))


def _as_matrix(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` as a 2-D ``(n, dim)`` matrix; a 1-D embedding becomes one row."""
    if arr.ndim == 1:
        return arr[None, :]
    if arr.ndim != 2:
        raise EmbeddingShapeError(
            f"{name} must be one embedding (1-D) or a 2-D (n, dim) matrix, got shape {arr.shape}; "
            "reshape it to (n, dim)."
        )
    return arr


def _check_same_dim(a: np.ndarray, b: np.ndarray) -> None:
    """Raise unless the embedding (last) dimensions of ``a`` and ``b`` agree."""
    if a.shape[-1] != b.shape[-1]:
        raise EmbeddingShapeError(
            f"Embedding dimensions differ: a has {a.shape[-1]} (shape {a.shape}), b has {b.shape[-1]} "
            f"(shape {b.shape}); embed both with the same model and truncate_dim."
        )


def _matrices(a: Embeddings, b: Embeddings) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs of an all-pairs function as float matrices of the same width."""
    x, y = _as_matrix(_as_float(a, "a"), "a"), _as_matrix(_as_float(b, "b"), "b")
    _check_same_dim(x, y)
    return x, y


def _pairs(a: Embeddings, b: Embeddings) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs of a pairwise function: at least 1-D, same width, broadcastable row counts."""
    x, y = _as_float(a, "a"), _as_float(b, "b")
    for name, arr in (("a", x), ("b", y)):
        if arr.ndim == 0:
            raise EmbeddingShapeError(f"{name} must be an embedding (1-D) or a (n, dim) matrix, got a scalar.")
    _check_same_dim(x, y)
    try:
        np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise EmbeddingShapeError(
            f"Pairwise similarity needs as many rows in a as in b, got shapes {x.shape} and {y.shape}; "
            "pass aligned pairs, or use the all-pairs function (e.g. cos_sim) for every combination."
        ) from None
    return x, y


def _check_int(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int, which must be at least ``minimum``.

    Raises:
        TypeError: ``value`` is not an integer.
        ValueError: ``value`` is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}.")
    return int(value)
