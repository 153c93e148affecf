"""The incompatibilities the upstream suites found (tests/upstream/), each fixed and checked against the real library.

* model2vec 0.10 ``from_pretrained(..., vocabulary_quantization=n)`` (``test_load_pretrained_vocabulary_quantized``):
  staticst refused it; it now clusters as model2vec does.
* model2vec 0.10 keeps a float64 table's unnormalised means in float64; staticst returned float32 values cast
  to float64 (``tests/test_compat_m2v.py`` had been loosened to a tolerance for it).
* sentence-transformers 6.2: ``tensor.device == model.device`` and ``model.device.type``
  (``test_empty_encode``), ``set_pooling_include_prompt`` (``test_prompt_length_calculation``), and the
  saved model card's usage snippet naming the model id (``test_model_card_save_update_model_id``).
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import staticst
from staticst import StaticSentenceTransformer
from tests.conftest import wordpiece_tokenizer, write_model2vec

pytestmark = pytest.mark.usefixtures("backend")  # every test here runs on both backends

TEXTS = ["hello world", "the cat sat on the mat", "", "a dog is not a cat", "fish " * 40, "zzz qqq"]


# ------------------------------------------------------------------ model2vec: vocabulary_quantization


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("quantize_to", "dimensionality"), [(None, None), ("float16", None), ("int8", 4)])
def test_vocabulary_quantization_like_model2vec(tmp_path: Path, dtype: str, quantize_to: str | None, dimensionality: int | None) -> None:
    from model2vec import StaticModel

    write_model2vec(tmp_path / "m", wordpiece_tokenizer(), dim=8, dtype=dtype, normalize=False)
    kwargs: dict[str, Any] = {"vocabulary_quantization": 5, "quantize_to": quantize_to, "dimensionality": dimensionality}
    ours, ref = staticst.StaticModel.from_pretrained(tmp_path / "m", **kwargs), StaticModel.from_pretrained(tmp_path / "m", **kwargs)
    for name in ("embedding", "token_mapping", "weights"):
        got, expected = getattr(ours, name), getattr(ref, name)
        assert got.shape == expected.shape, name
        assert name == "token_mapping" or got.dtype == expected.dtype, name  # staticst holds the mapping as int64
        np.testing.assert_array_equal(got, expected, err_msg=name)
    assert ours.vocabulary_quantization == ref.vocabulary_quantization == 5
    assert ours.config == ref.config and ours.embedding_dtype == ref.embedding_dtype
    for normalize in (False, True):
        got, expected = ours.encode(TEXTS, normalize=normalize), ref.encode(TEXTS, normalize=normalize)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    ours.save_pretrained(tmp_path / "saved")  # model2vec reads staticst's vocabulary-quantized save
    again = StaticModel.from_pretrained(tmp_path / "saved")
    np.testing.assert_array_equal(again.encode(TEXTS), ref.encode(TEXTS))
    assert again.vocabulary_quantization == 5


def test_vocabulary_quantization_of_a_quantized_model_is_refused_like_model2vec(tmp_path: Path) -> None:
    from model2vec import StaticModel

    write_model2vec(tmp_path / "q", wordpiece_tokenizer(), quantized_rows=6)
    for cls in (StaticModel, staticst.StaticModel):
        with pytest.raises(ValueError, match="already has been vocabulary quantized, cannot quantize again"):
            cls.from_pretrained(tmp_path / "q", vocabulary_quantization=3)


def test_vocabulary_quantization_without_scikit_learn_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    write_model2vec(tmp_path / "m", wordpiece_tokenizer())
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)  # an import of it raises ImportError
    with pytest.raises(staticst.MissingDependencyError, match="scikit-learn"):
        staticst.StaticModel.from_pretrained(tmp_path / "m", vocabulary_quantization=3)


# ------------------------------------------------------------------ model2vec: float64 tables


def test_float64_table_gives_model2vec_float64_means(shared_model: Any, backend: str) -> None:
    from model2vec import StaticModel

    folder = shared_model("potion-base-2M")
    texts = [*TEXTS, "naïve café 東京", "x y z " * 300, "The quick brown fox jumps over the lazy dog"]
    ours = staticst.StaticModel.from_pretrained(folder, quantize_to="float64", normalize=False, kernel=backend)
    ref = StaticModel.from_pretrained(folder, quantize_to="float64", normalize=False)
    for kwargs in ({}, {"max_length": 3}, {"max_length": None}, {"normalize": True}, {"show_progress_bar": True, "batch_size": 2}):
        got, expected = ours.encode(texts, **kwargs), ref.encode(texts, **kwargs)
        assert got.dtype == expected.dtype == np.float64
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(ours.encode(texts[1]), ref.encode(texts[1]))


def test_float64_table_with_weights_gives_model2vec_means(tmp_path: Path) -> None:
    from model2vec import StaticModel

    tokenizer = wordpiece_tokenizer()
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((7, 6))  # float64, vocabulary-quantized: 7 rows, per-token weights
    mapping = rng.integers(0, 7, size=tokenizer.get_vocab_size())
    weights = rng.uniform(0.1, 2.0, size=tokenizer.get_vocab_size())
    ours = staticst.StaticModel(vectors, tokenizer, weights=weights, token_mapping=mapping)
    ref = StaticModel(vectors, tokenizer, weights=weights, token_mapping=mapping)
    got, expected = ours.encode(TEXTS), ref.encode(TEXTS)
    assert got.dtype == expected.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


# ------------------------------------------------------------------ sentence-transformers: device, pooling, card


@pytest.fixture(scope="module")
def st_models(shared_model: Any, backend: str) -> tuple[StaticSentenceTransformer, Any]:
    """Built once per backend (it requests ``backend``: STATICST_KERNEL is set while it loads)."""
    from sentence_transformers import SentenceTransformer

    folder = str(shared_model("potion-base-2M-sentence-transformers"))
    return StaticSentenceTransformer(folder), SentenceTransformer(folder, device="cpu")


def test_device_behaves_like_st_torch_device(st_models: tuple) -> None:
    import torch

    ours, ref = st_models
    assert ours.device.type == ref.device.type == "cpu" and ours.device.index == ref.device.index
    assert str(ours.device) == str(ref.device) == "cpu"
    assert ours.encode([], convert_to_tensor=True).device == ours.device  # upstream test_empty_encode
    assert ref.encode([], convert_to_tensor=True).device == ref.device
    assert torch.device("cpu") == ours.device and ours.device == torch.device("cpu") and ours.device == "cpu"
    assert ours.device != torch.device("meta") and ours.device != "cuda" and not (ours.device != "cpu")
    assert torch.zeros(1).to(ours.device).device == ref.device and torch.device(ours.device) == ref.device
    assert hash(ours.device) == hash("cpu") and {ours.device: 1}["cpu"] == 1
    assert pickle.loads(pickle.dumps(ours.device)) == "cpu" and copy.deepcopy(ours.device).type == "cpu"


def test_set_pooling_include_prompt_is_accepted_like_st(st_models: tuple) -> None:
    ours, ref = st_models
    before, before_ref = ours.encode(TEXTS, prompt="query: "), ref.encode(TEXTS, prompt="query: ")
    for include in (False, True):
        assert ours.set_pooling_include_prompt(include) is None and ref.set_pooling_include_prompt(include) is None
        np.testing.assert_array_equal(ours.encode(TEXTS, prompt="query: "), before)  # no Pooling module: no effect
        np.testing.assert_array_equal(ref.encode(TEXTS, prompt="query: "), before_ref)


def _snippets(folder: Path) -> list[str]:
    return [line for line in (folder / "README.md").read_text(encoding="utf-8").splitlines() if line.startswith("model = SentenceTransformer(")]


def test_model_card_usage_snippet_names_the_model_like_st(shared_model: Any, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    folder = str(shared_model("potion-base-2M-sentence-transformers"))
    ours, ref = StaticSentenceTransformer(folder), SentenceTransformer(folder, device="cpu")
    assert ours.model_card_data.model_id is None and ref.model_card_data.model_id is None
    for i, model_name in enumerate([None, "test_user/test_model", None]):  # a name given once stays, as in ST
        ours.save(str(tmp_path / f"ours{i}"), model_name=model_name)
        ref.save(str(tmp_path / f"ref{i}"), model_name=model_name)
        assert _snippets(tmp_path / f"ours{i}") == _snippets(tmp_path / f"ref{i}") != []
        assert ours.model_card_data.model_id == ref.model_card_data.model_id
    assert _snippets(tmp_path / "ours0") == ['model = SentenceTransformer("sentence_transformers_model_id")']
    assert _snippets(tmp_path / "ours2") == ['model = SentenceTransformer("test_user/test_model")']
    reloaded = SentenceTransformer(str(tmp_path / "ours1"), device="cpu")  # ST still loads staticst's save
    np.testing.assert_allclose(reloaded.encode(TEXTS), ours.encode(TEXTS), atol=1e-6)
