"""Reading a model folder into its parts: the checked tensors, the tokenizer and the configs.

:func:`read_model` is the one place a folder becomes data: it detects the layout, reads the tokenizer,
maps the table (and the optional ``mapping`` / ``weights`` of vocabulary-quantized models) and checks
every part against the others. The engine (:class:`staticst.engine.Embedder`) is built from the
:class:`ModelParts`; the facade keeps them for ``info()`` and ``save()``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from staticst.errors import (
    CorruptModelError,
    InvalidConfigError,
    ModelNotFoundError,
    NonFiniteEmbeddingError,
    VocabularyMismatchError,
)
from staticst.families import Family
from staticst.persistence.config import MODEL2VEC_KEYS, ST_KEYS, validate
from staticst.persistence.io import read_safetensors, share_tensors
from staticst.persistence.layout import ST_CONFIG_FILE, ResolvedLayout, detect_layout, layout_named
from staticst.persistence.save import WRITERS, SavedModel, saved_tokenizer
from staticst.tokenization.reloadable import ReloadableTokenizer

__all__ = ["IN_MEMORY", "ModelParts", "check_finite", "parts_in_memory", "read_model", "read_tokenizer"]

TABLE_DTYPES = (np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.float64), np.dtype(np.int8))


@dataclass(frozen=True)
class ModelParts:
    """Everything read from one model folder, checked.

    Attributes:
        resolved: The matched layout with its parsed metadata files.
        table: The ``(rows, dim)`` embedding table (read-only: private memory, or a view of the machine-wide copy of
            a table of 16 MiB or more, see ``io.py``).
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

    Reads the array in blocks of 1M values (no temporary as large as the table).
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
        InvalidConfigError: The tokenizer's saved truncation limit is past ``sys.maxsize``.
    """
    resolved = detect_layout(folder)
    tokenizer = read_tokenizer(resolved.tokenizer_path)
    _check_limit(tokenizer, resolved.tokenizer_path)
    st_file = share_tensors(read_safetensors(resolved.weights_path))  # one table per node: a shared read-only copy (io.py)
    return _checked_parts(resolved, set(st_file.tensors), st_file.get, tokenizer)


def parts_in_memory(model: SavedModel) -> ModelParts:
    """The parts :func:`read_model` would give for ``model`` saved in its layout, built without touching a disk.

    Every check of a folder load applies (the config's keys, the table fits the tokenizer, no NaN / Inf, a
    supported dtype); the tensors are private read-only copies (independent of ``model``'s arrays). Messages
    name ``<in memory>/...`` where a folder load names the file.

    Raises:
        VocabularyMismatchError: The table (or ``mapping`` / ``weights``) does not fit the tokenizer.
        NonFiniteEmbeddingError: The table or the weights hold NaN or Inf.
        CorruptModelError: The table is not 2-D or its dtype is not supported.
        InvalidConfigError: A config key has a wrong type or value, or the token limit is past ``sys.maxsize``.
    """
    contents = WRITERS[model.layout].contents(model)
    layout = layout_named(model.layout)
    root = Path(IN_MEMORY)
    config: dict[str, Any] = {}
    normalize_module = model.normalize
    if layout.config_file and contents.config is not None:
        # as written and read back: through JSON, checked key by key
        config = validate(root / layout.config_file, json.loads(json.dumps(contents.config)), MODEL2VEC_KEYS)
        normalize_module = bool(config.get("normalize", False))
    st_config = validate(root / ST_CONFIG_FILE, json.loads(json.dumps(model.st_config)), ST_KEYS)
    resolved = ResolvedLayout(layout, root, config, normalize_module, st_config, model.normalize)
    tokenizer = saved_tokenizer(model)
    _check_limit(tokenizer, resolved.tokenizer_path)
    tensors = {name: _private(array) for name, array in contents.tensors.items()}
    return _checked_parts(resolved, set(tensors), tensors.__getitem__, tokenizer)


#: The folder messages name for a model built in memory.
IN_MEMORY = "<in memory>"


def _private(array: np.ndarray) -> np.ndarray:
    """A read-only private copy, as a tensor read from a file is."""
    copy = np.array(array, copy=True, order="C")
    copy.flags.writeable = False
    return copy


def _check_limit(tokenizer: Tokenizer, path: Path) -> None:
    limit = (tokenizer.truncation or {}).get("max_length")
    if isinstance(limit, int) and limit > sys.maxsize:  # tokenizers keeps a usize; the token rules an ssize_t
        raise InvalidConfigError(
            f"{path}: 'truncation' 'max_length' is {limit}, past the largest limit "
            f"{sys.maxsize}; re-save the tokenizer with a smaller max_length, or with no truncation for no limit."
        )


def _checked_parts(
    resolved: ResolvedLayout, names: set[str], get: Callable[[str], np.ndarray], tokenizer: Tokenizer
) -> ModelParts:
    """The tensors ``names`` (read with ``get``) and ``tokenizer`` checked against each other, as parts."""
    layout = resolved.layout
    path = resolved.weights_path
    name = next((t for t in layout.table_tensors if t in names), None)
    if name is None:
        raise CorruptModelError(
            f"{path} has no embedding table: expected a tensor named "
            f"{' or '.join(repr(t) for t in layout.table_tensors)} for the {layout.name} layout, "
            f"found {sorted(names)}."
        )
    table = get(name)
    if table.ndim != 2 or table.shape[1] == 0:
        raise CorruptModelError(f"{path}: {name!r} must be a 2-D (rows, dim) table, got shape {table.shape}.")
    if table.dtype not in TABLE_DTYPES:
        raise CorruptModelError(f"{path}: table dtype {table.dtype} is not supported; use float32, float16 or int8.")
    quantizable = name == "embeddings"  # only the model2vec tensor names carry mapping / weights
    mapping = get("mapping") if quantizable and "mapping" in names else None
    weights = get("weights") if quantizable and "weights" in names else None
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
        tokenizer=ReloadableTokenizer.wrap(tokenizer),
        padding=tokenizer.padding,
        truncation=tokenizer.truncation,
    )
