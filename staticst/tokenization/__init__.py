"""Tokenization: the model's own tokenizer, each reference's token rules, and an exact fast path.

``settings`` (the rules as data), ``text`` (:class:`TextTokenizer`, what the engine calls), ``fast`` (the
word-cache fast path), ``plan`` (the verified pipeline as data), ``pretokenizers`` (one class per
pre-tokenizer family) and ``cache`` (the bounded word cache).
"""

from __future__ import annotations

from staticst.tokenization.settings import TokenizerSettings, median_token_length, unknown_token_id
from staticst.tokenization.text import TextTokenizer

__all__ = ["TextTokenizer", "TokenizerSettings", "median_token_length", "unknown_token_id"]
