"""Reading a model folder into its parts: the checked tensors, the tokenizer and the configs.

:func:`read_model` is the one place a folder becomes data: it detects the layout, reads the tokenizer,
maps the table (and the optional ``mapping`` / ``weights`` of vocabulary-quantized models) and checks
every part against the others. The engine (:class:`staticst.engine.Embedder`) is built from the
:class:`ModelParts`; the facade keeps them for ``info()`` and ``save()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from staticst.errors import CorruptModelError, ModelNotFoundError, NonFiniteEmbeddingError, VocabularyMismatchError
from staticst.families import Family
from staticst.persistence.io import read_safetensors
from staticst.persistence.layout import ResolvedLayout, detect_layout

__all__ = ["ModelParts", "check_finite", "read_model", "read_tokenizer"]

TABLE_DTYPES = (np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.float64), np.dtype(np.int8))


@dataclass(frozen=True)
class ModelParts:
    """Everything read from one model folder, checked.

    Attributes:
        resolved: The matched layout with its parsed metadata files.
        table: The ``(rows, dim)`` embedding table (read-only, memory-mapped).
        mapping: Token id -> table row of a vocabulary-quantized model, or ``None``.
        weights: Per-token-id weights, or ``None``.
        tokenizer: The model's ``tokenizers.Tokenizer`` as saved (padding and truncation included).
        padding: The tokenizer's saved padding settings (restored on save).
        truncation: The tokenizer's saved truncation settings (restored on save; the sentence-transformers
            family takes its token limit from them).
    """

    resolved: ResolvedLayout
    table: np.ndarray
    mapping: np.ndarray | None
    weights: np.ndarray | None
    tokenizer: Tokenizer
    padding: dict[str, Any] | None
    truncation: dict[str, Any] | None

    @property
    def family(self) -> Family:
        """The reference family of the folder's layout."""
        return self.resolved.layout.family

    @property
    def config(self) -> dict[str, Any]:
        """The model2vec ``config.json`` (empty for other layouts)."""
        return self.resolved.config

    @property
    def st_config(self) -> dict[str, Any]:
        """``config_sentence_transformers.json`` (prompts, default prompt, similarity), empty if absent."""
        return self.resolved.st_config


def read_tokenizer(path: Path) -> Tokenizer:
    """Load ``tokenizer.json``.

    Raises:
        ModelNotFoundError: The file does not exist.
        CorruptModelError: The file cannot be parsed by ``tokenizers``.
    """
    if not path.is_file():
        raise ModelNotFoundError(f"Missing tokenizer file {path}. Re-download or re-save the model.")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on parse errors
        raise CorruptModelError(f"Could not load tokenizer {path}: {exc}. Re-download or re-save the model.") from exc


def check_finite(name: str, arr: np.ndarray, path: Path) -> None:
    """Raise :class:`NonFiniteEmbeddingError` if the float array ``arr`` holds NaN or Inf.

    Reads the array in blocks of 1M values (bounded memory for memory-mapped tables).
    """
    if arr.dtype.kind != "f":
        return
    step = 1 << 20
    flat = arr.reshape(-1)
    # float16 has no fast isfinite: its NaN / Inf are exactly the values with all exponent bits set
    exponent = np.uint16(0x7C00) if arr.dtype == np.float16 else None
    for lo in range(0, flat.size, step):
        block = flat[lo : lo + step]
        if exponent is not None:
            finite = not ((block.view(np.uint16) & exponent) == exponent).any()
        else:
            finite = bool(np.isfinite(block).all())
        if not finite:
            bad = lo + int(np.flatnonzero(~np.isfinite(block))[0])
            row = bad // arr.shape[1] if arr.ndim == 2 else bad
            raise NonFiniteEmbeddingError(
                f"{path}: tensor {name!r} holds NaN or Inf (first at row {row}). The model is corrupt: "
                "re-export it with finite values."
            )


