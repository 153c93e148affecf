"""``StaticSentenceTransformer.merge``: sentence-transformers 6.3's model merging, on static models, without torch.

sentence-transformers' ``merge`` (``sentence_transformers.base.merging``) loads the models, checks that they fit
together (same modules and configurations, same tokenizer vocabulary), merges every floating-point tensor with
mergekit and returns a copy of the first model holding the merged weights. A static model has one such tensor,
the token table (``model[0].embedding.weight``: model2vec's vocabulary quantization and token weights folded in,
as sentence-transformers reads them). This module does the loading, the checks and the assembling; the arithmetic
is in :mod:`staticst.merge_methods`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from staticst._st_compat import STCompatMixin
from staticst.merge_methods import merge_tables, numpy_dtype
from staticst.model_card import ModelCardData
from staticst.modules import StaticEmbedding

__all__ = ["merge_models"]

M = TypeVar("M", bound=STCompatMixin)  # the facade class (StaticSentenceTransformer or a subclass)


def _loaded(cls: type[M], model: Any, device: str, load_kwargs: dict[str, Any]) -> M:
    if isinstance(model, (str, os.PathLike)):
        constructor: Any = cls
        model = constructor(str(model), device=device, **load_kwargs)
    if not isinstance(model, cls):
        raise TypeError(f"Expected a {cls.__name__} instance or model path, got {type(model).__name__}.")
    return model


def _embedding(model: STCompatMixin) -> StaticEmbedding:
    """The model's first module: its table and tokenizer."""
    module = model[0]
    assert isinstance(module, StaticEmbedding)  # the facade's first module is always one
    return module


def _token_table(model: STCompatMixin, index: int) -> np.ndarray:
    table = _embedding(model).weight
    if not np.issubdtype(table.dtype, np.floating):
        raise ValueError(
            f"Model {index} has a table of {table.dtype} (a quantized model): merging quantized models is not supported. "
            "Load unquantized models first."
        )
    return np.asarray(table)


def _validate(models: Sequence[STCompatMixin], tables: Sequence[np.ndarray]) -> None:
    """sentence-transformers' checks, on what a static model has: modules, their settings, the vocabulary."""
    reference = models[0]
    for index, model in enumerate(models[1:], start=1):
        kinds = [type(m).__name__ for m in model]
        if kinds != [type(m).__name__ for m in reference]:
            raise ValueError(f"Model {index} has a different module structure from model 0 ({kinds}).")
        if tables[index].shape != tables[0].shape:
            raise ValueError(
                f"Module '0' has a different configuration in model {index}:\n"
                f"  model 0: EmbeddingBag{tables[0].shape}\n  model {index}: EmbeddingBag{tables[index].shape}"
            )
        for name, (ours, theirs) in enumerate(zip(reference, model, strict=True)):
            if ours.get_config_dict() != theirs.get_config_dict():
                raise ValueError(
                    f"Module '{name}' has a different configuration in model {index}:\n"
                    f"  model 0: {ours.get_config_dict()}\n  model {index}: {theirs.get_config_dict()}"
                )
        if _vocabulary(model) != _vocabulary(reference):
            raise ValueError(f"Tokenizer vocabulary or special tokens differ in model {index}, module '0'.")


def _vocabulary(model: STCompatMixin) -> dict[str, int]:
    return dict(_embedding(model).tokenizer.get_vocab(with_added_tokens=True))


def merge_models(
    cls: type[M],
    models: Sequence[str | os.PathLike[str] | M],
    method: str = "linear",
    *,
    base_model: str | os.PathLike[str] | M | None = None,
    parameters: dict[str, Any] | None = None,
    dtype: Any = "float32",
    out_dtype: Any = None,
    device: str = "cpu",
    batch_options: Any = None,
    **load_kwargs: Any,
) -> M:
    """Implement :meth:`staticst.StaticSentenceTransformer.merge` (see there for the arguments)."""
    if isinstance(models, (str, os.PathLike)) or len(models) < 2:
        raise ValueError("At least two models are required for merging.")
    work_dtype = numpy_dtype(dtype, "dtype")
    cast = numpy_dtype(out_dtype, "out_dtype")
    inputs: list[Any] = list(models)
    base_index: int | None = None
    if base_model is not None:
        # an input given again as the base is the same input (by object, or by the same path), as in sentence-transformers
        base_index = next(
            (
                i
                for i, model in enumerate(inputs)
                if model is base_model
                or (
                    isinstance(model, (str, os.PathLike))
                    and isinstance(base_model, (str, os.PathLike))
                    and str(model) == str(base_model)
                )
            ),
            len(inputs),
        )
        if base_index == len(inputs):
            inputs.append(base_model)
    loaded = [_loaded(cls, model, device, load_kwargs) for model in inputs]
    tables = [_token_table(model, i) for i, model in enumerate(loaded)]
    _validate(loaded, tables)
    merged = merge_tables(
        tables, method, base_index=base_index, parameters=parameters, dtype=work_dtype, out_dtype=cast
    )
    merged.flags.writeable = False
    return _with_table(loaded[0], merged)


def _with_table(first: M, table: np.ndarray) -> M:
    """A copy of ``first`` (settings, prompts, modules, token rules) holding ``table``, with a fresh model card."""
    merged = type(first).__new__(type(first))
    state = first.__getstate__()
    state["_parts"] = dataclasses.replace(first._parts, table=table, mapping=None, weights=None)
    state["model_path"] = None  # nothing on disk holds this table (workers get it through a saved copy)
    state["model_id"] = None
    state["revision"] = None
    state["_model_card_text"] = None
    state["model_card_data"] = None
    # the first module (the table) is rebuilt below: never copy the first model's table or the first model itself
    module = _embedding(first)
    memo = {id(first): merged, id(state["_parts"]): state["_parts"], id(module): None}
    merged.__setstate__(copy.deepcopy(state, memo))
    merged._st_modules[0] = StaticEmbedding._bound_to(merged, base_model=module.base_model)
    merged.model_card_data = ModelCardData(local_files_only=True)
    merged.model_card_data.register_model(merged)
    return merged
