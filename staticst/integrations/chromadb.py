"""chromadb integration: a :class:`~staticst.StaticSentenceTransformer` as a chromadb ``EmbeddingFunction``.

Needs chromadb 1.x (``pip install 'staticst[chromadb]'``); importing this module without it raises
:class:`~staticst.MissingDependencyError`. chromadb's own ``SentenceTransformerEmbeddingFunction`` takes only a
model name and loads it with sentence-transformers (torch); this one takes a loaded model, a folder or a hub id.

>>> import chromadb
>>> from staticst.integrations.chromadb import StaticEmbeddingFunction
>>> client = chromadb.EphemeralClient()
>>> docs = client.create_collection("docs", embedding_function=StaticEmbeddingFunction("minishlab/potion-base-8M"))
>>> docs.add(ids=["a", "b"], documents=["The bank approved the loan.", "The river burst its banks."])
>>> docs.query(query_texts=["credit from a lender"], n_results=1)["ids"]  # doctest: +SKIP
[['a']]

Importing the module registers the class with chromadb (``register_embedding_function``, name ``"staticst"``),
as chromadb requires for a collection to rebuild its embedding function from the stored configuration
(``get_collection`` without ``embedding_function``, a persistent client reopened).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from staticst.errors import MissingDependencyError
from staticst.integrations._common import as_model
from staticst.model import StaticSentenceTransformer

try:
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
    from chromadb.utils.embedding_functions import register_embedding_function
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "staticst.integrations.chromadb needs chromadb, which is not installed: pip install 'staticst[chromadb]'."
    ) from exc

__all__ = ["StaticEmbeddingFunction"]


@register_embedding_function
class StaticEmbeddingFunction(EmbeddingFunction[Documents]):
    """A chromadb embedding function over a static model.

    Documents go through ``encode_document`` and query texts through ``encode_query``, so the model's
    ``document`` / ``query`` prompts apply.

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

    def _encode(self, texts: Documents, *, query: bool) -> Embeddings:
        if not texts:
            return []
        encode = self.model.encode_query if query else self.model.encode_document
        emb = encode(list(texts), normalize_embeddings=self.normalize_embeddings, truncate_dim=self.truncate_dim)
        return list(np.asarray(emb, dtype=np.float32))

    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents (what chromadb calls on ``add`` / ``upsert``): one float32 vector per document."""
        return self._encode(input, query=False)

    def embed_query(self, input: Documents) -> Embeddings:
        """Embed query texts (what chromadb calls for ``query(query_texts=...)``)."""
        return self._encode(input, query=True)

    @staticmethod
    def name() -> str:
        """The name chromadb stores in a collection's configuration."""
        return "staticst"

    def default_space(self) -> Space:
        """Cosine: the similarity static models are trained for (the model's ``similarity_fn_name``)."""
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        """Every chromadb space works on these vectors."""
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        """The JSON configuration chromadb stores: the model's folder (or hub id) and the encode options."""
        info = self.model.info()
        path = info.get("path")
        source = str(path) if path and os.path.isdir(str(path)) else info.get("model")
        return {
            "model": source,
            "normalize_embeddings": self.normalize_embeddings,
            "truncate_dim": self.truncate_dim,
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> StaticEmbeddingFunction:
        """Rebuild the function from :meth:`get_config`'s output (chromadb calls this when reopening a collection).

        Raises:
            ValueError: ``config`` is not a dict with a ``model`` entry.
        """
        if not isinstance(config, dict) or "model" not in config:
            raise ValueError(f"a staticst embedding function config needs a 'model' entry, got {config!r}")
        return StaticEmbeddingFunction(
            config["model"],
            normalize_embeddings=bool(config.get("normalize_embeddings", False)),
            truncate_dim=config.get("truncate_dim"),
        )
