"""Writing a model folder that staticst, model2vec and sentence-transformers all load.

A model is written in its family's ``save_layout`` (:mod:`staticst.families`); :data:`WRITERS` holds, per
layout, how the table (and ``mapping`` / ``weights``) become tensors, which module entry ``modules.json``
gets, and where the token limit is kept (model2vec: ``config.json``'s ``max_length``; sentence-transformers:
the tokenizer's own truncation, which is what sentence-transformers applies). Every layout also gets ``tokenizer.json`` (with the padding and truncation it was
loaded with), ``config_sentence_transformers.json`` (prompts, default prompt, similarity; read back for
every layout), a ``1_Normalize`` module when output is normalised, and optionally a model card.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from staticst.persistence.io import write_safetensors
from staticst.persistence.layout import ST_CONFIG_FILE

__all__ = ["WRITERS", "LayoutContents", "LayoutWriter", "SavedModel", "saved_tokenizer", "write_model"]

_STATIC = "sentence_transformers.models.StaticEmbedding"
_NORMALIZE = "sentence_transformers.models.Normalize"


@dataclass(frozen=True)
class SavedModel:
    """What :func:`write_model` writes.

    Attributes:
        layout: The layout to write (a key of :data:`WRITERS`).
        table: The embedding table.
        mapping: Token id -> table row (vocabulary-quantized models), or ``None``.
        weights: Per-token-id weights, or ``None``.
        tokenizer: The tokenizer to save (with the padding / truncation it was loaded with).
        normalize: Whether the model's output is L2-normalised.
        max_length: The token limit in force.
        truncation_side: ``"right"`` or ``"left"``: which tokens the limit keeps.
        config: The model2vec config the model was loaded with (its other keys are kept).
        st_config: The contents of ``config_sentence_transformers.json``.
    """

    layout: str
    table: np.ndarray
    mapping: np.ndarray | None
    weights: np.ndarray | None
    tokenizer: Tokenizer
    normalize: bool
    max_length: int | None
    truncation_side: str
    config: dict[str, Any]
    st_config: dict[str, Any]


@dataclass(frozen=True)
class LayoutContents:
    """What one layout stores for a model, before anything touches a disk.

    Attributes:
        tensors: The safetensors tensors, by name.
        config: The model2vec ``config.json`` (``None`` for a layout without one).
        module: The static module's ``modules.json`` entry.
    """

    tensors: dict[str, np.ndarray]
    config: dict[str, Any] | None
    module: dict[str, Any]


def _model2vec_contents(model: SavedModel) -> LayoutContents:
    """model2vec: the table as it is (+ mapping / weights) and ``config.json``; module path ``"."``."""
    tensors = {"embeddings": np.asarray(model.table)}
    if model.mapping is not None:
        tensors["mapping"] = model.mapping
    if model.weights is not None:
        tensors["weights"] = np.asarray(model.weights)
    config = dict(model.config)
    config["normalize"] = model.normalize
    config["max_length"] = model.max_length
    config["embedding_dtype"] = str(model.table.dtype)
    if model.mapping is not None:
        config["vocabulary_quantization"] = int(model.table.shape[0])
    return LayoutContents(tensors, config, {"idx": 0, "name": "0", "path": ".", "type": _STATIC})


def _st_contents(model: SavedModel) -> LayoutContents:
    """sentence-transformers root layout: one ``embedding.weight`` (mapping and weights materialised)."""
    table = np.asarray(model.table)
    if model.mapping is not None or model.weights is not None:
        rows = table[model.mapping] if model.mapping is not None else table
        table = rows.astype(np.float32) * (model.weights[:, None] if model.weights is not None else 1.0)
    tensors = {"embedding.weight": np.ascontiguousarray(table)}
    return LayoutContents(tensors, None, {"idx": 0, "name": "0", "path": "", "type": _STATIC})


@dataclass(frozen=True)
class LayoutWriter:
    """How one layout is written.

    Attributes:
        contents: The tensors, config and module entry the layout stores for a model.
        limit_in_tokenizer: The token limit is stored as the saved tokenizer's truncation.
    """

    contents: Callable[[SavedModel], LayoutContents]
    limit_in_tokenizer: bool


#: The writer of each layout a family can be saved in.
WRITERS: dict[str, LayoutWriter] = {
    "model2vec": LayoutWriter(_model2vec_contents, limit_in_tokenizer=False),
    "sentence-transformers": LayoutWriter(_st_contents, limit_in_tokenizer=True),
}


def saved_tokenizer(model: SavedModel) -> Tokenizer:
    """The tokenizer as ``model``'s layout saves it (a copy; sentence-transformers layouts: the token limit as its truncation)."""
    if WRITERS[model.layout].limit_in_tokenizer:
        return _tokenizer_with_limit(model.tokenizer, model.max_length, model.truncation_side)
    return Tokenizer.from_str(model.tokenizer.to_str())


def _tokenizer_with_limit(tokenizer: Tokenizer, max_length: int | None, side: str) -> Tokenizer:
    """A copy of ``tokenizer`` whose truncation is the model's token limit (other truncation options kept)."""
    copy = Tokenizer.from_str(tokenizer.to_str())
    if max_length is None:
        copy.no_truncation()
        return copy
    options = dict(tokenizer.truncation or {})
    options.update(max_length=max_length, direction=side)
    copy.enable_truncation(**options)
    return copy


def write_model(folder: Path, model: SavedModel, card: str | None = None) -> None:
    """Write ``model`` to ``folder`` (created if needed).

    Args:
        folder: Target folder.
        model: What to write.
        card: The model card (``README.md``), or ``None`` for none.

    Raises:
        KeyError: ``model.layout`` has no writer.
    """
    contents = WRITERS[model.layout].contents(model)
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors(folder / "model.safetensors", contents.tensors)
    if contents.config is not None:
        (folder / "config.json").write_text(json.dumps(contents.config, indent=4), encoding="utf-8")
    modules = [contents.module]
    if model.normalize:
        modules.append({"idx": 1, "name": "1", "path": "1_Normalize", "type": _NORMALIZE})
        (folder / "1_Normalize").mkdir(exist_ok=True)
        (folder / "1_Normalize" / "config.json").write_text("{}", encoding="utf-8")
    (folder / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    saved_tokenizer(model).save(str(folder / "tokenizer.json"))
    (folder / ST_CONFIG_FILE).write_text(json.dumps(model.st_config, indent=2), encoding="utf-8")
    if card is not None:
        (folder / "README.md").write_text(card, encoding="utf-8")
