"""Drop-in surface for sentence-transformers users, each checked against the real sentence-transformers 6.2."""

from __future__ import annotations

import copy
import logging
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from staticst import StaticSentenceTransformer, UnknownLayoutError, VocabularyMismatchError

pytestmark = pytest.mark.usefixtures("backend")  # every test here runs on both backends

TEXTS = ["hello world", "The quick brown fox jumps over the lazy dog", "a", "naïve café", "x y z " * 20]


@pytest.fixture(scope="module")
def st_folder(shared_model: Any) -> Path:
    return Path(shared_model("potion-base-2M-sentence-transformers"))


@pytest.fixture(scope="module")
def models(st_folder: Path, backend: str) -> tuple[StaticSentenceTransformer, Any]:
    """Built once per backend (it requests ``backend``: STATICST_KERNEL is set while it loads)."""
    from sentence_transformers import SentenceTransformer

    return StaticSentenceTransformer(str(st_folder)), SentenceTransformer(str(st_folder), device="cpu")


def _np(x: Any) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


@pytest.mark.parametrize("method", ["encode", "encode_query", "encode_document"])
def test_sentences_keyword_is_accepted_with_sts_warning(models: tuple, method: str, caplog: pytest.LogCaptureFixture) -> None:
    ours, ref = models
    with caplog.at_level(logging.WARNING):
        got = getattr(ours, method)(sentences=TEXTS)
    expected = getattr(ref, method)(sentences=TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got.shape == expected.shape
    with pytest.raises(TypeError, match="inputs"):
        getattr(ours, method)()


def test_precision_none_is_float32(models: tuple) -> None:
    ours, ref = models
    got, expected = ours.encode(TEXTS, precision=None), ref.encode(TEXTS, precision=None)
    assert got.dtype == expected.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("batch_size", [32, 2])
def test_output_value_none_dicts_match_st(models: tuple, batch_size: int) -> None:
    ours, ref = models
    got = ours.encode(TEXTS, output_value=None, batch_size=batch_size, prompt="q: ", truncate_dim=16, normalize_embeddings=True)
    expected = ref.encode(TEXTS, output_value=None, batch_size=batch_size, prompt="q: ", truncate_dim=16, normalize_embeddings=True)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert list(g) == list(e)
        np.testing.assert_array_equal(g["input_ids"], _np(e["input_ids"]))
        np.testing.assert_array_equal(g["offsets"], _np(e["offsets"]))
        np.testing.assert_allclose(g["sentence_embedding"], _np(e["sentence_embedding"]), atol=1e-6)
    one, one_ref = ours.encode("hello world", output_value=None), ref.encode("hello world", output_value=None)
    assert list(one) == list(one_ref)
    np.testing.assert_array_equal(one["input_ids"], _np(one_ref["input_ids"]))


@pytest.mark.parametrize("output_value", [None, "token_embeddings"])
def test_empty_input_for_other_outputs(models: tuple, output_value: str | None) -> None:
    ours, ref = models
    assert ours.encode([], output_value=output_value) == ref.encode([], output_value=output_value) == []


def test_text_pairs_match_st(models: tuple) -> None:
    ours, ref = models
    pairs = [("hello", "world"), ("The quick brown fox", "jumps over the lazy dog"), ("a", "")]
    for inputs in (pairs, [list(p) for p in pairs], np.array(pairs), [*pairs, "a plain text"]):
        np.testing.assert_allclose(ours.encode(inputs), ref.encode(inputs), atol=1e-6)
    np.testing.assert_array_equal(ours.preprocess(pairs)["input_ids"], _np(ref.preprocess(pairs)["input_ids"]))
    with pytest.raises(TypeError, match="item 0"):
        ours.encode([("a", "b", "c")])


def test_text_pairs_pool_bit_identically_on_both_backends(st_folder: Path, shared_model: Any) -> None:
    """Text pairs are pooled by the engine's backend: the native kernel gives the numpy path's bits."""
    pairs = [("hello", "world"), ("The quick brown fox", "jumps over the lazy dog"), ("a", ""), ("", "")]
    inputs = [*pairs, "a plain text", ("déjà vu", "寿司 🍕")]
    for folder in (st_folder, shared_model("tokenlearn-10k-int8"), shared_model("potion-base-8M")):
        for family in (None, "model2vec"):
            native = StaticSentenceTransformer(str(folder), kernel="native", family=family)
            numpy_path = StaticSentenceTransformer(str(folder), kernel="numpy", family=family)
            got = native.encode(inputs, normalize_embeddings=True)
            assert got.tobytes() == numpy_path.encode(inputs, normalize_embeddings=True).tobytes(), (folder, family)
            assert np.isfinite(got).all() and got.shape == (len(inputs), native.get_sentence_embedding_dimension())


def test_preprocess_and_is_singular_input_match_st(models: tuple) -> None:
    ours, ref = models
    got, expected = ours.preprocess(TEXTS, prompt="q: "), ref.preprocess(TEXTS, prompt="q: ")
    assert list(got) == list(expected)
    for key in got:
        np.testing.assert_array_equal(got[key], _np(expected[key]))
    assert ours.preprocess([]) == ref.preprocess([]) == {}
    for inputs in ("a", ["a"], ("a", "b"), np.array(["a"]), np.array("a"), 3):
        assert ours.is_singular_input(inputs) == ref.is_singular_input(inputs), inputs


def test_pickle_and_deepcopy_round_trip(models: tuple, st_folder: Path) -> None:
    ours, ref = models
    assert pickle.loads(pickle.dumps(ref)) is not None  # ST models pickle: the control
    model = StaticSentenceTransformer(str(st_folder))
    model.max_seq_length = 3
    model.prompts["x"] = "x: "
    expected = model.encode(TEXTS, prompt_name="x")
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        np.testing.assert_array_equal(clone.encode(TEXTS, prompt_name="x"), expected)
        assert clone.max_seq_length == 3 and clone.engine.backend == model.engine.backend
    builtin = StaticSentenceTransformer()
    data = pickle.dumps(builtin)
    assert len(data) < 100_000  # the built-in model travels as a reference to the packaged copy
    np.testing.assert_array_equal(pickle.loads(data).encode(TEXTS), builtin.encode(TEXTS))


def test_torch_module_calls(models: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    from staticst import _st_args

    monkeypatch.setattr(_st_args, "_warned", set())  # warned once per process: this test runs once per backend
    ours, ref = models
    assert ours.to("cpu") is ours and ours.eval() is ours and ours.train(False) is ours and ours.float() is ours
    assert ours.training is ref.eval().training is False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ours.half() is ours and ours.to("cuda") is ours
    assert caught, "half() / to('cuda') must say they have no effect"
    assert len(ours) == len(ref)
    assert [type(m).__name__.replace("Module", "") for m in ours] == [type(m).__name__ for m in ref]
    assert ours[0].embedding_dim == ref[0].embedding_dim and ours[0].num_embeddings == ref[0].num_embeddings
    np.testing.assert_array_equal(ours[0].weight, ref[0].embedding.weight.detach().numpy())
    assert ours[0].tokenizer.get_vocab() == ref[0].tokenizer.get_vocab()


def test_error_types_match_model2vec(tmp_path: Path, st_folder: Path, shared_model: Any) -> None:
    import shutil

    from model2vec import StaticModel as M2V
    from tokenizers import Tokenizer

    broken = tmp_path / "broken"
    shutil.copytree(shared_model("potion-base-2M"), broken)
    (broken / "model.safetensors").rename(broken / "model.safetenso")
    with pytest.raises(ValueError):
        M2V.from_pretrained(broken)
    with pytest.raises(ValueError) as info:
        StaticSentenceTransformer(str(broken))
    assert isinstance(info.value, UnknownLayoutError)
    tokenizer = Tokenizer.from_file(str(Path(shared_model("potion-base-2M")) / "tokenizer.json"))
    with pytest.raises(ValueError):
        M2V(np.zeros((3, 4)), tokenizer)
    import staticst

    with pytest.raises(ValueError) as info2:
        staticst.StaticModel(np.zeros((3, 4)), tokenizer)
    assert isinstance(info2.value, VocabularyMismatchError)
