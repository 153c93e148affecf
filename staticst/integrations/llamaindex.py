"""LlamaIndex integration: a :class:`~staticst.StaticSentenceTransformer` as a LlamaIndex ``BaseEmbedding``.

Needs ``llama-index-core`` (``pip install 'staticst[llamaindex]'``); importing this module without it raises
:class:`~staticst.MissingDependencyError`.

>>> from llama_index.core import VectorStoreIndex
>>> from llama_index.core.schema import TextNode
>>> from staticst.integrations.llamaindex import StaticEmbedding
>>> nodes = [TextNode(text="The bank approved the loan."), TextNode(text="The river burst its banks.")]
>>> index = VectorStoreIndex(nodes, embed_model=StaticEmbedding("minishlab/potion-base-8M"))
>>> index.as_retriever(similarity_top_k=1).retrieve("credit from a lender")[0].text  # doctest: +SKIP
'The bank approved the loan.'
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from staticst.errors import MissingDependencyError
from staticst.integrations._common import as_model
from staticst.model import StaticSentenceTransformer

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "staticst.integrations.llamaindex needs llama-index-core, which is not installed: "
        "pip install 'staticst[llamaindex]'."
    ) from exc

__all__ = ["DEFAULT_EMBED_BATCH_SIZE", "StaticEmbedding"]

#: Texts per ``_get_text_embeddings`` call (LlamaIndex's default, 10, is sized for remote APIs).
DEFAULT_EMBED_BATCH_SIZE = 1024


class StaticEmbedding(BaseEmbedding):
    """A LlamaIndex embedding model over a static model.

    Texts go through ``encode_document`` and queries through ``encode_query``, so the model's ``document`` /
    ``query`` prompts apply, as in sentence-transformers.

    The async methods run the sync ones in a worker thread (``asyncio.to_thread``), where the compiled kernel
    releases the GIL.

    Args:
        model: A loaded model, or a folder / hub id to load (``None``: the built-in potion-base-8M).
        normalize_embeddings: L2-normalise every vector.
        truncate_dim: Keep the first ``truncate_dim`` dimensions.
        embed_batch_size: Texts LlamaIndex hands over per call (1-2048).
        **kwargs: Other ``BaseEmbedding`` fields (``callback_manager``, ``num_workers``, ``embeddings_cache``, ...).
    """

    normalize_embeddings: bool = Field(default=False, description="L2-normalise every vector.")
    truncate_dim: int | None = Field(default=None, description="Keep the first truncate_dim dimensions.")
    _model: StaticSentenceTransformer = PrivateAttr()

    def __init__(
        self,
        model: StaticSentenceTransformer | str | os.PathLike[str] | None = None,
        *,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        embed_batch_size: int = DEFAULT_EMBED_BATCH_SIZE,
        **kwargs: Any,
    ) -> None:
        loaded = as_model(model)
        kwargs.setdefault("model_name", str(loaded.info().get("model") or "staticst"))
        super().__init__(embed_batch_size=embed_batch_size, **kwargs)
        self.normalize_embeddings = normalize_embeddings
        self.truncate_dim = truncate_dim
        self._model = loaded

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex records when it serialises the component."""
        return "StaticEmbedding"

    @property
    def model(self) -> StaticSentenceTransformer:
        """The :class:`~staticst.StaticSentenceTransformer` doing the encoding."""
        return self._model

    def _options(self) -> dict[str, Any]:
        return {"normalize_embeddings": self.normalize_embeddings, "truncate_dim": self.truncate_dim}

    def _get_query_embedding(self, query: str) -> Embedding:
        return list(self._model.encode_query([query], **self._options())[0].tolist())

    def _get_text_embedding(self, text: str) -> Embedding:
        return list(self._model.encode_document([text], **self._options())[0].tolist())

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        if not texts:
            return []
        return [row.tolist() for row in self._model.encode_document(list(texts), **self._options())]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
