"""The verified fast-path plan of one tokenizer: its pre-tokenizer family and its normaliser on ASCII, as data.

:func:`build_plan` whitelists the pipeline's component types, picks the pre-tokenizer family
(:mod:`staticst.tokenization.pretokenizers`) and reads the normaliser's action on every ASCII character and
every pair of ASCII characters from the tokenizer itself. The result, a :class:`Plan`, says which
characters are deleted, whether text is lowercased, any other per-character mapping, and which substrings
send a text to the Hugging Face tokenizer (added tokens, pairs that do not normalise character by
character). The Python fast path and the compiled kernel both run from it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tokenizers import Tokenizer

from staticst.tokenization.pretokenizers import PreTokenizerFamily, Unsupported, char_class, family_for

__all__ = ["Plan", "build_plan", "pipeline_config"]

_CHAR_LOCAL_NORMALIZERS = {"BertNormalizer", "Lowercase", "NFC", "NFD", "NFKC", "NFKD", "StripAccents", "Precompiled"}
_POST_PROCESSORS = {"TemplateProcessing", "BertProcessing", "RobertaProcessing", "ByteLevel"}
_MODELS = {"WordPiece", "WordLevel", "Unigram", "BPE"}


@dataclass(frozen=True)
class Plan:
    """Everything the fast path needs; immutable, so it is shared safely between threads.

    Attributes:
        family: The pre-tokenizer family.
        delete: Characters the normaliser removes (a compiled character class), if any.
        lower: The normaliser lowercases ASCII letters.
        translate: Any remaining per-character mapping (``str.translate`` table), if the normaliser is not
            "delete some characters, then maybe lowercase".
        table: The normaliser's output for each of the 128 ASCII characters.
        raw_substrings: A text containing one of these goes to the Hugging Face tokenizer.
        normalized_substrings: ... or whose normalised form contains one of these.
        special: Characters that start a raw substring or are deleted (texts holding one are checked).
        joiner: An ASCII character not matched by ``special``.
    """

    family: PreTokenizerFamily
    delete: re.Pattern[str] | None
    lower: bool
    translate: dict[int, str] | None
    table: tuple[str, ...]
    raw_substrings: tuple[str, ...]
    normalized_substrings: tuple[str, ...]
    special: re.Pattern[str] | None
    joiner: str

    @property
    def joined_route(self) -> bool:
        """Whether plain texts can share one split of the joined batch (no per-text normalisation)."""
        return self.family.joinable and self.translate is None and not self.family.prepend_space


def _state(component: Any) -> dict[str, Any] | None:
    """The JSON spec of a tokenizer component (``None`` if absent)."""
    if component is None:
        return None
    spec = json.loads(component.__getstate__())
    return spec if isinstance(spec, dict) else None


def pipeline_config(tokenizer: Tokenizer) -> dict[str, Any]:
    """The pipeline spec, read per component (cheap even for a large vocabulary)."""
    model = tokenizer.model
    model_spec: dict[str, Any] = {"type": type(model).__name__}
    if model_spec["type"] == "BPE":
        model_spec.update(
            dropout=model.dropout,
            ignore_merges=model.ignore_merges,
            continuing_subword_prefix=model.continuing_subword_prefix,
            end_of_word_suffix=model.end_of_word_suffix,
        )
    return {
        "normalizer": _state(tokenizer.normalizer),
        "pre_tokenizer": _state(tokenizer.pre_tokenizer),
        "post_processor": _state(tokenizer.post_processor),
        "model": model_spec,
    }


def _check_normalizer(spec: dict[str, Any] | None) -> None:
    if spec is None:
        return
    kind = spec.get("type")
    if kind == "Sequence":
        for part in spec.get("normalizers") or []:
            _check_normalizer(part)
        return
    if kind not in _CHAR_LOCAL_NORMALIZERS:
        raise Unsupported(f"normalizer {kind!r} is not supported")


def _check_components(config: dict[str, Any]) -> None:
    model = config.get("model") or {}
    if model.get("type") not in _MODELS:
        raise Unsupported(f"model {model.get('type')!r} is not supported")
    if model.get("type") == "BPE" and model.get("dropout") not in (None, 0, 0.0):
        raise Unsupported("BPE dropout makes tokenization random")
    post = config.get("post_processor")
    posts = (post.get("processors") or [] if post.get("type") == "Sequence" else [post]) if post else []
    for p in posts:
        if p.get("type") not in _POST_PROCESSORS:
            raise Unsupported(f"post-processor {p.get('type')!r} is not supported")


def _odd_pairs(normalize: Callable[[str], str], table: list[str]) -> tuple[str, ...]:
    """ASCII pairs the normaliser does not map character by character (at most 8, else unsupported)."""
    # All 16384 pairs in one string first: for these character/grapheme-local normaliser types an odd
    # pair shows up there too, and the usual answer ("none") then costs one call instead of 16384.
    pairs = [chr(a) + chr(b) for a in range(128) for b in range(128)]
    if normalize("".join(pairs)) == "".join(table[ord(p[0])] + table[ord(p[1])] for p in pairs):
        return ()
    odd = tuple(p for p in pairs if normalize(p) != table[ord(p[0])] + table[ord(p[1])])
    if len(odd) > 8:
        raise Unsupported(f"the normalizer is not character-local on ASCII ({odd[:8]!r}...)")
    return odd


def build_plan(tokenizer: Tokenizer) -> Plan:
    """Work out and verify the fast path for ``tokenizer``.

    Raises:
        Unsupported: The pipeline has no verified fast path (the message says why).
    """
    config = pipeline_config(tokenizer)
    _check_components(config)
    family = family_for(config, tokenizer)
    if config.get("pre_tokenizer") is None:
        normalize: Callable[[str], str] = str  # Prepend + Replace: handled by the family
    else:
        _check_normalizer(config.get("normalizer"))
        normalizer = tokenizer.normalizer
        normalize = str if normalizer is None else normalizer.normalize_str

    # The normaliser is character-local on ASCII (whitelisted types; SentencePiece charsmaps are
    # grapheme-local, and the only multi-character ASCII grapheme is "\r\n"). Read its action on every
    # character and every pair from the tokenizer itself; a pair that does not compose becomes a
    # substring that sends the text to the HF tokenizer.
    table = [normalize(chr(c)) for c in range(128)]
    if not all(out.isascii() for out in table):
        raise Unsupported("the normalizer maps an ASCII character outside ASCII")
    odd_pairs = _odd_pairs(normalize, table)

    added = tokenizer.get_added_tokens_decoder().values()
    if config.get("pre_tokenizer") is None and any(tok.normalized for tok in added):
        raise Unsupported("an added token is matched on normalized text and there is no pre-tokenizer")
    raw_subs = {tok.content for tok in added if tok.content}
    norm_subs: set[str] = set()
    for tok in added:
        if tok.normalized and tok.content:
            norm_subs.add(tok.content)
            normalized = normalize(tok.content)
            if normalized:
                norm_subs.add(normalized)
    raw_subs.update(odd_pairs)
    if family.python_whitespace:
        raw_subs.update(chr(c) for c in range(128) if any(x in table[c] for x in "\x1c\x1d\x1e\x1f"))

    # Express the table as "delete some characters, then maybe lowercase" when it is exactly that (up
    # to replacing a separator by another separator, which splits identically); else translate with it.
    seps = "" if any(c in s for s in norm_subs for c in family.separators) else family.separators
    deleted = "".join(chr(c) for c in range(128) if table[c] == "")
    lower = any(table[c] == chr(c).lower() != chr(c) for c in range(128))
    simple = all(
        out == ("" if char in deleted else char.lower() if lower else char)
        or (char in seps and len(out) == 1 and out in seps)
        for char, out in zip(map(chr, range(128)), table, strict=True)
    )
    translate: dict[int, str] | None = None
    if not simple:
        translate = {c: out for c, out in enumerate(table) if out != chr(c)}
        deleted, lower = "", False
    starts_set = {sub[0] for sub in raw_subs} | set(deleted)
    if translate is None:
        # Without deletions (texts with deletable characters are flagged anyway) the normalised text is
        # the raw text lowercased character by character, so an occurrence of a normalised substring
        # starts at a raw character that lowercases to its first character: flag those texts too.
        heads = {sub[0] for sub in norm_subs}
        starts_set |= {chr(c) for c in range(128) if (chr(c).lower() if lower else chr(c)) in heads}
    starts = "".join(sorted(starts_set))
    joiner = next(c for c in "\n" + "".join(map(chr, range(128))) if c not in starts)
    return Plan(
        family=family,
        delete=re.compile(f"[{char_class(deleted)}]") if deleted else None,
        lower=lower,
        translate=translate,
        table=tuple(table),
        raw_substrings=tuple(sorted(raw_subs)),
        normalized_substrings=tuple(sorted(norm_subs)),
        special=re.compile(f"[{char_class(starts)}]") if starts else None,
        joiner=joiner,
    )
