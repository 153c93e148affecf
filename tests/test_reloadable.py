"""The Hugging Face tokenizer of a large vocabulary is released once the native pipeline tokenizes, and rebuilt on use.

Released or not, every result is the tokenizer's: vectors equal the numpy backend's (which keeps the tokenizer),
``model.tokenizer`` is a real ``tokenizers.Tokenizer`` equal to the saved one, pickles and copies work. The memory
this saves per process is measured by ``benchmarks/memory_shared.py --large`` (docs/reliability.md).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from staticst import StaticModel, StaticSentenceTransformer
from staticst import kernel as kernels
from staticst.tokenization.reloadable import RELEASE_MIN_VOCAB, ReloadableTokenizer

TEXTS = ["hello world", "Grüße aus Köln", "寿司が好きです", "I love 🍕 so much", "", "the end of the text " * 40]
LARGE = "tokenlearn-10k-int8"  # a 276K-piece Unigram tokenizer


def _proxy(model: StaticSentenceTransformer) -> ReloadableTokenizer:
    proxy = model.engine.tokenizer.tokenizer
    assert isinstance(proxy, ReloadableTokenizer)
    return proxy


@pytest.fixture(scope="module")
def large(shared_model: Callable[[str], Path]) -> Path:
    path = shared_model(LARGE)
    size = Tokenizer.from_file(str(path / "tokenizer.json")).get_vocab_size(with_added_tokens=True)
    assert size >= RELEASE_MIN_VOCAB, size  # the case this file is about
    return path


def test_a_large_tokenizer_is_released_under_the_native_pipeline_and_results_are_the_same(large: Path) -> None:
    native = StaticSentenceTransformer(str(large), kernel="native")
    assert native.info()["tokenizer"] == kernels.TOKENIZER_NATIVE
    proxy = _proxy(native)
    assert not proxy.loaded and proxy.releases == 1
    oracle = StaticSentenceTransformer(str(large), kernel="numpy")  # tokenizes with the Hugging Face tokenizer
    assert _proxy(oracle).loaded
    np.testing.assert_array_equal(native.encode(TEXTS), oracle.encode(TEXTS))
    info = native.info()
    assert info["vocab_size"] == oracle.info()["vocab_size"] == oracle.tokenizer.get_vocab_size(with_added_tokens=True)
    assert not proxy.loaded  # encoding and info() need no Hugging Face tokenizer
    ids = native.tokenize(TEXTS)["input_ids"]
    np.testing.assert_array_equal(ids, oracle.tokenize(TEXTS)["input_ids"])


def test_the_public_tokenizer_is_the_saved_one_rebuilt(large: Path) -> None:
    model = StaticSentenceTransformer(str(large), kernel="native")
    saved = Tokenizer.from_file(str(large / "tokenizer.json"))
    saved.no_truncation()
    saved.no_padding()
    public = model.tokenizer
    assert type(public) is Tokenizer and _proxy(model).loaded
    assert json.loads(public.to_str()) == json.loads(saved.to_str())
    for text in TEXTS:
        assert public.encode(text).ids == saved.encode(text).ids
    assert model[0].tokenizer is public and model.tokenizer is public  # the same object while loaded


def test_a_released_model_pickles_and_saves(large: Path, tmp_path: Path) -> None:
    model = StaticSentenceTransformer(str(large), kernel="native")
    expected = model.encode(TEXTS)
    copy = pickle.loads(pickle.dumps(model))
    assert not _proxy(copy).loaded  # the copy releases its own tokenizer too
    np.testing.assert_array_equal(copy.encode(TEXTS), expected)
    model.save_pretrained(str(tmp_path / "saved"))
    saved = json.loads((tmp_path / "saved" / "tokenizer.json").read_text(encoding="utf-8"))
    assert saved["model"] == json.loads((large / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    np.testing.assert_array_equal(StaticSentenceTransformer(str(tmp_path / "saved")).encode(TEXTS), expected)


@pytest.mark.parametrize("name", ["potion-base-8M", LARGE])
def test_small_tokenizers_and_the_numpy_path_keep_theirs(
    backend: str, shared_model: Callable[[str], Path], name: str
) -> None:
    model = StaticSentenceTransformer(str(shared_model(name)))
    released = backend == "native" and name == LARGE
    assert _proxy(model).loaded is not released
    # StaticModel keeps model2vec's public `tokenizer` attribute (its own object); its engine follows the same rule
    face = StaticModel.from_pretrained(str(shared_model(name)))
    assert isinstance(face.tokenizer, Tokenizer)


def test_release_and_rebuild_keep_the_tokenizer_state(shared_model: Callable[[str], Path]) -> None:
    raw = Tokenizer.from_file(str(shared_model("potion-base-8M") / "tokenizer.json"))
    proxy = ReloadableTokenizer(raw)
    proxy.enable_truncation(7)  # a method call on the tokenizer changes its state
    before = proxy.to_str()
    proxy.release()
    assert not proxy.loaded and proxy.to_str() == before and not proxy.loaded  # to_str from the kept JSON
    assert proxy.truncation is not None and proxy.truncation["max_length"] == 7 and proxy.loaded
    assert len(proxy.encode("a b c d e f g h i j").ids) == 7
    restored = pickle.loads(pickle.dumps(proxy))
    assert isinstance(restored, ReloadableTokenizer) and restored.to_str() == before
    assert ReloadableTokenizer.wrap(proxy) is proxy  # type: ignore[comparison-overlap]
    assert isinstance(kernels.trim_heap(), bool)


def test_a_static_model_holds_no_hugging_face_tokenizer_until_its_tokenizer_is_used(large: Path) -> None:
    """StaticModel's load read the vocabulary after its engine released the tokenizer, which rebuilt it (about
    300 MB for this model) and kept it with model2vec's `tokenizer` copy beside it; both now wait for a use."""
    import model2vec

    model = StaticModel.from_pretrained(str(large), kernel="native")
    proxy = _proxy(model)  # type: ignore[arg-type]
    assert not proxy.loaded and proxy.releases == 1
    reference = model2vec.StaticModel.from_pretrained(str(large))
    np.testing.assert_array_equal(model.encode(TEXTS), reference.encode(TEXTS))
    model.max_length = 5  # the limit reaches the copy made later
    assert model.tokens == reference.tokens and model.median_token_length == reference.median_token_length
    assert model.unk_token_id == reference.unk_token_id
    assert not proxy.loaded  # nothing above rebuilt it; the public copy is its own object
    reference.max_length = 5
    assert model.tokenizer.truncation == reference.tokenizer.truncation and not proxy.loaded
    assert json.loads(model.tokenizer.to_str()) == json.loads(reference.tokenizer.to_str())
    copy = pickle.loads(pickle.dumps(model))
    assert not _proxy(copy).loaded and copy.tokenizer.truncation == reference.tokenizer.truncation  # type: ignore[arg-type]
    np.testing.assert_array_equal(copy.encode(TEXTS), reference.encode(TEXTS))
