"""staticst.integrations.langchain against the real langchain-core, on Banking77 queries from shared/.

The reference vectors are ``encode`` / ``encode_query`` / ``encode_document`` of the same model; the vector store
is LangChain's own ``InMemoryVectorStore``, whose ranking is checked against a cosine ranking computed here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("langchain_core")

from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402

from staticst import StaticSentenceTransformer  # noqa: E402
from staticst.integrations.langchain import StaticEmbeddings  # noqa: E402

PROMPTS = {"query": "query: ", "document": "passage: "}


MODEL = "potion-base-8M"  # the conftest's `model` fixture loads it


@pytest.fixture(scope="module")
def texts(shared_dir: Path) -> list[str]:
    lines = (shared_dir / "data" / "mteb" / "banking77" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    return list(dict.fromkeys(json.loads(line)["text"] for line in lines[::10]))[:300]


def test_is_a_langchain_embeddings(model: StaticSentenceTransformer) -> None:
    emb = StaticEmbeddings(model)
    assert isinstance(emb, Embeddings) and emb.model is model


def test_documents_and_query_are_the_models_vectors(model: StaticSentenceTransformer, texts: list[str]) -> None:
    got = StaticEmbeddings(model).embed_documents(texts)
    assert isinstance(got, list) and all(isinstance(v, list) and isinstance(v[0], float) for v in got)
    assert np.array_equal(np.array(got, dtype=np.float32), model.encode(texts))
    query = StaticEmbeddings(model).embed_query(texts[0])
    assert np.array_equal(np.array(query, dtype=np.float32), model.encode(texts[0]))
    assert StaticEmbeddings(model).embed_documents([]) == []


def test_loads_a_folder_and_applies_options(shared_model: Callable[[str], Path], texts: list[str]) -> None:
    path = shared_model("potion-base-8M")
    emb = StaticEmbeddings(path, normalize_embeddings=True, truncate_dim=64)
    expected = StaticSentenceTransformer(path).encode(texts[:50], truncate_dim=64, normalize_embeddings=True)
    got = np.array(emb.embed_documents(texts[:50]), dtype=np.float32)
    assert got.shape == (50, 64) and np.array_equal(got, expected)


def test_query_and_document_prompts_apply(shared_model: Callable[[str], Path], texts: list[str]) -> None:
    prompted = StaticSentenceTransformer(shared_model("potion-base-8M"), prompts=PROMPTS)
    plain = StaticSentenceTransformer(shared_model("potion-base-8M"))
    emb = StaticEmbeddings(prompted)
    assert np.array_equal(
        np.array(emb.embed_documents(texts[:20]), dtype=np.float32), plain.encode(["passage: " + t for t in texts[:20]])
    )
    assert np.array_equal(np.array(emb.embed_query(texts[0]), dtype=np.float32), plain.encode("query: " + texts[0]))


def test_async_variants_give_the_sync_vectors(model: StaticSentenceTransformer, texts: list[str]) -> None:
    emb = StaticEmbeddings(model)

    async def both() -> tuple[list[list[float]], list[float]]:
        return await emb.aembed_documents(texts[:40]), await emb.aembed_query(texts[1])

    docs, query = asyncio.run(both())
    assert docs == emb.embed_documents(texts[:40]) and query == emb.embed_query(texts[1])


def test_in_memory_vector_store_ranks_by_cosine(model: StaticSentenceTransformer, texts: list[str]) -> None:
    store = InMemoryVectorStore(StaticEmbeddings(model))
    ids = store.add_texts(texts)
    docs = model.encode(texts).astype(np.float64)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    for query in ("my card payment was declined", "how do I top up by bank transfer", "exchange rate for euros"):
        hits = store.similarity_search_with_score(query, k=5)
        q = model.encode(query).astype(np.float64)
        sims = docs @ (q / np.linalg.norm(q))
        best = np.argsort(-sims, kind="stable")[:5]
        assert [doc.id for doc, _ in hits] == [ids[i] for i in best]
        assert np.allclose([score for _, score in hits], sims[best], atol=1e-6)
