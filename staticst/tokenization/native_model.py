"""The tokenizer model in C: a :class:`staticst._kernel.TokenModel` built from a Hugging Face tokenizer.

:func:`build_token_model` reads the model section of the tokenizer (``tokenizer.model.__getstate__()``, the
JSON ``tokenizers`` serializes it to, whose numbers round-trip exactly) and its vocabulary, and builds the
native model: WordPiece, Unigram or BPE, exact against ``tokenizer.model.tokenize(word)`` — the ids of one
pre-token, unknown tokens included (the reference's unknown-token rules apply after it). What the C models
copy from the ``tokenizers`` sources, rule by rule, is written at the top of ``csrc/model_*.c``.

A model the kernel does not implement raises :class:`UnsupportedModel` with the reason (the pipeline then
keeps the Hugging Face tokenizer for it): another model type (WordLevel), BPE dropout (random by design),
Unigram sampling (``alpha``), or a setting this version of the kernel does not know.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tokenizers import Tokenizer

if TYPE_CHECKING:
    from staticst._kernel import TokenModel

__all__ = ["KNOWN_FIELDS", "UnsupportedModel", "build_token_model", "model_section"]

#: The model fields each implemented type may carry (``type`` included); any other field with a value set
#: is refused by name, so a newer ``tokenizers`` feature is never silently ignored.
KNOWN_FIELDS: dict[str, frozenset[str]] = {
    "WordPiece": frozenset({"type", "vocab", "unk_token", "continuing_subword_prefix", "max_input_chars_per_word"}),
    "Unigram": frozenset({"type", "vocab", "unk_id", "byte_fallback"}),
    "BPE": frozenset(
        {
            "type",
            "vocab",
            "merges",
            "dropout",
            "unk_token",
            "continuing_subword_prefix",
            "end_of_word_suffix",
            "fuse_unk",
            "byte_fallback",
            "ignore_merges",
        }
    ),  # fmt: skip
}


class UnsupportedModel(ValueError):
    """The kernel has no exact native version of this tokenizer model; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def model_section(tokenizer: Tokenizer) -> dict[str, Any]:
    """The tokenizer's model as ``tokenizers`` serializes it (a dict with ``type``, ``vocab``, ...)."""
    state = tokenizer.model.__getstate__()
    section = json.loads(state)
    if not isinstance(section, dict) or "type" not in section:
        raise UnsupportedModel(f"the tokenizer's model serializes to something without a type: {str(state)[:80]!r}")
    return section


def _token_model_type() -> type[TokenModel]:
    try:
        from staticst._kernel import TokenModel  # typed by staticst/_kernel.pyi
    except ImportError as exc:
        raise UnsupportedModel(f"the compiled kernel is not built ({exc})") from exc
    return TokenModel


def _check_fields(kind: str, section: dict[str, Any]) -> None:
    unknown = sorted(key for key, value in section.items() if key not in KNOWN_FIELDS[kind] and value is not None)
    if unknown:
        raise UnsupportedModel(f"the {kind} model has settings the native kernel does not implement: {unknown}")


def build_token_model(tokenizer: Tokenizer, section: dict[str, Any] | None = None) -> TokenModel:
    """Build the native model of ``tokenizer`` (a ``tokenizers.Tokenizer``).

    Args:
        tokenizer: The Hugging Face tokenizer whose model to build.
        section: Its model section, if the caller already parsed it (:func:`model_section`); read here otherwise.

    Returns:
        A ``staticst._kernel.TokenModel``: ``encode(word)`` gives ``[t.id for t in tokenizer.model.tokenize(word)]``.

    Raises:
        UnsupportedModel: the kernel is not built, or has no exact version of this model (the reason says which).
    """
    token_model = _token_model_type()
    section = model_section(tokenizer) if section is None else section
    kind = section.get("type")
    if kind not in KNOWN_FIELDS:
        raise UnsupportedModel(f"no native {kind} model (native: {', '.join(KNOWN_FIELDS)})")
    _check_fields(kind, section)
    if kind == "WordPiece":
        return token_model.wordpiece(
            tokenizer.get_vocab(with_added_tokens=False),
            section["unk_token"],
            section["continuing_subword_prefix"],
            int(section["max_input_chars_per_word"]),
        )
    if kind == "Unigram":
        alpha = getattr(tokenizer.model, "alpha", None)  # sampling lives on the Python object, not in the JSON
        if alpha is not None and float(alpha) != 0.0:
            raise UnsupportedModel(f"Unigram sampling (alpha={alpha!r}) is random: only the Viterbi path is native")
        return token_model.unigram(section["vocab"], section.get("unk_id"), bool(section.get("byte_fallback")))
    dropout = section.get("dropout")
    if dropout is not None and float(dropout) != 0.0:
        raise UnsupportedModel(f"BPE dropout ({dropout!r}) is random: only dropout None or 0.0 is native")
    return token_model.bpe(
        tokenizer.get_vocab(with_added_tokens=False),
        section["merges"],
        section.get("unk_token"),
        section.get("continuing_subword_prefix"),
        section.get("end_of_word_suffix"),
        bool(section.get("fuse_unk")),
        bool(section.get("byte_fallback")),
        bool(section.get("ignore_merges")),
    )
