"""staticst.integrations.chromadb against the real chromadb (in-memory ``EphemeralClient`` and an on-disk
``PersistentClient`` in tmp_path), on SciFact claims and abstract titles from shared/.

Query results are checked against an exact cosine ranking computed here from ``encode`` of the same model; the
collection is built with ``ef_search`` above the collection size, so chromadb's HNSW search is exact on it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("chromadb")

import chromadb  # noqa: E402
from chromadb.config import Settings  # noqa: E402

from staticst import StaticSentenceTransformer  # noqa: E402
from staticst.integrations.chromadb import StaticEmbeddingFunction  # noqa: E402

N_DOCS = 400
HNSW = {"space": "cosine", "ef_construction": 600, "ef_search": 600}


MODEL = "potion-base-8M"  # the conftest's `model` fixture loads it


@pytest.fixture(scope="module")
def scifact(shared_dir: Path) -> tuple[list[str], list[str]]:
    folder = shared_dir / "data" / "mteb" / "scifact"
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    titles = list(dict.fromkeys(d["title"] for d in corpus if d["title"].strip()))[:N_DOCS]
    return titles, [q["text"] for q in queries[:25]]


def _client() -> Any:
    return chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))


def _exact_top(model: StaticSentenceTransformer, docs: list[str], queries: list[str], k: int) -> tuple[Any, Any]:
    d = model.encode(docs).astype(np.float64)
    q = model.encode(queries).astype(np.float64)
    sims = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (d / np.linalg.norm(d, axis=1, keepdims=True)).T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return top, np.take_along_axis(sims, top, axis=1)


def test_vectors_are_the_models(model: StaticSentenceTransformer, scifact: tuple[list[str], list[str]]) -> None:
    docs, queries = scifact
    ef = StaticEmbeddingFunction(model)
    got = ef(docs[:50])
    assert len(got) == 50 and all(v.dtype == np.float32 for v in got)
    assert np.array_equal(np.stack(got), model.encode(docs[:50]))
    assert np.array_equal(np.stack(ef.embed_query(queries[:5])), model.encode(queries[:5]))
    assert not ef.is_legacy() and ef.default_space() == "cosine"


def test_query_results_are_the_exact_cosine_neighbours(
    model: StaticSentenceTransformer, scifact: tuple[list[str], list[str]]
) -> None:
    docs, queries = scifact
    collection = _client().create_collection(
        f"scifact-{uuid.uuid4().hex}", embedding_function=StaticEmbeddingFunction(model), configuration={"hnsw": HNSW}
    )
    collection.add(ids=[f"d{i}" for i in range(len(docs))], documents=docs)
    result = collection.query(query_texts=queries, n_results=5)
    top, sims = _exact_top(model, docs, queries, 5)
    assert result["ids"] == [[f"d{i}" for i in row] for row in top]
    assert np.allclose(np.array(result["distances"]), 1.0 - sims, atol=1e-5)  # chromadb's cosine distance
    assert result["documents"] == [[docs[i] for i in row] for row in top]


def test_options_reach_the_stored_vectors(model: StaticSentenceTransformer, scifact: tuple[list[str], list[str]]) -> None:
    docs, _ = scifact
    collection = _client().create_collection(
        f"trunc-{uuid.uuid4().hex}",
        embedding_function=StaticEmbeddingFunction(model, normalize_embeddings=True, truncate_dim=64),
    )
    collection.add(ids=[f"d{i}" for i in range(20)], documents=docs[:20])
    stored = collection.get(ids=[f"d{i}" for i in range(20)], include=["embeddings"])["embeddings"]
    expected = model.encode(docs[:20], truncate_dim=64, normalize_embeddings=True)
    assert np.asarray(stored).shape == (20, 64) and np.allclose(np.asarray(stored), expected, atol=1e-7)


def test_persistent_collection_reopens_with_its_embedding_function(
    tmp_path: Path, shared_model: Callable[[str], Path], scifact: tuple[list[str], list[str]]
) -> None:
    """chromadb rebuilds the function from the stored config (``name`` + ``get_config``) when reopened."""
    docs, queries = scifact
    path = shared_model("potion-base-8M")
    settings = Settings(anonymized_telemetry=False)
    first = chromadb.PersistentClient(path=str(tmp_path / "db"), settings=settings)
    collection = first.create_collection("docs", embedding_function=StaticEmbeddingFunction(path))
    collection.add(ids=[f"d{i}" for i in range(100)], documents=docs[:100])
    before = collection.query(query_texts=queries[:3], n_results=3)

    reopened = chromadb.PersistentClient(path=str(tmp_path / "db"), settings=settings).get_collection("docs")
    ef = reopened.configuration["embedding_function"]
    assert isinstance(ef, StaticEmbeddingFunction)
    assert Path(ef.get_config()["model"]).resolve() == path.resolve()  # the folder (symlinks resolved)
    after = reopened.query(query_texts=queries[:3], n_results=3)
    assert after["ids"] == before["ids"] and np.allclose(after["distances"], before["distances"])


def test_build_from_config_needs_a_model() -> None:
    with pytest.raises(ValueError, match="'model' entry"):
        StaticEmbeddingFunction.build_from_config({"normalize_embeddings": True})
