"""``staticst.StaticModel`` against the real model2vec 0.10 on the shared models: same outputs, same surface."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import staticst

pytestmark = pytest.mark.usefixtures("backend")  # every test here runs on both backends

TEXTS = ["hello world", "The quick brown fox jumps over the lazy dog", "", "naïve café 東京", "x y z " * 300]
MODELS = ["potion-base-8M", "wordllama-l2-supercat-256", "tokenlearn-10k-int8", "potion-base-2M-sentence-transformers"]


@pytest.fixture(scope="module", params=MODELS)
def pair(request: pytest.FixtureRequest, shared_model: Any, backend: str) -> tuple[Any, Any, Path]:
    """Built once per backend (it requests ``backend``: STATICST_KERNEL is set while it loads)."""
    from model2vec import StaticModel

    folder = Path(shared_model(request.param))
    return staticst.StaticModel.from_pretrained(folder), StaticModel.from_pretrained(folder), folder


def test_encode_is_bit_identical(pair: tuple) -> None:
    ours, ref, _ = pair
    for kwargs in ({}, {"max_length": 3}, {"max_length": None}, {"normalize": False}, {"normalize": True}):
        got, expected = ours.encode(TEXTS, **kwargs), ref.encode(TEXTS, **kwargs)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(ours.encode("hello world"), ref.encode("hello world"))


def test_sequences_tokens_and_attributes(pair: tuple) -> None:
    ours, ref, _ = pair
    for max_length in (None, 2):
        for g, e in zip(ours.encode_as_sequence(TEXTS, max_length=max_length), ref.encode_as_sequence(TEXTS, max_length=max_length), strict=True):
            assert g.dtype == e.dtype and g.shape == e.shape
            np.testing.assert_array_equal(g, e)
    assert ours.tokenize(TEXTS) == ref.tokenize(TEXTS)
    for name in ("dim", "tokens", "normalize", "max_length", "config", "base_model_name", "language", "embedding_dtype",
                 "vocabulary_quantization", "median_token_length", "unk_token_id"):  # fmt: skip
        assert getattr(ours, name) == getattr(ref, name), name
    np.testing.assert_array_equal(ours.embedding, ref.embedding)
    for name in ("weights", "token_mapping"):
        a, b = getattr(ours, name), getattr(ref, name)
        assert (a is None) == (b is None) and (a is None or np.array_equal(a, b)), name


def test_settable_normalize_and_max_length(pair: tuple, shared_model: Any) -> None:
    from model2vec import StaticModel

    _, _, folder = pair
    ours, ref = staticst.StaticModel.from_pretrained(folder), StaticModel.from_pretrained(folder)
    for model in (ours, ref):
        model.normalize = not model.normalize
        model.max_length = 4
    np.testing.assert_array_equal(ours.encode(TEXTS), ref.encode(TEXTS))
    assert ours.config == ref.config and ours.tokenizer.truncation == ref.tokenizer.truncation


@functools.cache
def _model2vec(folder: Path, quantize_to: str | None, dimensionality: int | None) -> Any:
    """model2vec's model, loaded once per worker for both backends' runs (it does not depend on ours)."""
    from model2vec import StaticModel

    return StaticModel.from_pretrained(folder, quantize_to=quantize_to, dimensionality=dimensionality)


@pytest.mark.parametrize(("quantize_to", "dimensionality"), [("float16", None), ("int8", 32), (None, 16), ("float64", None)])
def test_quantize_and_dimensionality(pair: tuple, quantize_to: str | None, dimensionality: int | None) -> None:
    _, _, folder = pair
    ours = staticst.StaticModel.from_pretrained(folder, quantize_to=quantize_to, dimensionality=dimensionality)
    ref = _model2vec(folder, quantize_to, dimensionality)
    np.testing.assert_array_equal(ours.embedding, ref.embedding)
    assert ours.embedding.dtype == ref.embedding.dtype
    got, expected = ours.encode(TEXTS), ref.encode(TEXTS)
    assert got.dtype == expected.dtype
    if quantize_to == "float64" and not ref.normalize:  # staticst pools in float32 (docs/compatibility.md)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(got, expected)
    if quantize_to == "float16":  # once per model and backend: the refusal does not depend on the other options
        with pytest.raises(ValueError, match="greater than the model dimensionality"):
            staticst.StaticModel.from_pretrained(folder, dimensionality=100_000)


def test_save_pretrained_loads_in_model2vec_and_pickles(pair: tuple, tmp_path: Path) -> None:
    from model2vec import StaticModel

    ours, ref, _ = pair
    ours.save_pretrained(tmp_path / "m", model_name="me/m")
    again = StaticModel.from_pretrained(tmp_path / "m")
    np.testing.assert_array_equal(again.encode(TEXTS), ref.encode(TEXTS))
    assert again.config == ref.config | {"embedding_dtype": ref.embedding_dtype} | (
        {"vocabulary_quantization": ref.vocabulary_quantization} if ref.token_mapping is not None else {}
    )
    clone = pickle.loads(pickle.dumps(ours))
    np.testing.assert_array_equal(clone.encode(TEXTS), ref.encode(TEXTS))


def test_constructor_like_model2vec(shared_model: Any) -> None:
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(shared_model("potion-base-2M")) / "tokenizer.json"))
    vectors = np.random.RandomState(0).randn(tokenizer.get_vocab_size(), 8).astype(np.float32)
    for normalize in (False, True):
        ours = staticst.StaticModel(vectors, tokenizer, {"a": 1}, normalize=normalize, max_length=16, language=["en"])
        ref = StaticModel(vectors, tokenizer, {"a": 1}, normalize=normalize, max_length=16, language=["en"])
        np.testing.assert_array_equal(ours.encode(TEXTS), ref.encode(TEXTS))
        assert ours.config == ref.config and ours.language == ref.language
