"""What the integrations share: the model argument, the embedder backends' call, Ray's and Spark's batch path.

:func:`as_model` serves every adapter, :class:`StaticBackend` KeyBERT's and BERTopic's backends; for Ray and Spark, checked encode options,
the model loader and the batch function. Nothing here imports a library integrated with: the engine modules turn their batches into a list of values, call
:func:`embed_values`, and turn the ``(n, dim)`` float32 result back into their own column type.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from staticst._st_args import check_positive, check_truncate_dim
from staticst.model import StaticSentenceTransformer

__all__ = [
    "EncodeSpec",
    "OnNull",
    "StaticBackend",
    "as_model",
    "embed_values",
    "is_text_type",
    "load_model",
    "make_spec",
    "output_width",
]

OnNull = Literal["error", "null"]
_ON_NULL = ("error", "null")
#: ``StaticSentenceTransformer`` arguments a worker may be given through ``model_kwargs``.
_MODEL_ARGS = frozenset(inspect.signature(StaticSentenceTransformer.__init__).parameters) - {
    "self",
    "model_name_or_path",
    "kwargs",
}


def as_model(model: StaticSentenceTransformer | str | os.PathLike[str] | None) -> StaticSentenceTransformer:
    """A loaded model as it is; a folder / hub id (``None``: the built-in potion-base-8M) loaded."""
    return model if isinstance(model, StaticSentenceTransformer) else StaticSentenceTransformer(model)


class StaticBackend:
    """KeyBERT's and BERTopic's ``BaseEmbedder`` over a static model, mixed in before the library's class.

    ``class KeyBERTBackend(StaticBackend, keybert.backend.BaseEmbedder)``: the two libraries' backend classes
    have the same ``__init__`` and ``embed``; this is the one copy of both.

    Args:
        model: A loaded model, or a folder / hub id to load (``None``: the built-in potion-base-8M).
        **encode_kwargs: Passed to every ``encode`` call (e.g. ``normalize_embeddings=True``).

    Attributes:
        embedding_model: The :class:`~staticst.StaticSentenceTransformer` doing the encoding.
    """

    def __init__(
        self, model: StaticSentenceTransformer | str | os.PathLike[str] | None = None, **encode_kwargs: Any
    ) -> None:
        super().__init__()
        self.embedding_model = as_model(model)
        self.encode_kwargs = encode_kwargs

    def embed(self, documents: list[str], verbose: bool = False) -> np.ndarray:
        """Embed documents or words (the libraries' backend API: ``embed_documents`` / ``embed_words`` call it).

        Args:
            documents: The texts.
            verbose: Show a progress bar.

        Returns:
            A float32 array of shape ``(len(documents), dim)``.
        """
        return np.asarray(self.embedding_model.encode(list(documents), show_progress_bar=verbose, **self.encode_kwargs))


@dataclass(frozen=True)
class EncodeSpec:
    """Everything a worker needs to load the model and encode a batch: small, picklable, checked.

    Attributes:
        model: Folder path or Hub id of the model (``None``: the built-in ``minishlab/potion-base-8M``).
        model_kwargs: Keyword arguments of :class:`~staticst.StaticSentenceTransformer`, as sorted pairs.
        normalize_embeddings: L2-normalise each vector (after truncation).
        truncate_dim: Keep the first ``truncate_dim`` dimensions.
        prompt_name: Key of the model's ``prompts`` prepended to every text.
        prompt: Text prepended to every text (wins over ``prompt_name``).
        on_null: ``"error"`` (raise on a null text) or ``"null"`` (a null embedding for it).
        num_threads: Native kernel threads per worker (``None``: ``STATICST_NUM_THREADS`` or the usable CPUs).
    """

    model: str | None
    model_kwargs: tuple[tuple[str, Any], ...]
    normalize_embeddings: bool
    truncate_dim: int | None
    prompt_name: str | None
    prompt: str | None
    on_null: OnNull
    num_threads: int | None

    @property
    def cache_key(self) -> str:
        """A string naming the model and the options it is loaded with (the key of a worker's model cache)."""
        return repr((self.model, self.model_kwargs, self.num_threads))


def make_spec(
    model: str | os.PathLike[str] | None,
    *,
    model_kwargs: Mapping[str, Any] | None,
    normalize_embeddings: bool,
    truncate_dim: int | None,
    prompt_name: str | None,
    prompt: str | None,
    precision: str,
    on_null: str,
    num_threads: int | None,
) -> EncodeSpec:
    """Check the options on the driver, before any worker starts, and pack them into an :class:`EncodeSpec`.

    Raises:
        ValueError: ``precision`` other than ``"float32"``, a bad ``truncate_dim`` / ``num_threads`` /
            ``on_null``, or an unknown ``model_kwargs`` key.
        TypeError: ``model`` is not a str, a path or None; ``prompt`` / ``prompt_name`` are not str.
    """
    if precision != "float32":
        raise ValueError(
            f"precision={precision!r} is not supported here, only 'float32': int8 / uint8 ranges come from the "
            "batch being encoded, so the vectors would depend on how the engine splits the data. Embed float32 and "
            "quantize afterwards with staticst.util.quantize_embeddings(..., calibration_embeddings=a_sample)."
        )
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise TypeError(
            f"model must be a folder path, a Hub id or None (the built-in model), got {type(model).__name__}: "
            "workers load the model themselves, so pass its name, not a loaded model."
        )
    if truncate_dim is not None:
        check_truncate_dim(truncate_dim)
    if num_threads is not None:
        check_positive("num_threads", num_threads)
    if on_null not in _ON_NULL:
        raise ValueError(f"on_null must be 'error' or 'null', got {on_null!r}.")
    for name, value in (("prompt", prompt), ("prompt_name", prompt_name)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str or None, got {type(value).__name__}.")
    kwargs = dict(model_kwargs or {})
    unknown = sorted(set(kwargs) - _MODEL_ARGS)
    if unknown:
        raise ValueError(
            f"model_kwargs has unknown key(s) {unknown}: they are passed to StaticSentenceTransformer, which "
            f"accepts {sorted(_MODEL_ARGS)}."
        )
    return EncodeSpec(
        model=None if model is None else os.fspath(model),
        model_kwargs=tuple(sorted(kwargs.items())),
        normalize_embeddings=bool(normalize_embeddings),
        truncate_dim=None if truncate_dim is None else int(truncate_dim),
        prompt_name=prompt_name,
        prompt=prompt,
        on_null="null" if on_null == "null" else "error",
        num_threads=num_threads,
    )


def load_model(spec: EncodeSpec) -> StaticSentenceTransformer:
    """Load the model of ``spec`` (in a worker) and check that its prompt exists.

    Raises:
        ValueError: ``spec.prompt_name`` is not one of the model's prompts.
        ModelLoadError: The model could not be loaded (see :class:`~staticst.StaticSentenceTransformer`).
    """
    model = StaticSentenceTransformer(spec.model, **dict(spec.model_kwargs))
    if spec.num_threads is not None:
        model.num_threads = spec.num_threads
    if spec.prompt is None and spec.prompt_name is not None and spec.prompt_name not in model.prompts:
        raise ValueError(
            f"prompt_name={spec.prompt_name!r} is not a prompt of model {spec.model!r} (prompts: "
            f"{sorted(model.prompts)}): pass model_kwargs={{'prompts': {{{spec.prompt_name!r}: '...'}}}} or drop it."
        )
    return model


def is_text_type(kind: Any) -> bool:
    """Whether a pyarrow type holds text (string, large_string, string_view) or only nulls."""
    import pyarrow as pa

    view = getattr(pa.types, "is_string_view", None)  # pyarrow 16+
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_null(kind)
        or (view is not None and view(kind))
    )


def _is_null(value: object) -> bool:
    """``None``, pandas' ``NA`` / ``NaT`` or a float NaN (how pandas marks a missing string)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return type(value).__name__ in ("NAType", "NaTType")


def embed_values(
    model: StaticSentenceTransformer,
    values: Sequence[object],
    spec: EncodeSpec,
    *,
    column: str,
    cast_hint: str,
    null_hint: str,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Embed one batch of a text column.

    Args:
        model: The worker's model.
        values: The column's values in this batch, in row order.
        spec: The encode options.
        column: The column's name (for error messages).
        cast_hint: How to turn a non-text column into text, in the engine's own terms.
        null_hint: How to drop or fill nulls, in the engine's own terms.

    Returns:
        ``(embeddings, nulls)``: ``(n, dim)`` C-contiguous float32 in row order, and the boolean null mask
        (``None`` when no value is null); rows of null values are zeros and must be emitted as nulls.

    Raises:
        TypeError: A value is neither a str nor null.
        ValueError: A value is null and ``spec.on_null`` is ``"error"``, or a text is not valid Unicode.
    """
    texts = values if isinstance(values, list) else list(values)
    nulls: np.ndarray | None = None
    if not all(type(t) is str for t in texts):
        null_flags: list[bool] = []
        for i, value in enumerate(texts):
            if isinstance(value, str):
                null_flags.append(False)
            elif _is_null(value):
                null_flags.append(True)
            else:
                raise TypeError(
                    f"column {column!r} holds {type(value).__name__} values, not str (row {i} of a batch: "
                    f"{repr(value)[:40]}): {cast_hint}."
                )
        if spec.on_null == "error":
            raise ValueError(
                f"column {column!r} holds a null (row {null_flags.index(True)} of a batch): {null_hint}, or pass "
                "on_null='null' to get a null embedding for it."
            )
        nulls = np.array(null_flags, dtype=bool)
        texts = [t for t, is_null in zip(texts, null_flags, strict=True) if not is_null]
    if texts:
        emb = model.encode(
            texts,
            prompt_name=spec.prompt_name,
            prompt=spec.prompt,
            normalize_embeddings=spec.normalize_embeddings,
            truncate_dim=spec.truncate_dim,
            show_progress_bar=False,
        )
        emb = np.ascontiguousarray(emb, dtype=np.float32)
    else:
        emb = np.zeros((0, output_width(model, spec)), dtype=np.float32)
    if nulls is None:
        return emb, None
    full = np.zeros((len(nulls), emb.shape[1]), dtype=np.float32)
    full[~nulls] = emb
    return full, nulls


def output_width(model: StaticSentenceTransformer, spec: EncodeSpec) -> int:
    """The number of dimensions of the vectors :func:`embed_values` returns for ``model`` and ``spec``."""
    width = int(model.engine.dim)
    truncate_dim = spec.truncate_dim if spec.truncate_dim is not None else model.truncate_dim
    return width if truncate_dim is None else min(width, truncate_dim)
