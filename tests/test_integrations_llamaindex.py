"""staticst.integrations.llamaindex against the real llama-index-core, on Banking77 queries from shared/.

The reference vectors are ``encode`` / ``encode_query`` / ``encode_document`` of the same model; retrieval runs
through LlamaIndex's own ``VectorStoreIndex`` (in-memory ``SimpleVectorStore``), whose ranking is checked against a
cosine ranking computed here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import VectorStoreIndex  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.schema import TextNode  # noqa: E402

from staticst import StaticSentenceTransformer  # noqa: E402
from staticst.integrations.llamaindex import StaticEmbedding  # noqa: E402

MODEL = "potion-base-8M"  # the conftest's `model` fixture loads it


@pytest.fixture(scope="module")
def texts(shared_dir: Path) -> list[str]:
    lines = (shared_dir / "data" / "mteb" / "banking77" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    return list(dict.fromkeys(json.loads(line)["text"] for line in lines[5::10]))[:300]


def test_is_a_llamaindex_embedding(model: StaticSentenceTransformer) -> None:
    emb = StaticEmbedding(model)
    assert isinstance(emb, BaseEmbedding) and emb.model is model
    assert emb.model_name == str(model.info()["model"])  # the folder it was loaded from
    assert emb.to_dict()["class_name"] == "StaticEmbedding"


@pytest.mark.parametrize("batch_size", [1024, 7])
def test_batch_and_single_vectors_are_the_models(
    model: StaticSentenceTransformer, texts: list[str], batch_size: int
) -> None:
    emb = StaticEmbedding(model, embed_batch_size=batch_size)
    got = emb.get_text_embedding_batch(texts[:60])
    assert np.array_equal(np.array(got, dtype=np.float32), model.encode(texts[:60]))
    assert np.array_equal(np.array(emb.get_text_embedding(texts[3]), dtype=np.float32), model.encode(texts[3]))
    assert np.array_equal(np.array(emb.get_query_embedding(texts[4]), dtype=np.float32), model.encode(texts[4]))


def test_options_and_prompts(shared_model: Callable[[str], Path], texts: list[str]) -> None:
    path = shared_model("potion-base-8M")
    plain = StaticSentenceTransformer(path)
    prompted = StaticSentenceTransformer(path, prompts={"query": "query: ", "document": "passage: "})
    emb = StaticEmbedding(prompted, normalize_embeddings=True, truncate_dim=32)
    got = np.array(emb.get_text_embedding_batch(texts[:10]), dtype=np.float32)
    expected = plain.encode(["passage: " + t for t in texts[:10]], truncate_dim=32, normalize_embeddings=True)
    assert got.shape == (10, 32) and np.array_equal(got, expected)
    query = np.array(emb.get_query_embedding(texts[0]), dtype=np.float32)
    assert np.array_equal(query, plain.encode("query: " + texts[0], truncate_dim=32, normalize_embeddings=True))


def test_async_variants_give_the_sync_vectors(model: StaticSentenceTransformer, texts: list[str]) -> None:
    emb = StaticEmbedding(model, embed_batch_size=16)

    async def run() -> tuple[list[list[float]], list[float], list[float]]:
        return (
            await emb.aget_text_embedding_batch(texts[:50]),
            await emb.aget_query_embedding(texts[1]),
            await emb.aget_text_embedding(texts[2]),
        )

    docs, query, text = asyncio.run(run())
    assert docs == emb.get_text_embedding_batch(texts[:50])
    assert query == emb.get_query_embedding(texts[1]) and text == emb.get_text_embedding(texts[2])


def test_vector_store_index_retrieves_by_cosine(model: StaticSentenceTransformer, texts: list[str]) -> None:
    nodes = [TextNode(text=t, id_=f"n{i}") for i, t in enumerate(texts)]
    index = VectorStoreIndex(nodes, embed_model=StaticEmbedding(model))
    retriever = index.as_retriever(similarity_top_k=5)
    docs = model.encode(texts).astype(np.float64)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    for query in ("my card payment was declined", "how do I top up by bank transfer", "exchange rate for euros"):
        hits = retriever.retrieve(query)
        q = model.encode(query).astype(np.float64)
        sims = docs @ (q / np.linalg.norm(q))
        best = np.argsort(-sims, kind="stable")[:5]
        assert [h.node.node_id for h in hits] == [f"n{i}" for i in best]
        assert np.allclose([h.score for h in hits], sims[best], atol=1e-6)
