"""staticst.integrations.keybert against the real KeyBERT 0.9, on SciFact abstracts from shared/.

The reference is KeyBERT running model2vec: ``KeyBERT(model2vec.StaticModel.from_pretrained(folder))``, which
KeyBERT itself routes to its ``Model2VecBackend``, on the same model folder. The keywords and their scores must be
identical, for plain, MMR and Max Sum extraction, single words and bigrams.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("keybert")
pytest.importorskip("model2vec")

from keybert import KeyBERT  # noqa: E402
from keybert.backend._model2vec import Model2VecBackend  # noqa: E402
from keybert.backend._utils import select_backend  # noqa: E402
from model2vec import StaticModel  # noqa: E402

from staticst import StaticSentenceTransformer  # noqa: E402
from staticst.integrations.keybert import KeyBERTBackend  # noqa: E402

SETTINGS: dict[str, dict[str, Any]] = {
    "words": {"top_n": 5},
    "bigrams-stopwords": {"keyphrase_ngram_range": (1, 2), "stop_words": "english", "top_n": 5},
    "mmr": {"keyphrase_ngram_range": (1, 2), "use_mmr": True, "diversity": 0.6, "top_n": 5},
    "maxsum": {"use_maxsum": True, "nr_candidates": 12, "top_n": 4},
}


@pytest.fixture(scope="module")
def folder(shared_model: Callable[[str], Path]) -> Path:
    return shared_model("potion-base-8M")


@pytest.fixture(scope="module")
def abstracts(shared_dir: Path) -> list[str]:
    lines = (shared_dir / "data" / "mteb" / "scifact" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines[:: len(lines) // 40]][:40]


@pytest.fixture(scope="module")
def reference(folder: Path) -> KeyBERT:
    kw = KeyBERT(StaticModel.from_pretrained(folder))
    assert isinstance(kw.model, Model2VecBackend)  # KeyBERT's own model2vec backend is the reference
    return kw


@pytest.fixture(scope="module")
def ours(folder: Path) -> KeyBERT:
    return KeyBERT(KeyBERTBackend(StaticSentenceTransformer(folder, family="model2vec")))  # the reference is model2vec


def test_backend_is_taken_as_it_is(folder: Path) -> None:
    backend = KeyBERTBackend(folder)
    assert select_backend(backend) is backend and KeyBERT(backend).model is backend
    assert isinstance(backend.embedding_model, StaticSentenceTransformer)


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_keywords_identical_to_keybert_on_model2vec(
    setting: str, abstracts: list[str], reference: KeyBERT, ours: KeyBERT
) -> None:
    expected = reference.extract_keywords(abstracts, **SETTINGS[setting])
    got = ours.extract_keywords(abstracts, **SETTINGS[setting])
    assert len(got) == len(abstracts) and all(len(kws) >= 3 for kws in got)
    assert got == expected


def test_single_document_and_candidates(abstracts: list[str], reference: KeyBERT, ours: KeyBERT) -> None:
    candidates = ["diffusion", "infants", "white matter", "protein", "cancer", "mouse", "cells"]
    for doc in abstracts[:5]:
        assert ours.extract_keywords(doc, candidates=candidates, top_n=3) == reference.extract_keywords(
            doc, candidates=candidates, top_n=3
        )


def test_embed_is_encode_with_the_given_options(folder: Path, abstracts: list[str]) -> None:
    model = StaticSentenceTransformer(folder)
    got = KeyBERTBackend(model, normalize_embeddings=True, truncate_dim=64).embed(abstracts)
    assert got.shape == (len(abstracts), 64)
    assert np.array_equal(got, model.encode(abstracts, normalize_embeddings=True, truncate_dim=64))
