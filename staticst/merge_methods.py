"""Merge methods on embedding tables, in numpy: the arithmetic of mergekit's methods that sentence-transformers' ``merge`` uses.

sentence-transformers 6.3's ``SentenceTransformer.merge`` hands every floating-point tensor of the models to
mergekit (``mergekit.merge_methods.merge_state_dicts``); a static model has one, the ``(vocab, dim)`` table.
This module does the same arithmetic without torch for the deterministic methods that apply to one table, each
described once as data (:data:`METHODS`): its input contract, its parameters (name, scope, default) and its
function. mergekit's randomised methods (DARE, DELLA) and the rest are refused by name (see :func:`get`).

Arithmetic follows mergekit 0.1.5: inputs converted to ``dtype`` first (``float32`` unless given), each method
working in float32 (float64 for float64 inputs), the result cast to ``out_dtype`` when given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["METHODS", "MergeMethod", "Parameter", "get", "merge_tables", "numpy_dtype"]

#: Dtype names sentence-transformers' ``merge`` accepts for ``dtype`` / ``out_dtype`` (bfloat16 has no numpy type).
_DTYPES = {"float16": np.float16, "float32": np.float32, "float64": np.float64}
_FLOAT32 = np.dtype(np.float32)
#: Elements per step of the linear merge (bounded scratch memory).
_STEP = 1 << 20


@dataclass(frozen=True)
class Parameter:
    """One parameter of a merge method, as mergekit declares it.

    Attributes:
        name: The key in ``parameters``.
        scope: ``"shared"`` (one value), ``"input"`` (one per input) or ``"non_base"`` (one per input that is not
            the base, in input order).
        default: Used when the caller does not give it.
        kind: The value's type (``float`` or ``bool``).
    """

    name: str
    scope: str
    default: Any
    kind: type = float


@dataclass(frozen=True)
class MergeMethod:
    """A merge method: input contract, parameters and arithmetic.

    Attributes:
        name: mergekit's name for it.
        base: ``"required"`` or ``"ignored"`` (a ``base_model`` is refused).
        parameters: What it takes.
        merge: ``(tables, base_index, values) -> table``; ``values`` maps each parameter to a float, a bool or a
            list (per input / per non-base input).
        max_inputs: At most this many inputs (the base included), or ``None``.
    """

    name: str
    base: str
    parameters: tuple[Parameter, ...]
    merge: Callable[[list[np.ndarray], int | None, dict[str, Any]], np.ndarray]
    max_inputs: int | None = None


def _work_dtype(table: np.ndarray) -> type[np.floating[Any]]:
    return np.float64 if table.dtype == np.float64 else np.float32


def _linear(tables: list[np.ndarray], base: int | None, values: dict[str, Any]) -> np.ndarray:
    first = tables[0]
    dtype = _work_dtype(first)
    weights = np.asarray(values["weight"], dtype=dtype)
    result = np.zeros(first.shape, dtype=dtype)
    flat = result.reshape(-1)
    for table, coefficient in zip(tables, weights, strict=True):
        # torch's addcmul_ (result += table * coefficient) is a fused multiply-add: the product of two float32
        # is exact in float64, so one float64 add rounded to float32 is the same, in bounded steps
        for lo in range(0, flat.size, _STEP):
            part = table.reshape(-1)[lo : lo + _STEP]
            if dtype == np.float64:
                flat[lo : lo + _STEP] += part * coefficient
            else:
                fused = flat[lo : lo + _STEP].astype(np.float64) + part.astype(np.float64) * np.float64(coefficient)
                flat[lo : lo + _STEP] = fused.astype(np.float32)
    if values["normalize"]:
        result /= weights.sum(dtype=dtype)
    return result.astype(first.dtype)


def _slerp(tables: list[np.ndarray], base: int | None, values: dict[str, Any]) -> np.ndarray:
    assert base is not None
    v0, v1 = tables[base], tables[1 - base]
    dtype = _work_dtype(v0)
    a, b = v0.reshape(-1).astype(dtype), v1.reshape(-1).astype(dtype)
    t = dtype(values["t"])
    eps, dot_threshold = 1e-8, 0.9995
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    norm_a = norm_a if norm_a > eps else dtype(1)
    norm_b = norm_b if norm_b > eps else dtype(1)
    dot = np.clip(np.dot(a / norm_a, b / norm_b), -1, 1)
    if abs(dot) > dot_threshold:  # (anti)collinear: linear interpolation
        coef_a, coef_b = 1 - t, t
    else:
        theta = np.arccos(dot)
        coef_a, coef_b = np.sin((1 - t) * theta) / np.sin(theta), np.sin(t * theta) / np.sin(theta)
    return (dtype(coef_a) * a + dtype(coef_b) * b).astype(v0.dtype).reshape(v0.shape)


def _magnitude(delta: np.ndarray, density: float, rescale: bool) -> np.ndarray:
    """Keep the ``density`` share of largest-magnitude entries (at least one), as mergekit's ``magnitude``.

    With ``rescale``, the kept entries are scaled back to the delta's L1 norm.
    """
    if density >= 1:
        return delta
    if density <= 0 or delta.size == 0:
        return np.zeros_like(delta)
    k = max(1, int(density * delta.size))
    flat = np.abs(delta).reshape(-1).astype(np.float32)
    keep = np.argsort(-flat, kind="stable")[:k]  # torch's CPU sort is stable: equal magnitudes kept by position
    mask = np.zeros(delta.size, dtype=delta.dtype)
    mask[keep] = 1
    masked = delta * mask.reshape(delta.shape)
    if not rescale:
        return masked
    before, after = np.abs(delta).sum(), np.abs(masked).sum()
    if before < 1e-7 or after < 1e-7:
        return masked
    return masked * (before / after)


def _task_arithmetic(
    consensus: bool, sparsify: bool
) -> Callable[[list[np.ndarray], int | None, dict[str, Any]], np.ndarray]:
    """The generalised task arithmetic of mergekit: deltas from the base, optionally sparsified (TIES) and sign-elected."""

    def merge(tables: list[np.ndarray], base_index: int | None, values: dict[str, Any]) -> np.ndarray:
        assert base_index is not None
        base = tables[base_index]
        others = [t for i, t in enumerate(tables) if i != base_index]
        if not others:
            return base
        deltas = np.empty((len(others), *base.shape), dtype=base.dtype)
        for i, table in enumerate(others):
            delta = table - base
            deltas[i] = _magnitude(delta, float(values["density"][i]), values["rescale"]) if sparsify else delta
        weights = np.asarray(values["weight"], dtype=base.dtype).reshape(-1, *([1] * base.ndim))
        deltas *= weights
        if consensus:
            sign = np.sign(deltas)
            majority = np.where(deltas.sum(axis=0) >= 0, 1, -1).astype(base.dtype)
            mask = (sign == majority).astype(base.dtype)
            mixed = (deltas * mask).sum(axis=0)
            divisor = (weights * mask).sum(axis=0)
            divisor[divisor == 0] = 1
        else:
            mixed = deltas.sum(axis=0)
            divisor = weights.sum(axis=0)
            divisor[np.abs(divisor) < 1e-8] = 1
        if values["normalize"]:
            mixed /= divisor
        if values["lambda"] != 1:
            mixed *= base.dtype.type(values["lambda"])
        return (base + mixed).astype(base.dtype)

    return merge


def _task_parameters(normalize: bool) -> tuple[Parameter, ...]:
    return (
        Parameter("int8_mask", "shared", False, bool),  # the sign mask's dtype in mergekit: no effect on values
        Parameter("normalize", "shared", normalize, bool),
        Parameter("rescale", "shared", False, bool),
        Parameter("lambda", "shared", 1.0),
        Parameter("weight", "non_base", 1.0),
        Parameter("density", "non_base", 1.0),
    )


#: The methods staticst merges, by mergekit's name.
METHODS: dict[str, MergeMethod] = {
    m.name: m
    for m in (
        MergeMethod(
            "linear",
            "ignored",
            (Parameter("weight", "input", 1.0), Parameter("normalize", "shared", True, bool)),
            _linear,
        ),
        MergeMethod("slerp", "required", (Parameter("t", "shared", 0.5),), _slerp, max_inputs=2),
        MergeMethod(
            "task_arithmetic", "required", _task_parameters(False), _task_arithmetic(consensus=False, sparsify=False)
        ),
        MergeMethod("ties", "required", _task_parameters(True), _task_arithmetic(consensus=True, sparsify=True)),
    )
}

#: mergekit methods sentence-transformers' ``merge`` accepts that staticst does not run (randomised or not ported).
NOT_PORTED = (
    "arcee_fusion", "breadcrumbs", "breadcrumbs_ties", "dare_linear", "dare_ties", "della", "della_linear",
    "karcher", "model_stock", "multislerp", "nearswap", "nuslerp", "ram", "ramplus_tl", "sce",
)  # fmt: skip


def get(name: str) -> MergeMethod:
    """The merge method called ``name``.

    Raises:
        ValueError: An unknown name, or a mergekit method staticst does not run (the message names the ones it
            does and where the others are: ``sentence_transformers.SentenceTransformer.merge`` with mergekit).
    """
    method = METHODS.get(name)
    if method is not None:
        return method
    supported = ", ".join(sorted(METHODS))
    if name in NOT_PORTED:
        raise ValueError(
            f"merge method {name!r} is not available in staticst (it runs {supported}, without torch); "
            "sentence_transformers.SentenceTransformer.merge runs it with mergekit and torch."
        )
    raise ValueError(f"unknown merge method {name!r}; staticst runs {supported}.")


def numpy_dtype(value: Any, name: str) -> np.dtype[Any] | None:
    """``dtype`` / ``out_dtype`` as sentence-transformers accepts them (a name or a torch dtype) as a numpy dtype.

    Raises:
        ValueError: Anything but ``None``, float16, float32 or float64 (bfloat16 has no numpy type).
    """
    if value is None:
        return None
    text = str(value).removeprefix("torch.")
    if text in _DTYPES:
        return np.dtype(_DTYPES[text])
    if text == "bfloat16":
        raise ValueError(f"{name}=bfloat16 has no numpy type in staticst; use float32 (the default) or float16.")
    raise ValueError(f"{name} must be None, float16, bfloat16, float32, or float64, got {value!r}.")


def _bind(method: MergeMethod, parameters: Mapping[str, Any], n_inputs: int, base: int | None) -> dict[str, Any]:
    """Each parameter's value per mergekit's rules.

    A scalar broadcasts, a sequence is in input order, a mapping is keyed by input index; ``non_base`` values
    cover the inputs other than the base.
    """
    names = {p.name for p in method.parameters}
    unknown = sorted(set(parameters) - names)
    if unknown:
        raise TypeError(
            f"Unknown parameter(s) for {method.name}: {', '.join(unknown)} (it takes {', '.join(sorted(names))})."
        )
    values: dict[str, Any] = {}
    for p in method.parameters:
        value = parameters.get(p.name, p.default)
        if p.scope == "shared":
            values[p.name] = _checked(p, value)
            continue
        ids = [i for i in range(n_inputs) if p.scope == "input" or i != base]
        if isinstance(value, Mapping):
            missing = [i for i in ids if i not in value]
            if missing:
                raise ValueError(f"Missing {p.name} for input(s): {missing}")
            raw = [value[i] for i in ids]
        elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            if len(value) != len(ids):
                which = "inputs other than the base" if p.scope == "non_base" else "inputs"
                raise ValueError(f"Parameter {p.name} expects {len(ids)} values (one per {which}); got {len(value)}.")
            raw = list(value)
        else:
            raw = [value] * len(ids)
        values[p.name] = [_checked(p, v) for v in raw]
    return values


def _checked(p: Parameter, value: Any) -> Any:
    if p.kind is bool:
        if not isinstance(value, bool):
            raise TypeError(f"Parameter {p.name} must be a bool, got {value!r}.")
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
    ):
        raise TypeError(f"Parameter {p.name} must be a finite number, got {value!r}.")
    return float(value)


def merge_tables(
    tables: Sequence[np.ndarray],
    method: str,
    *,
    base_index: int | None = None,
    parameters: Mapping[str, Any] | None = None,
    dtype: np.dtype[Any] | None = _FLOAT32,
    out_dtype: np.dtype[Any] | None = None,
) -> np.ndarray:
    """Merge equally shaped tables with ``method``, as mergekit merges one tensor.

    Args:
        tables: Two or more ``(vocab, dim)`` floating-point tables (the base among them at ``base_index``).
        method: A name in :data:`METHODS`.
        base_index: The base input (required by slerp / task arithmetic / TIES; slerp defaults to 0).
        parameters: The method's parameters (see :data:`METHODS`).
        dtype: Convert the inputs to this dtype first (``None``: keep them, promoted to a common type).
        out_dtype: Cast the result to this dtype (``None``: the method's output dtype).

    Returns:
        The merged table.

    Raises:
        ValueError: Fewer than two tables, different shapes, a base the method refuses or lacks, too many
            inputs, parameter values of the wrong number, or a non-finite result.
        TypeError: Unknown parameters or values of the wrong type.
    """
    spec = get(method)
    if len(tables) < 2:
        raise ValueError("At least two models are required for merging.")
    shapes = {t.shape for t in tables}
    if len(shapes) != 1:
        raise ValueError(f"Tables of different shapes cannot be merged: {sorted(shapes)}.")
    if spec.base == "ignored" and base_index is not None:
        raise ValueError(f"Method {method!r} does not use a base_model.")
    if spec.base == "required" and base_index is None:
        if method != "slerp":
            raise ValueError(f"Method {method!r} requires a base_model (one of the models or another).")
        base_index = 0
    if spec.max_inputs is not None and len(tables) > spec.max_inputs:
        raise ValueError(
            f"Method {method!r} merges at most {spec.max_inputs} models (the base included), got {len(tables)}."
        )
    common = np.result_type(*tables) if dtype is None else dtype
    inputs = [np.asarray(t, dtype=common) for t in tables]
    values = _bind(spec, parameters or {}, len(inputs), base_index)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a non-finite result is refused below
        result = spec.merge(inputs, base_index, values)
    if out_dtype is not None:
        with np.errstate(over="ignore"):
            result = result.astype(out_dtype)
    if not np.isfinite(result).all():
        raise ValueError(
            f"The {method} merge produced NaN or Inf values (out_dtype={result.dtype}); check the parameters."
        )
    return np.ascontiguousarray(result)