def _check_mapping(mapping: np.ndarray, table: np.ndarray, vocab_size: int, path: Path) -> np.ndarray:
    if mapping.ndim != 1 or mapping.dtype.kind not in "iu":
        raise CorruptModelError(f"{path}: 'mapping' must be a 1-D integer array, got {mapping.dtype} {mapping.shape}.")
    if len(mapping) != vocab_size:
        raise VocabularyMismatchError(
            f"{path}: 'mapping' has {len(mapping)} entries but the tokenizer has {vocab_size} "
            "tokens. The tokenizer and the table belong to different models: save them together."
        )
    if len(mapping) and (int(mapping.min()) < 0 or int(mapping.max()) >= table.shape[0]):
        raise CorruptModelError(
            f"{path}: 'mapping' points at rows outside 0..{table.shape[0] - 1} "
            f"(min {int(mapping.min())}, max {int(mapping.max())})."
        )
    return np.ascontiguousarray(mapping, dtype=np.int64)


def _largest_id(tokenizer: Tokenizer) -> int:
    """The largest token id the tokenizer can produce (vocabulary and added tokens)."""
    added = max(tokenizer.get_added_tokens_decoder(), default=-1)
    if type(tokenizer.model).__name__ == "Unigram":  # pieces are numbered by position
        return max(tokenizer.get_vocab_size(with_added_tokens=False) - 1, added)
    return max(max(tokenizer.get_vocab(with_added_tokens=False).values(), default=-1), added)


def read_model(folder: Path) -> ModelParts:
    """Read and check every part of the model in ``folder``.

    Raises:
        ModelNotFoundError: A required file is missing.
        UnknownLayoutError: The folder is in no known layout.
        CorruptModelError: A file is truncated or malformed, or a tensor has the wrong name, rank or dtype.
        VocabularyMismatchError: The table (or ``mapping`` / ``weights``) does not fit the tokenizer.
        NonFiniteEmbeddingError: The table or the weights hold NaN or Inf.
    """
    resolved = detect_layout(folder)
    layout = resolved.layout
    path = resolved.weights_path
    tokenizer = read_tokenizer(resolved.tokenizer_path)
    st_file = read_safetensors(path)
    name = next((t for t in layout.table_tensors if t in st_file.tensors), None)
    if name is None:
        raise CorruptModelError(
            f"{path} has no embedding table: expected a tensor named "
            f"{' or '.join(repr(t) for t in layout.table_tensors)} for the {layout.name} layout, "
            f"found {sorted(st_file.tensors)}."
        )
    table = st_file.get(name)
    if table.ndim != 2 or table.shape[1] == 0:
        raise CorruptModelError(f"{path}: {name!r} must be a 2-D (rows, dim) table, got shape {table.shape}.")
    if table.dtype not in TABLE_DTYPES:
        raise CorruptModelError(f"{path}: table dtype {table.dtype} is not supported; use float32, float16 or int8.")
    quantizable = name == "embeddings"  # only the model2vec tensor names carry mapping / weights
    mapping = st_file.get("mapping") if quantizable and "mapping" in st_file.tensors else None
    weights = st_file.get("weights") if quantizable and "weights" in st_file.tensors else None
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    if mapping is not None:
        mapping = _check_mapping(mapping, table, vocab_size, path)
    elif table.shape[0] != vocab_size:
        raise VocabularyMismatchError(
            f"{path}: the table has {table.shape[0]} rows but the tokenizer "
            f"({resolved.tokenizer_path}) has {vocab_size} tokens. The tokenizer and the table belong to "
            "different models: save them together, or add a 'mapping' tensor for a vocabulary-quantized table."
        )
    n_ids = len(mapping) if mapping is not None else table.shape[0]
    largest = _largest_id(tokenizer)
    if largest >= n_ids:
        raise VocabularyMismatchError(
            f"{resolved.tokenizer_path} can produce token id {largest}, but {path} has "
            f"{'mapping entries' if mapping is not None else 'table rows'} for ids 0..{n_ids - 1} only. The tokenizer and "
            "the table belong to different models: save them together."
        )
    if weights is not None:
        if weights.ndim != 1 or weights.dtype.kind != "f" or len(weights) != vocab_size:
            raise VocabularyMismatchError(
                f"{path}: 'weights' must be 1-D float with one entry per token ({vocab_size}), "
                f"got {weights.dtype} {weights.shape}."
            )
        check_finite("weights", weights, path)
    check_finite(name, table, path)
    return ModelParts(
        resolved=resolved,
        table=table,
        mapping=mapping,
        weights=weights,
        tokenizer=tokenizer,
        padding=tokenizer.padding,
        truncation=tokenizer.truncation,
    )
