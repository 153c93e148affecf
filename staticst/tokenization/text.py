"""Text -> flat token ids + offsets, with each reference library's truncation and unknown-token rules.

The core works on a flat ``int64`` id array and ``offsets`` (``len(texts) + 1`` boundaries), never on
per-sentence Python lists of vectors. Tokenization itself is exact: ids are those of the model's own
``tokenizers.Tokenizer`` with ``add_special_tokens=False``; a word-cache fast path
(:mod:`staticst.tokenization.fast`) is used where it is provably identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import copy as _shallow_copy

import numpy as np
from tokenizers import Tokenizer

from staticst.tokenization.fast import FastTokenizer, hf_flat
from staticst.tokenization.guard import tokenizer_call
from staticst.tokenization.reloadable import ReloadableTokenizer
from staticst.tokenization.settings import TokenizerSettings, apply_rules, apply_rules_one, unknown_token_id

__all__ = ["TextTokenizer"]

#: Words kept in the fast path's word cache of one model.
WORD_CACHE_SIZE = 200_000


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

    def __init__(
        self, tokenizer: Tokenizer, settings: TokenizerSettings, *, fast: bool = True, copy: bool = True
    ) -> None:
        # stands in for the tokenizer: the engine may release its memory once a native pipeline tokenizes
        self.tokenizer = ReloadableTokenizer.wrap(_plain(tokenizer, copy=copy))
        self.settings = settings
        self.unk_id = unknown_token_id(self.tokenizer)
        #: Tokens in the vocabulary, added tokens included (known without the tokenizer once it is released).
        self.vocab_size = int(self.tokenizer.get_vocab_size(with_added_tokens=True))
        self._fast: FastTokenizer | None = None
        self.fast_path_reason = "disabled"
        if fast:
            candidate = FastTokenizer(self.tokenizer, cache_size=WORD_CACHE_SIZE)
            self.fast_path_reason = candidate.fast_path_reason
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

    @property
    def fast(self) -> FastTokenizer | None:
        """The word-cache fast path (shared by every :meth:`with_settings` copy), or ``None``."""
        return self._fast

    def raw_ids(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Ids of ``texts`` with no truncation or unknown-token removal: ``(ids, offsets int64)``."""
        ids, offsets = self._fast.encode_flat(texts) if self._fast is not None else hf_flat(self.tokenizer, list(texts))
        return ids.astype(np.int64), offsets

    def cut(self, text: str) -> str:
        """``text`` after the settings' character cut (model2vec's ``max_length * median token length``)."""
        limit = self.settings.char_limit
        return text if limit is None or len(text) <= limit else text[:limit]

    def cut_all(self, texts: Sequence[str]) -> Sequence[str]:
        """:meth:`cut` of every text (the same sequence when none is long enough to cut)."""
        limit = self.settings.char_limit
        if limit is not None and texts and max(map(len, texts)) > limit:
            return [t if len(t) <= limit else t[:limit] for t in texts]
        return texts

    def encode_one(self, text: str) -> list[int]:
        """The ids pooled for one text (the same rules as :meth:`encode_flat`), as a list."""
        text = self.cut(text)
        if self._fast is not None:
            ids: list[int] = self._fast.encode_one(text)
        else:
            ids = list(tokenizer_call(self.tokenizer.encode, text, add_special_tokens=False).ids)
        return apply_rules_one(ids, self.settings, self.unk_id)

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Ids after the model's character cut, token truncation and unknown-token rules.

        Returns:
            ``(ids, offsets)``: ``ids[offsets[i]:offsets[i + 1]]`` are the ids pooled for ``texts[i]``.
        """
        ids, offsets = self.raw_ids(self.cut_all(texts))
        return apply_rules(ids, offsets, self.settings, self.unk_id)
