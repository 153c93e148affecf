r"""The pre-tokenizer families of the fast path: one small class each, plus the registry that picks one.

A family says how *normalised ASCII* text becomes cache keys (the units the word cache stores) and how a
key becomes the pre-tokens the tokenizer's model is run on. Keys never cross a pre-token boundary, so the
ids of a text are the concatenation of the ids of its keys. :func:`family_for` reads a tokenizer's
pipeline spec and returns the family whose rules are equivalent on ASCII text, or raises
:class:`Unsupported` with the reason.

======================  ==============================================  ====================================
family                  Hugging Face pre-tokenizer                      cache key
======================  ==============================================  ====================================
:class:`WhitespaceSplit` ``WhitespaceSplit``; ``[WhitespaceSplit,          a whitespace-free chunk (``str.split``)
                         Metaspace]`` (prefix ``▁``)
:class:`BertSplit`       ``BertPreTokenizer``                            a chunk; its words and punctuation
                                                                         are its pre-tokens
:class:`WordSplit`       ``Whitespace`` (``\w+|[^\w\s]+``)              a chunk; its word / non-word runs
:class:`MetaspaceSplit`  ``Metaspace`` (``split=True``)                   ``" word"`` or ``" "``
:class:`LlamaSpaceSplit` none, with ``Prepend("▁") + Replace(" ", "▁")``  a word between single spaces
                         (Llama BPE)
======================  ==============================================  ====================================
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from tokenizers import Tokenizer

__all__ = [
    "BertSplit",
    "LlamaSpaceSplit",
    "MetaspaceSplit",
    "PreTokenizerFamily",
    "Unsupported",
    "WhitespaceSplit",
    "WordSplit",
    "family_for",
]

# Rust ``char::is_whitespace`` restricted to ASCII (Python's ``str.isspace`` also counts \x1c-\x1f).
RUST_WS = "\t\n\x0b\x0c\r "
# Rust ``char::is_ascii_punctuation``: every ASCII punctuation and symbol character.
ASCII_PUNCT = "".join(chr(c) for c in range(128) if chr(c) in r"""!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~""")
_ASCII_WORD = "A-Za-z0-9_"  # Rust regex ``\w`` on ASCII


class Unsupported(Exception):
    """The pipeline has no verified fast path (the message says why)."""


def char_class(chars: str) -> str:
    """A regex character class body matching exactly ``chars``."""
    return "".join(re.escape(c) for c in chars)


class PreTokenizerFamily:
    r"""How normalised ASCII text becomes cache keys, and a key the model's pre-tokens.

    Attributes:
        name: The family's name (shown by ``info()``).
        separators: Characters that only ever separate keys (mapping one to another is harmless).
        joinable: Whether the keys of many texts can come from one split of the joined batch.
        python_whitespace: Keys come from ``str.split()``, which also splits at ``\x1c``-``\x1f``
            (Rust's ``is_whitespace`` does not): texts holding those take another route.
        prepend_space: A space is put before non-empty text that does not start with one.
        prefix: Prepended to every pre-token (Metaspace's replacement character, or ``""``).
    """

    name: ClassVar[str] = ""
    #: The compiled kernel's word-cache mode for this family, by name (``_kernel.MODES``; csrc/kernel.h's
    #: ``enum st_mode``), or ``None``: no mode
    kernel_mode: ClassVar[str | None] = None
    separators: ClassVar[str] = ""
    joinable: ClassVar[bool] = True
    python_whitespace: ClassVar[bool] = False
    prepend_space: bool = False
    prefix: str = ""

    def accepts(self, text: str) -> bool:
        """Whether the raw ``text`` can take the fast path at all (before normalisation)."""
        return True

    def keys(self, text: str) -> list[str]:
        """The cache keys of one non-empty normalised text."""
        raise NotImplementedError

    def batch_keys(self, joined: str) -> list[str]:
        r"""The cache keys of normalised texts joined by ``" \x80 "`` (and ended by it): markers stay keys."""
        raise NotImplementedError

    def pre_tokens(self, key: str) -> list[str]:
        """The pre-tokens of one key, as the tokenizer's model receives them."""
        return [self.prefix + key]


class WhitespaceSplit(PreTokenizerFamily):
    """``WhitespaceSplit`` (optionally followed by a Metaspace that only prefixes each word)."""

    name = "whitespace"
    kernel_mode = "whitespace"
    separators = RUST_WS
    python_whitespace = True

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def keys(self, text: str) -> list[str]:  # noqa: D102 - see the base class
        return text.split()

    def batch_keys(self, joined: str) -> list[str]:  # noqa: D102
        return joined.split()


class _PatternChunks(WhitespaceSplit):
    """A whitespace chunk is one key; ``pattern`` finds its pre-tokens (whitespace always separates)."""

    pattern: ClassVar[re.Pattern[str]]

    def pre_tokens(self, key: str) -> list[str]:  # noqa: D102
        return [self.prefix + piece for piece in self.pattern.findall(key)]


class BertSplit(_PatternChunks):
    """``BertPreTokenizer``: whitespace splits, and every punctuation character is a pre-token of its own."""

    name = "bert"
    kernel_mode = "bert"
    pattern = re.compile(f"[^{char_class(ASCII_PUNCT)}]+|[{char_class(ASCII_PUNCT)}]")


class WordSplit(_PatternChunks):
    """``Whitespace``: runs of word characters and runs of other non-space characters."""

    name = "whitespace-words"
    kernel_mode = "words"
    pattern = re.compile(f"[{_ASCII_WORD}]+|[^{_ASCII_WORD}]+")


class MetaspaceSplit(PreTokenizerFamily):
    """``Metaspace(split=True)``: spaces become the replacement character, which starts every pre-token."""

    name = "metaspace"
    kernel_mode = "metaspace"
    joinable = False
    _pattern = re.compile("[ ]?[^ ]+|[ ]")

    def __init__(self, replacement: str, prepend_space: bool) -> None:
        self.replacement = replacement
        self.prepend_space = prepend_space

    def keys(self, text: str) -> list[str]:  # noqa: D102
        return self._pattern.findall(text)

    def pre_tokens(self, key: str) -> list[str]:  # noqa: D102
        return [key.replace(" ", self.replacement)]


class LlamaSpaceSplit(PreTokenizerFamily):
    """Llama-style BPE with no pre-tokenizer: ``"a b"`` is normalised to ``"▁a▁b"``, one pre-token.

    Valid only when no merge can cross a word boundary (checked by :func:`family_for`): then every
    ``▁word`` is tokenized on its own. Texts with a leading space or a double space take another route.
    """

    name = "llama-space"
    kernel_mode = "llama"

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def accepts(self, text: str) -> bool:  # noqa: D102
        return text[:1] != " " and "  " not in text

    def keys(self, text: str) -> list[str]:  # noqa: D102
        return text.split(" ")

    def batch_keys(self, joined: str) -> list[str]:  # noqa: D102
        keys = joined.split(" ")
        keys.pop()  # the "" after the last marker
        return keys


# ---------------------------------------------------------------------------------- the registry


def _metaspace(spec: dict[str, Any]) -> tuple[str, str]:
    """Validate a Metaspace spec; returns ``(replacement, prepend_scheme)``."""
    replacement = spec.get("replacement")
    scheme = spec.get("prepend_scheme")
    if not isinstance(replacement, str) or len(replacement) != 1 or replacement.isascii():
        raise Unsupported(f"Metaspace replacement {replacement!r} is not a single non-ASCII character")
    if spec.get("split") is not True:
        raise Unsupported("Metaspace with split=False keeps the whole text as one pre-token")
    if scheme not in ("always", "never", "first"):
        raise Unsupported(f"Metaspace prepend_scheme {scheme!r} is not supported")
    return replacement, scheme


def _sequence(spec: dict[str, Any]) -> PreTokenizerFamily:
    parts = spec.get("pretokenizers") or []
    if len(parts) == 1:
        return _from_spec(parts[0])
    if [p.get("type") for p in parts] == ["WhitespaceSplit", "Metaspace"]:
        replacement, scheme = _metaspace(parts[1])
        if scheme == "first":
            raise Unsupported("Metaspace prepend_scheme 'first' after another pre-tokenizer")
        return WhitespaceSplit(prefix=replacement if scheme == "always" else "")
    raise Unsupported(f"pre-tokenizer Sequence {[p.get('type') for p in parts]} is not supported")


def _metaspace_family(spec: dict[str, Any]) -> PreTokenizerFamily:
    replacement, scheme = _metaspace(spec)
    return MetaspaceSplit(replacement, prepend_space=scheme != "never")


#: Hugging Face pre-tokenizer type -> the family it is equivalent to on ASCII text.
_REGISTRY: dict[str, Any] = {
    "Sequence": _sequence,
    "BertPreTokenizer": lambda spec: BertSplit(),
    "WhitespaceSplit": lambda spec: WhitespaceSplit(),
    "Whitespace": lambda spec: WordSplit(),
    "Metaspace": _metaspace_family,
}


def _from_spec(spec: dict[str, Any]) -> PreTokenizerFamily:
    make = _REGISTRY.get(str(spec.get("type")))
    if make is None:
        raise Unsupported(f"pre-tokenizer {spec.get('type')!r} is not supported")
    family: PreTokenizerFamily = make(spec)
    return family


def _llama_family(config: dict[str, Any], tokenizer: Tokenizer) -> LlamaSpaceSplit:
    """Llama/SentencePiece-style BPE with no pre-tokenizer, when merges cannot cross a word boundary.

    The normaliser ``Prepend(r) + Replace(" ", r)`` turns ``"a b"`` into ``"▁a▁b"``, and the whole text
    is one pre-token. A merge joining two symbols across the boundary before an ``r`` produces a symbol
    with ``r`` after its first character. If every such merge result consists only of ``r`` (true for
    Llama: only ``"▁▁"``-style runs), it needs two adjacent ``r``. Texts without a leading space and
    without a double space have none, so every ``r`` starts an independent segment ``r + word``
    (``ignore_merges`` is rejected; ``r`` is in the vocabulary, so unknown-token fusing cannot cross it).
    """
    norm = config.get("normalizer") or {}
    parts = norm.get("normalizers") if norm.get("type") == "Sequence" else None
    if not parts or [p.get("type") for p in parts] != ["Prepend", "Replace"]:
        raise Unsupported("no pre-tokenizer and the normalizer is not Prepend + Replace")
    replacement = parts[0].get("prepend")
    replace = parts[1]
    if (
        not isinstance(replacement, str)
        or len(replacement) != 1
        or replacement.isascii()
        or replace.get("pattern") != {"String": " "}
        or replace.get("content") != replacement
    ):
        raise Unsupported("no pre-tokenizer and the normalizer is not Prepend(r) + Replace(' ', r)")
    model = config["model"]
    if model.get("type") != "BPE":
        raise Unsupported("no pre-tokenizer and the model is not BPE")
    if model.get("ignore_merges") or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise Unsupported("BPE with ignore_merges or subword prefix/suffix and no pre-tokenizer")
    if tokenizer.token_to_id(replacement) is None:
        raise Unsupported(f"BPE vocabulary has no {replacement!r}")
    # Every merge result is a vocabulary token (tokenizers refuses to load a BPE model otherwise), so a
    # vocabulary with no such token proves it for all merges without parsing them.
    if any(replacement in token[1:] and set(token) != {replacement} for token in tokenizer.get_vocab(False)):
        for merge in json.loads(tokenizer.to_str())["model"].get("merges", []):
            left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
            merged = left + right
            if replacement in merged[1:] and set(merged) != {replacement}:
                raise Unsupported(f"BPE merge {merge!r} can join symbols across a word boundary")
    return LlamaSpaceSplit(prefix=replacement)


def family_for(config: dict[str, Any], tokenizer: Tokenizer) -> PreTokenizerFamily:
    """The pre-tokenizer family equivalent to ``tokenizer``'s pipeline on ASCII text.

    Args:
        config: The pipeline spec (normalizer, pre_tokenizer, post_processor, model) as JSON dicts.
        tokenizer: The tokenizer itself (read for the Llama-BPE vocabulary proof).

    Raises:
        Unsupported: No family reproduces this pipeline exactly.
    """
    spec = config.get("pre_tokenizer")
    if spec is None:
        return _llama_family(config, tokenizer)
    return _from_spec(spec)
