"""LangChain integration: a :class:`~staticst.StaticSentenceTransformer` as ``langchain_core.embeddings.Embeddings``.

Needs ``langchain-core`` (``pip install 'staticst[langchain]'``); importing this module without it raises
:class:`~staticst.MissingDependencyError`. Unlike ``langchain_huggingface.HuggingFaceEmbeddings`` it takes a loaded
model (or a folder / hub id) and needs no torch.

>>> from langchain_core.vectorstores import InMemoryVectorStore
>>> from staticst.integrations.langchain import StaticEmbeddings
>>> store = InMemoryVectorStore(StaticEmbeddings("minishlab/potion-base-8M"))
>>> _ = store.add_texts(["The bank approved the loan.", "The river burst its banks."])
>>> store.similarity_search("credit from a lender", k=1)[0].page_content  # doctest: +SKIP
'The bank approved the loan.'
"""

from __future__ import annotations

import os

from staticst.errors import MissingDependencyError
from staticst.integrations._common import as_model
from staticst.model import StaticSentenceTransformer

try:
    from langchain_core.embeddings import Embeddings
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "staticst.integrations.langchain needs langchain-core, which is not installed: "
        "pip install 'staticst[langchain]'."
    ) from exc

__all__ = ["StaticEmbeddings"]


class StaticEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over a static model.

    Documents go through ``encode_document`` and queries through ``encode_query``, so the model's ``document`` /
    ``query`` prompts apply, as in sentence-transformers.

    The async methods (``aembed_documents``, ``aembed_query``) are LangChain's: they run the sync ones in an
    executor thread, where the compiled kernel releases the GIL.

    Args:
        model: A loaded model, or a folder / hub id to load (``None``: the built-in potion-base-8M).
        normalize_embeddings: L2-normalise every vector.
        truncate_dim: Keep the first ``truncate_dim`` dimensions.

    Attributes:
        model: The :class:`~staticst.StaticSentenceTransformer` doing the encoding.
    """

    def __init__(
        self,
        model: StaticSentenceTransformer | str | os.PathLike[str] | None = None,
        *,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
    ) -> None:
        self.model = as_model(model)
        self.normalize_embeddings = normalize_embeddings
        self.truncate_dim = truncate_dim

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed search documents.

        Args:
            texts: The documents.

        Returns:
            One vector (a list of floats) per document, in order.
        """
        if not texts:
            return []
        emb = self.model.encode_document(
            list(texts), normalize_embeddings=self.normalize_embeddings, truncate_dim=self.truncate_dim
        )
        return [row.tolist() for row in emb]

    def embed_query(self, text: str) -> list[float]:
        """Embed a query.

        Args:
            text: The query.

        Returns:
            Its vector, a list of floats.
        """
        emb = self.model.encode_query(
            [text], normalize_embeddings=self.normalize_embeddings, truncate_dim=self.truncate_dim
        )
        return list(emb[0].tolist())
