"""Text -> flat token ids + offsets, with each reference library's truncation and unknown-token rules.

The core works on a flat ``int64`` id array and ``offsets`` (``len(texts) + 1`` boundaries), never on
per-sentence Python lists of vectors. Tokenization itself is exact: ids are those of the model's own
``tokenizers.Tokenizer`` with ``add_special_tokens=False``; a word-cache fast path
(:mod:`staticst.fasttok`) is used where it is provably identical.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from copy import copy as _shallow_copy
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from tokenizers import Tokenizer

__all__ = ["TokenizerSettings", "TextTokenizer", "median_token_length", "unknown_token_id"]


@dataclass(frozen=True)
class TokenizerSettings:
    """How text becomes ids for one model (an explicit, documented model setting).

    Attributes:
        max_length: Keep at most this many tokens per text (``None``: no limit).
        truncation_side: ``"right"`` keeps the first ``max_length`` tokens, ``"left"`` the last.
        drop_unknown: Remove the unknown-token id after truncation (model2vec 0.10 does; ST 6.2 does not).
        char_limit: Cut each text to this many characters before tokenizing (model2vec 0.10 uses
            ``max_length * median_token_length``); ``None``: no cut.
    """

    max_length: int | None
    truncation_side: Literal["right", "left"] = "right"
    drop_unknown: bool = False
    char_limit: int | None = None


# In compact JSON an unescaped quote only delimits strings, and only the top-level "model" key holds a
# Unigram model object, so this match is unambiguous; anything else falls back to a full JSON parse.
_UNIGRAM_UNK = re.compile(r'(?<!\\)"model":\{"type":"Unigram","unk_id":(null|[0-9]+)[,}]')


def unknown_token_id(tokenizer: Tokenizer) -> int | None:
    """The id of the unknown token as model2vec 0.10 determines it (``None`` if the model has none)."""
    model = tokenizer.model
    if hasattr(model, "unk_token"):
        token = model.unk_token
        return None if token is None else tokenizer.token_to_id(token)
    text = tokenizer.to_str()
    found = _UNIGRAM_UNK.findall(text)
    if len(found) == 1:  # Unigram: skip parsing a vocabulary of hundreds of thousands of pieces
        return None if found[0] == "null" else int(found[0])
    unk = json.loads(text)["model"].get("unk_id")
    return None if unk is None else int(unk)


def median_token_length(tokenizer: Tokenizer) -> int:
    """``int(median(len(token)))`` over the vocabulary including added tokens, as model2vec computes it."""
    vocab = tokenizer.get_vocab()
    return int(np.median([len(token) for token in vocab]))


def _plain(tokenizer: Tokenizer, *, copy: bool) -> Tokenizer:
    if copy:
        tokenizer = Tokenizer.from_str(tokenizer.to_str())
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


class TextTokenizer:
    """Turns texts into flat ids + offsets under a model's :class:`TokenizerSettings`.

    Args:
        tokenizer: The model's tokenizer. Padding and truncation are disabled on it (on a copy unless
            ``copy=False``, for a tokenizer the caller owns: a copy of a large vocabulary costs a full re-parse).
        settings: Truncation / unknown-token rules.
        fast: Use the exact word-cache fast path where it applies.
        copy: Work on a copy of ``tokenizer`` and leave the caller's object untouched.
    """

    def __init__(self, tokenizer: Tokenizer, settings: TokenizerSettings, *, fast: bool = True, copy: bool = True) -> None:
        self.tokenizer = _plain(tokenizer, copy=copy)
        self.settings = settings
        self.unk_id = unknown_token_id(self.tokenizer)
        self._fast: Any = None
        if fast:
            from staticst.fasttok import FastTokenizer

            candidate = FastTokenizer(self.tokenizer, cache_size=200_000)
            if candidate.fast_path:
                self._fast = candidate

    def with_settings(self, settings: TokenizerSettings) -> TextTokenizer:
        """The same tokenizer (and word cache) under other truncation / unknown-token rules."""
        clone = _shallow_copy(self)
        clone.settings = settings
        return clone

    @property
    def fast_path(self) -> bool:
        """Whether the exact word-cache fast path is active for this tokenizer."""
        return self._fast is not None

    def raw_ids(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Ids of ``texts`` with no truncation or unknown-token removal: ``(ids int64, offsets int64)``."""
        if self._fast is not None:
            ids, offsets = self._fast.encode_flat(texts)
            return np.asarray(ids, dtype=np.int64), np.asarray(offsets, dtype=np.int64)
        encodings = self.tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        offsets = np.zeros(len(encodings) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64, count=int(offsets[-1]))
        return ids, offsets

    def encode_one(self, text: str) -> list[int]:
        """The ids pooled for one text (the same rules as :meth:`encode_flat`), as a list."""
        limit = self.settings.char_limit
        if limit is not None and len(text) > limit:
            text = text[:limit]
        if self._fast is not None:
            ids: list[int] = self._fast.encode_one(text)
        else:
            ids = list(self.tokenizer.encode(text, add_special_tokens=False).ids)
        settings = self.settings
        max_length = settings.max_length
        if max_length is not None and len(ids) > max_length:
            ids = ids[:max_length] if settings.truncation_side == "right" else ids[len(ids) - max_length :]
        unk = self.unk_id
        if settings.drop_unknown and unk is not None and unk in ids:
            ids = [i for i in ids if i != unk]
        return ids

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Ids after the model's character cut, token truncation and unknown-token rules.

        Returns:
            ``(ids, offsets)``: ``ids[offsets[i]:offsets[i + 1]]`` are the ids pooled for ``texts[i]``.
        """
        limit = self.settings.char_limit
        if limit is not None and texts and max(map(len, texts)) > limit:
            texts = [t if len(t) <= limit else t[:limit] for t in texts]
        ids, offsets = self.raw_ids(texts)
        return apply_rules(ids, offsets, self.settings, self.unk_id)


def apply_rules(
    ids: np.ndarray, offsets: np.ndarray, settings: TokenizerSettings, unk_id: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Apply truncation then unknown-token removal to flat ids (vectorised, no per-text loop)."""
    max_length = settings.max_length
    drop = settings.drop_unknown and unk_id is not None
    lengths = np.diff(offsets)
    need_trunc = max_length is not None and bool((lengths > max_length).any())
    if not need_trunc and not drop:
        return ids, offsets
    keep = np.ones(len(ids), dtype=bool)
    if need_trunc:
        assert max_length is not None
        starts = np.repeat(offsets[:-1], lengths)
        pos = np.arange(len(ids), dtype=np.int64) - starts
        if settings.truncation_side == "right":
            keep &= pos < max_length
        else:
            keep &= pos >= np.repeat(lengths, lengths) - max_length
    if drop:
        keep &= ids != unk_id
    text_index = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    kept_per_text = np.bincount(text_index[keep], minlength=len(lengths))
    new_offsets = np.zeros_like(offsets)
    np.cumsum(kept_per_text, out=new_offsets[1:])
    return ids[keep], new_offsets
