"""BERTopic integration: a :class:`~staticst.StaticSentenceTransformer` as a BERTopic embedding backend.

Needs BERTopic 0.17 (``pip install 'staticst[bertopic]'``); importing this module without it raises
:class:`~staticst.MissingDependencyError`.

BERTopic picks a backend from ``str(type(model))``: a staticst model matches none of its names, so
``BERTopic(embedding_model=StaticSentenceTransformer(...))`` silently falls back to downloading
``all-MiniLM-L6-v2`` (offline: ``OSError``). Passing :class:`BERTopicBackend` (a BERTopic ``BaseEmbedder``)
skips that guess.

>>> from bertopic import BERTopic
>>> from staticst.integrations.bertopic import BERTopicBackend
>>> topic_model = BERTopic(embedding_model=BERTopicBackend("minishlab/potion-base-8M"))
>>> topics, probs = topic_model.fit_transform(docs)  # doctest: +SKIP
"""

from __future__ import annotations

from staticst.errors import MissingDependencyError
from staticst.integrations._common import StaticBackend

try:
    from bertopic.backend import BaseEmbedder
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "staticst.integrations.bertopic needs BERTopic, which is not installed: pip install 'staticst[bertopic]'."
    ) from exc

__all__ = ["BERTopicBackend"]


class BERTopicBackend(StaticBackend, BaseEmbedder):
    """BERTopic backend over a static model: documents and words through ``encode``.

    Args:
        model: A loaded model, or a folder / hub id to load (``None``: the built-in potion-base-8M).
        **encode_kwargs: Passed to every ``encode`` call (e.g. ``normalize_embeddings=True``).

    Attributes:
        embedding_model: The :class:`~staticst.StaticSentenceTransformer` doing the encoding.
    """
