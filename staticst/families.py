"""The reference families: each reference library's numeric semantics, described once, as data.

A model loaded from disk belongs to the family of its layout (:mod:`staticst.persistence.layout`).
The family says, in one place:

* **tokens**: whether the unknown token is dropped, where the token limit comes from (the model's
  ``config.json`` or the tokenizer's own truncation) and its default, and whether texts are first cut
  to ``max_length * median token length`` characters;
* **pooling**: the arithmetic of :data:`staticst.pooling.ARITHMETICS` that reproduces the reference's
  rounding;
* **normalisation**: where the reference reads whether output is L2-normalised (model2vec: the config's
  ``normalize``; sentence-transformers: a ``Normalize`` module in ``modules.json``);
* **saving**: the layout :func:`staticst.persistence.save.write_model` writes a model of this family in.

The family is chosen by the *face*, not by the folder: :class:`staticst.StaticSentenceTransformer` reads every
folder under :data:`SENTENCE_TRANSFORMERS` (what ``SentenceTransformer`` gives for it) and
:class:`staticst.StaticModel` under :data:`MODEL2VEC` (what ``model2vec.StaticModel`` gives).
``StaticSentenceTransformer(path, family="model2vec")`` is the one explicit setting that reads a folder under the
other reference's rules (e.g. to reproduce model2vec's published scores).

================================  ==================================  ===========================================
family                            tokens                              pooling / saved as
================================  ==================================  ===========================================
``model2vec`` (model2vec 0.10)    ``[UNK]`` dropped; ``max_length``   numpy mean, ``x / (||x|| + 1e-32)`` / the
                                  from config.json (default 512);     model2vec layout
                                  texts cut to ``max_length * median
                                  token length`` characters first
``sentence-transformers`` (6.3)   ``[UNK]`` kept; the tokenizer's own  ``EmbeddingBag`` mean, ``x / max(||x||,
                                  truncation (none by default)        1e-12)`` / the sentence-transformers layout
================================  ==================================  ===========================================

A new family is one :class:`Family` entry in :data:`FAMILIES` plus, if its rounding differs from both,
one entry in :data:`staticst.pooling.ARITHMETICS`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from tokenizers import Tokenizer

from staticst.pooling import ArithmeticName, PoolingConfig
from staticst.tokenization import TokenizerSettings, median_token_length


class _Resolved(Protocol):
    """What :meth:`Family.normalize` reads of a ``staticst.persistence.layout.ResolvedLayout`` (no import: no circle)."""

    @property
    def layout(self) -> Any: ...  # noqa: D102
    @property
    def config(self) -> dict[str, Any]: ...  # noqa: D102
    @property
    def st_config(self) -> dict[str, Any]: ...  # noqa: D102
    @property
    def modules_normalize(self) -> bool | None: ...  # noqa: D102


__all__ = ["FAMILIES", "MODEL2VEC", "SENTENCE_TRANSFORMERS", "Family", "family_named"]


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
        normalize_from: ``"config"``: the ``normalize`` key of the model's config (model2vec reads ``config.json``,
            or ``config_sentence_transformers.json`` in a sentence-transformers layout); ``"modules"``: a
            ``Normalize`` module in ``modules.json`` (the config's key where the folder has no ``modules.json``).
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
    normalize_from: Literal["config", "modules"]
    save_layout: str

    def pooling(self, normalize: bool) -> PoolingConfig:
        """The pooling configuration of a model of this family."""
        return PoolingConfig(arithmetic=self.arithmetic, normalize=normalize)

    def normalize(self, resolved: _Resolved) -> bool:
        """Whether this family's reference L2-normalises the output of the folder ``resolved``."""
        if self.normalize_from == "modules" and resolved.modules_normalize is not None:
            return resolved.modules_normalize
        config = resolved.config if resolved.layout.config_file else resolved.st_config
        return bool(config.get("normalize", False))

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

    def with_max_length(
        self, settings: TokenizerSettings, max_length: int | None, median_length: int
    ) -> TokenizerSettings:
        """``settings`` with another token limit, and the character cut this family derives from it."""
        # no text is longer than sys.maxsize characters: a larger cut is no cut (and fits the native kernel)
        char_limit = (
            min(max_length * median_length, sys.maxsize) if self.char_limit and max_length is not None else None
        )
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
    normalize_from="config",
    save_layout="model2vec",
)

SENTENCE_TRANSFORMERS = Family(
    name="sentence-transformers",
    reference="sentence-transformers 6.3",
    arithmetic="sentence-transformers",
    drop_unknown=False,
    max_length_from="tokenizer",
    default_max_length=None,
    char_limit=False,
    normalize_from="modules",
    save_layout="sentence-transformers",
)

#: The known families by name.
FAMILIES: dict[str, Family] = {f.name: f for f in (MODEL2VEC, SENTENCE_TRANSFORMERS)}


def family_named(name: str | Family) -> Family:
    """The family called ``name`` (a :class:`Family` is returned as it is).

    Raises:
        ValueError: No family has that name (the message lists the known names).
    """
    if isinstance(name, Family):
        return name
    family = FAMILIES.get(name) if isinstance(name, str) else None
    if family is None:
        raise ValueError(f"family={name!r} is not a known reference family; use one of {sorted(FAMILIES)}.")
    return family
