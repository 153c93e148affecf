"""Each model's token rules as data: the limit, the truncation side, the unknown token and the character cut.

:class:`TokenizerSettings` is an explicit, documented model setting; :func:`apply_rules` applies it to flat
ids. The values for a loaded model come from its reference family (:mod:`staticst.families`).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Literal

import numpy as np
from tokenizers import Tokenizer

__all__ = ["TokenizerSettings", "apply_rules", "median_token_length", "unknown_token_id"]


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

    def __post_init__(self) -> None:
        # Validated here, where every way of building settings passes (loader, with_settings, max_seq_length):
        # a limit past ssize_t cannot reach the native kernel, so it is named here, not an OverflowError later.
        for name, value, low in (("max_length", self.max_length, 1), ("char_limit", self.char_limit, 0)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not low <= value <= sys.maxsize
            ):
                raise ValueError(
                    f"{name} is {value!r}; use an integer from {low} to {sys.maxsize} (sys.maxsize), or None for no limit."
                )
        if self.truncation_side not in ("right", "left"):
            raise ValueError(f"truncation_side is {self.truncation_side!r}; use 'right' or 'left'.")


# In compact JSON an unescaped quote only delimits strings, and only the top-level "model" key holds a
# Unigram model object, so this match is unambiguous; anything else falls back to a full JSON parse.
UNIGRAM_UNK = re.compile(r'(?<!\\)"model":\{"type":"Unigram","unk_id":(null|[0-9]+)[,}]')


def unknown_token_id(tokenizer: Tokenizer) -> int | None:
    """The id of the unknown token as model2vec 0.10 determines it (``None`` if the model has none)."""
    model = tokenizer.model
    if hasattr(model, "unk_token"):
        token = model.unk_token
        return None if token is None else tokenizer.token_to_id(token)
    text = tokenizer.to_str()
    found = UNIGRAM_UNK.findall(text)
    if len(found) == 1:  # Unigram: skip parsing a vocabulary of hundreds of thousands of pieces
        return None if found[0] == "null" else int(found[0])
    unk = json.loads(text)["model"].get("unk_id")
    return None if unk is None else int(unk)


def median_token_length(tokenizer: Tokenizer) -> int:
    """``int(median(len(token)))`` over the vocabulary including added tokens, as model2vec computes it."""
    vocab = tokenizer.get_vocab()
    return int(np.median([len(token) for token in vocab]))


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


def apply_rules_one(ids: list[int], settings: TokenizerSettings, unk_id: int | None) -> list[int]:
    """:func:`apply_rules` for the ids of one text, on a list (the short path of ``encode(str)``)."""
    max_length = settings.max_length
    if max_length is not None and len(ids) > max_length:
        ids = ids[:max_length] if settings.truncation_side == "right" else ids[len(ids) - max_length :]
    if settings.drop_unknown and unk_id is not None and unk_id in ids:
        ids = [i for i in ids if i != unk_id]
    return ids
