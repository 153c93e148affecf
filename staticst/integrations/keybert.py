"""KeyBERT integration: a :class:`~staticst.StaticSentenceTransformer` as a KeyBERT embedding backend.

Needs KeyBERT 0.9 (``pip install 'staticst[keybert]'``); importing this module without it raises
:class:`~staticst.MissingDependencyError`.

KeyBERT picks a backend from ``str(type(model))``: a staticst model matches none of its names, so
``KeyBERT(StaticSentenceTransformer(...))`` silently falls back to downloading
``paraphrase-multilingual-MiniLM-L12-v2`` (offline: ``OSError``). Passing :class:`KeyBERTBackend` (a KeyBERT
``BaseEmbedder``) skips that guess.

>>> from keybert import KeyBERT
>>> from staticst.integrations.keybert import KeyBERTBackend
>>> kw_model = KeyBERT(KeyBERTBackend("minishlab/potion-base-8M"))
>>> kw_model.extract_keywords("Static embedding models look up one vector per token.", top_n=3)  # doctest: +SKIP
"""

from __future__ import annotations

from staticst.errors import MissingDependencyError
from staticst.integrations._common import StaticBackend

try:
    from keybert.backend import BaseEmbedder
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "staticst.integrations.keybert needs KeyBERT, which is not installed: pip install 'staticst[keybert]'."
    ) from exc

__all__ = ["KeyBERTBackend"]


class KeyBERTBackend(StaticBackend, BaseEmbedder):
    """KeyBERT backend over a static model: documents and candidate keywords through ``encode``.

    Args:
        model: A loaded model, or a folder / hub id to load (``None``: the built-in potion-base-8M).
        **encode_kwargs: Passed to every ``encode`` call (e.g. ``normalize_embeddings=True``), as KeyBERT's
            sentence-transformers backend does.

    Attributes:
        embedding_model: The :class:`~staticst.StaticSentenceTransformer` doing the encoding.
    """
