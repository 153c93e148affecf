"""staticst.integrations.bertopic against the real BERTopic 0.17, on Banking77 queries from shared/.

The reference is BERTopic running model2vec: ``BERTopic(embedding_model=model2vec.StaticModel...)``, which BERTopic
itself routes to its ``Model2VecBackend``, on the same model folder, with the same pipeline. BERTopic is stochastic
only through UMAP, so two pipelines make it deterministic:

- the default stack, UMAP + HDBSCAN, with ``UMAP(random_state=42)`` (UMAP then runs single-threaded and gives the
  same projection for the same vectors): topics and probabilities must be identical;
- a small deterministic stack, PCA + k-means (``random_state=0``) and a KeyBERT-inspired representation (which embeds
  the candidate words through the backend): topics, topic words, ``find_topics`` and ``transform`` of new documents
  must be identical.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("bertopic")
pytest.importorskip("model2vec")

from bertopic import BERTopic  # noqa: E402
from bertopic.backend import BaseEmbedder  # noqa: E402
from bertopic.backend._model2vec import Model2VecBackend  # noqa: E402
from bertopic.representation import KeyBERTInspired  # noqa: E402
from model2vec import StaticModel  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.feature_extraction.text import CountVectorizer  # noqa: E402

from staticst import StaticSentenceTransformer  # noqa: E402
from staticst.integrations.bertopic import BERTopicBackend  # noqa: E402


@pytest.fixture(scope="module")
def folder(shared_model: Callable[[str], Path]) -> Path:
    return shared_model("potion-base-8M")


@pytest.fixture(scope="module")
def banking(shared_dir: Path) -> tuple[list[str], list[str]]:
    lines = (shared_dir / "data" / "mteb" / "banking77" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    texts = list(dict.fromkeys(json.loads(line)["text"] for line in lines))
    return texts[::8][:360], texts[3::40][:60]  # documents to fit on, unseen documents for transform


def _embedders(folder: Path) -> tuple[Any, BERTopicBackend]:
    return StaticModel.from_pretrained(folder), BERTopicBackend(StaticSentenceTransformer(folder, family="model2vec"))


def test_backend_is_a_bertopic_embedder(folder: Path, banking: tuple[list[str], list[str]]) -> None:
    docs, _ = banking
    model = StaticSentenceTransformer(folder)
    backend = BERTopicBackend(model, normalize_embeddings=True)
    assert isinstance(backend, BaseEmbedder)
    assert np.array_equal(backend.embed_documents(docs[:30]), model.encode(docs[:30], normalize_embeddings=True))
    assert np.array_equal(backend.embed_words(["card", "refund"]), model.encode(["card", "refund"], normalize_embeddings=True))


@pytest.mark.slow  # UMAP and HDBSCAN (numba compiles them) over the real corpus: an integration job
@pytest.mark.filterwarnings("ignore:n_jobs value 1 overridden:UserWarning")  # UMAP says random_state means 1 job
def test_umap_hdbscan_topics_identical_to_bertopic_on_model2vec(folder: Path, banking: tuple[list[str], list[str]]) -> None:
    from hdbscan import HDBSCAN
    from umap import UMAP

    docs, _ = banking
    fitted = []
    for embedder in _embedders(folder):
        topic_model = BERTopic(
            embedding_model=embedder,
            umap_model=UMAP(n_neighbors=10, n_components=5, min_dist=0.0, metric="cosine", random_state=42),
            hdbscan_model=HDBSCAN(min_cluster_size=6, prediction_data=True),
            vectorizer_model=CountVectorizer(stop_words="english"),
        )
        topics, probs = topic_model.fit_transform(docs)
        fitted.append((topic_model, topics, probs))
    (ref, ref_topics, ref_probs), (ours, our_topics, our_probs) = fitted
    assert isinstance(ref.embedding_model, Model2VecBackend)  # BERTopic's own model2vec backend is the reference
    assert ours.embedding_model is not ref.embedding_model and isinstance(ours.embedding_model, BERTopicBackend)
    assert len(set(ref_topics) - {-1}) >= 4, "the sample should give several topics, or the comparison says little"
    assert our_topics == ref_topics
    assert np.array_equal(our_probs, ref_probs)
    assert ours.get_topics() == ref.get_topics()


def test_deterministic_pipeline_topics_words_search_and_transform(
    folder: Path, banking: tuple[list[str], list[str]]
) -> None:
    docs, unseen = banking
    fitted = []
    for embedder in _embedders(folder):
        topic_model = BERTopic(
            embedding_model=embedder,
            umap_model=PCA(n_components=10, random_state=0),
            hdbscan_model=KMeans(n_clusters=12, n_init=4, random_state=0),
            vectorizer_model=CountVectorizer(stop_words="english"),
            representation_model=KeyBERTInspired(top_n_words=8),
        )
        topics, _ = topic_model.fit_transform(docs)
        fitted.append((topic_model, topics))
    (ref, ref_topics), (ours, our_topics) = fitted
    assert len(set(ref_topics)) == 12
    assert our_topics == ref_topics
    assert ours.get_topics() == ref.get_topics()  # KeyBERT-inspired words: embedded through each backend
    for term in ("card payment declined", "exchange rate", "verify my identity"):
        assert ours.find_topics(term, top_n=3) == ref.find_topics(term, top_n=3)
    assert ours.transform(unseen)[0] == ref.transform(unseen)[0]
