"""The reference families: each reference library's numeric semantics, described once, as data.

A model loaded from disk belongs to the family of its layout (:mod:`staticst.persistence.layout`).
The family says, in one place:

* **tokens**: whether the unknown token is dropped, where the token limit comes from (the model's
  ``config.json`` or the tokenizer's own truncation) and its default, and whether texts are first cut
  to ``max_length * median token length`` characters;
* **pooling**: the arithmetic of :data:`staticst.pooling.ARITHMETICS` that reproduces the reference's
  rounding;
* **saving**: the layout :func:`staticst.persistence.save.write_model` writes a model of this family in.

================================  ==================================  ===========================================
family                            tokens                              pooling / saved as
================================  ==================================  ===========================================
``model2vec`` (model2vec 0.10)    ``[UNK]`` dropped; ``max_length``   numpy mean, ``x / (||x|| + 1e-32)`` / the
                                  from config.json (default 512);     model2vec layout
                                  texts cut to ``max_length * median
                                  token length`` characters first
``sentence-transformers`` (6.2)   ``[UNK]`` kept; the tokenizer's own  ``EmbeddingBag`` mean, ``x / max(||x||,
                                  truncation (none by default)        1e-12)`` / the sentence-transformers layout
================================  ==================================  ===========================================

A new family is one :class:`Family` entry in :data:`FAMILIES` plus, if its rounding differs from both,
one entry in :data:`staticst.pooling.ARITHMETICS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tokenizers import Tokenizer

from staticst.pooling import ArithmeticName, PoolingConfig
from staticst.tokenization import TokenizerSettings, median_token_length

__all__ = ["FAMILIES", "MODEL2VEC", "SENTENCE_TRANSFORMERS", "Family"]


@dataclass(frozen=True)
class Family:
    """One reference library's semantics.

    Attributes:
        name: The family's name (``info()["family"]``).
        reference: The reference library and version whose outputs this family reproduces.
        arithmetic: The pooling arithmetic (a key of :data:`staticst.pooling.ARITHMETICS`).
        drop_unknown: Remove the unknown token's id after truncation.
        max_length_from: ``"config"``: the ``max_length`` key of the model's config; ``"tokenizer"``: the
            tokenizer's saved truncation (its ``max_length`` and direction).
        default_max_length: The limit when the config has no ``max_length`` key.
        char_limit: Cut texts to ``max_length * median token length`` characters before tokenizing.
        save_layout: The layout (a name in :data:`staticst.persistence.layout.LAYOUTS`) models of this family
            are saved in.
    """

    name: str
    reference: str
    arithmetic: ArithmeticName
    drop_unknown: bool
    max_length_from: Literal["config", "tokenizer"]
    default_max_length: int | None
    char_limit: bool
    save_layout: str

    def pooling(self, normalize: bool) -> PoolingConfig:
        """The pooling configuration of a model of this family."""
        return PoolingConfig(arithmetic=self.arithmetic, normalize=normalize)

    def median_length(self, tokenizer: Tokenizer) -> int:
        """The median token length the character cut uses (0 when this family does not cut)."""
        return median_token_length(tokenizer) if self.char_limit else 0

    def tokenizer_settings(
        self, config: Mapping[str, Any], truncation: Mapping[str, Any] | None, median_length: int
    ) -> TokenizerSettings:
        """The token rules of a model of this family as loaded from disk.

        Args:
            config: The model's config (``config.json`` of a model2vec-layout folder; empty otherwise).
            truncation: The tokenizer's saved truncation settings (``tokenizers.Tokenizer.truncation``).
            median_length: :meth:`median_length` of the model's tokenizer.
        """
        if self.max_length_from == "config":
            max_length = config.get("max_length", self.default_max_length)
            side: Literal["right", "left"] = "right"
        else:
            max_length = int(truncation["max_length"]) if truncation else self.default_max_length
            side = "left" if truncation and str(truncation.get("direction", "")).lower() == "left" else "right"
        return self.with_max_length(TokenizerSettings(max_length=None, truncation_side=side), max_length, median_length)

    def with_max_length(self, settings: TokenizerSettings, max_length: int | None, median_length: int) -> TokenizerSettings:
        """``settings`` with another token limit, and the character cut this family derives from it."""
        char_limit = max_length * median_length if self.char_limit and max_length is not None else None
        return TokenizerSettings(
            max_length=max_length,
            truncation_side=settings.truncation_side,
            drop_unknown=self.drop_unknown,
            char_limit=char_limit,
        )


MODEL2VEC = Family(
    name="model2vec",
    reference="model2vec 0.10",
    arithmetic="model2vec",
    drop_unknown=True,
    max_length_from="config",
    default_max_length=512,
    char_limit=True,
    save_layout="model2vec",
)

SENTENCE_TRANSFORMERS = Family(
    name="sentence-transformers",
    reference="sentence-transformers 6.2",
    arithmetic="sentence-transformers",
    drop_unknown=False,
    max_length_from="tokenizer",
    default_max_length=None,
    char_limit=False,
    save_layout="sentence-transformers",
)

#: The known families by name.
FAMILIES: dict[str, Family] = {f.name: f for f in (MODEL2VEC, SENTENCE_TRANSFORMERS)}
