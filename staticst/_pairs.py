"""Token ids of texts and text pairs under an engine's token rules (shared by the model and its modules)."""

from __future__ import annotations

from typing import Any

import numpy as np
from tokenizers import Tokenizer

from staticst.engine import Embedder
from staticst.tokenization.guard import tokenizer_call

__all__ = ["token_ids"]


def _pair_ids(engine: Embedder, pairs: list[tuple[str, str]], cache: dict[str, Any]) -> list[np.ndarray]:
    """The ids of text pairs: both texts in one encoding, under the model's token limit.

    sentence-transformers family: the tokenizer's own pair encoding (``add_special_tokens=False``), with
    its truncation; model2vec family (which has no pairs): each text under the model2vec rules, joined.
    ``cache`` keeps the pair tokenizer between calls (a model's or a module's ``__dict__``).
    """
    if engine.family.name != "sentence-transformers":
        flat = [t for pair in pairs for t in pair]
        ids, offsets = engine.tokenize(flat)
        return [ids[offsets[2 * i] : offsets[2 * i + 2]] for i in range(len(pairs))]
    key = (id(engine.tokenizer.tokenizer), engine.settings.max_length, engine.settings.truncation_side)
    cached = cache.get("_pair_tokenizer")
    if cached is None or cached[0] != key:
        tokenizer = Tokenizer.from_str(engine.tokenizer.tokenizer.to_str())
        tokenizer.no_padding()
        tokenizer.no_truncation()
        if key[1] is not None:
            tokenizer.enable_truncation(key[1], direction=key[2])
        cached = (key, tokenizer)
        cache["_pair_tokenizer"] = cached
    encodings = tokenizer_call(cached[1].encode_batch, pairs, add_special_tokens=False)
    return [np.asarray(e.ids, dtype=np.int64) for e in encodings]


def token_ids(engine: Embedder, items: list[Any], cache: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Flat int64 ids and ``len(items) + 1`` offsets of texts and text pairs under ``engine``'s token rules.

    Texts go through the engine's tokenizer; text pairs through the tokenizer's pair encoding (see
    :func:`_pair_ids`). ``cache`` is a dict the pair tokenizer is kept in.
    """
    pair_at = [i for i, t in enumerate(items) if not isinstance(t, str)]
    if not pair_at:
        return engine.tokenize(items)
    singles = [i for i, t in enumerate(items) if isinstance(t, str)]
    ids_s, off_s = engine.tokenize([items[i] for i in singles])
    per_item: list[np.ndarray] = [np.empty(0, np.int64)] * len(items)
    for k, i in enumerate(singles):
        per_item[i] = ids_s[off_s[k] : off_s[k + 1]]
    for i, ids in zip(pair_at, _pair_ids(engine, [items[i] for i in pair_at], cache), strict=True):
        per_item[i] = ids
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum([len(x) for x in per_item], out=offsets[1:])
    flat = np.concatenate(per_item) if per_item else np.empty(0, np.int64)
    return flat.astype(np.int64, copy=False), offsets
