"""save / save_pretrained: folders that staticst, model2vec and sentence-transformers all load back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from staticst import StaticSentenceTransformer

TEXTS = ["The cat sat on the mat.", "Banks by the river", "", "qwzx unknown tokens", "emoji 😀 and 日本語"]


@pytest.mark.parametrize("name", ["potion-base-2M", "wordllama-l2-supercat-256", "tokenlearn-10k-int8"])
def test_model2vec_folder_round_trip(name: str, tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    """A StaticSentenceTransformer saves as SentenceTransformer.save does (its layout), whatever folder it read."""
    from model2vec import StaticModel
    from sentence_transformers import SentenceTransformer

    original = StaticSentenceTransformer(shared_model(name))
    original.save(tmp_path / "saved")
    again = StaticSentenceTransformer(tmp_path / "saved")
    assert again.layout == "sentence-transformers"
    np.testing.assert_array_equal(again.encode(TEXTS), original.encode(TEXTS))
    # sentence-transformers reads the saved folder back with the vectors the original gives (it computes a
    # float16 table in float16, where the empty text's 0 / max(0, 1e-12) is NaN: the empty text is left out)
    st_vec = SentenceTransformer(str(tmp_path / "saved"), device="cpu").encode([t for t in TEXTS if t])
    tolerance = 1e-6 if st_vec.dtype == np.float32 else 2e-3
    assert np.abs(st_vec.astype(np.float32) - original.encode([t for t in TEXTS if t])).max() <= tolerance
    # model2vec reads it too
    assert StaticModel.from_pretrained(tmp_path / "saved").encode(TEXTS).shape == (len(TEXTS), original.get_embedding_dimension())


@pytest.mark.parametrize("name", ["potion-base-2M", "wordllama-l2-supercat-256", "tokenlearn-10k-int8"])
def test_model2vec_family_round_trip(name: str, tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    """family="model2vec" reads and saves as model2vec does: model2vec reads the saved folder with the same vectors."""
    from model2vec import StaticModel

    original = StaticSentenceTransformer(shared_model(name), family="model2vec")
    reference = StaticModel.from_pretrained(shared_model(name)).encode(TEXTS).astype(np.float32)
    assert np.abs(reference - original.encode(TEXTS)).max() <= 1e-6
    original.save(tmp_path / "saved")
    again = StaticSentenceTransformer(tmp_path / "saved", family="model2vec")
    assert again.layout == "model2vec" and again.info()["dtype"] == original.info()["dtype"]
    np.testing.assert_array_equal(again.encode(TEXTS), original.encode(TEXTS))
    m2v = StaticModel.from_pretrained(tmp_path / "saved").encode(TEXTS).astype(np.float32)
    assert np.abs(m2v - original.encode(TEXTS)).max() <= 1e-6


def test_st_layout_round_trip(tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    from model2vec import StaticModel
    from sentence_transformers import SentenceTransformer

    original = StaticSentenceTransformer(shared_model("potion-base-2M-sentence-transformers"), prompts={"query": "q: "})
    original.save_pretrained(tmp_path / "saved")
    again = StaticSentenceTransformer(tmp_path / "saved")
    assert again.layout == "sentence-transformers" and again.prompts["query"] == "q: "
    np.testing.assert_array_equal(again.encode(TEXTS), original.encode(TEXTS))
    st = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert np.abs(st.encode(TEXTS) - original.encode(TEXTS)).max() <= 1e-6
    assert st.prompts["query"] == "q: "
    # model2vec can read the ST layout as well
    assert StaticModel.from_pretrained(tmp_path / "saved").encode(TEXTS).shape == (len(TEXTS), 64)


def test_saved_files(tiny_model2vec: Path, tmp_path: Path) -> None:
    model = StaticSentenceTransformer(tiny_model2vec, family="model2vec")
    model.max_seq_length = 7
    model.save(tmp_path / "out", model_name="tiny")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["normalize"] is True and config["max_length"] == 7
    assert "# tiny" in (tmp_path / "out" / "README.md").read_text()
    assert StaticSentenceTransformer(tmp_path / "out", family="model2vec").max_seq_length == 7
    # the default face saves sentence-transformers' layout; the limit survives there too
    model = StaticSentenceTransformer(tiny_model2vec)
    model.max_seq_length = 7
    model.save(tmp_path / "st")
    modules = json.loads((tmp_path / "st" / "modules.json").read_text())
    assert [m["type"] for m in modules][-1] == "sentence_transformers.models.Normalize"
    assert StaticSentenceTransformer(tmp_path / "st").max_seq_length == 7


def test_saved_tokenizer_keeps_its_padding_and_truncation(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    from tests.conftest import wordpiece_tokenizer, write_st_root

    tok = wordpiece_tokenizer()
    tok.enable_truncation(max_length=5, direction="left")
    tok.enable_padding(length=9, pad_token="[PAD]")
    write_st_root(tmp_path / "st", tok)
    model = StaticSentenceTransformer(tmp_path / "st")
    # encoding ignores padding; the truncation becomes the model's token limit
    assert model.tokenizer.padding is None and model.tokenizer.truncation is None
    assert model.max_seq_length == 5 and model.tokenizer_settings.truncation_side == "left"
    model.save(tmp_path / "out")
    saved = Tokenizer.from_file(str(tmp_path / "out" / "tokenizer.json"))
    assert saved.truncation == tok.truncation and saved.padding == tok.padding
    assert json.loads(saved.to_str()) == json.loads(tok.to_str())
    np.testing.assert_array_equal(StaticSentenceTransformer(tmp_path / "out").encode(TEXTS), model.encode(TEXTS))
    # sentence-transformers truncates from the left with this tokenizer too
    from sentence_transformers import SentenceTransformer

    long_texts = ["the cat sat on the mat by the dog", "dog cat", "sat sat the the cat cat mat"]
    reference = SentenceTransformer(str(tmp_path / "st"), device="cpu").encode(long_texts)
    assert np.abs(reference - model.encode(long_texts)).max() <= 1e-6


@pytest.mark.parametrize("name", ["potion-base-8M", "potion-base-2M-sentence-transformers"])
def test_round_trip_keeps_every_setting(name: str, tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    """prompts, default_prompt_name and similarity_fn_name survive save() for every layout (and ST reads them)."""
    from model2vec import StaticModel
    from sentence_transformers import SentenceTransformer

    prompts = {"query": "query: ", "document": "passage: ", "classification": "Classify: "}
    original = StaticSentenceTransformer(
        shared_model(name), prompts=prompts, default_prompt_name="classification", similarity_fn_name="dot"
    )
    original.max_seq_length = 100
    original.save(tmp_path / "saved")
    again = StaticSentenceTransformer(tmp_path / "saved")
    assert again.layout == "sentence-transformers"  # as SentenceTransformer.save writes it, from either layout
    assert again.prompts == original.prompts and again.default_prompt_name == "classification"
    assert again.similarity_fn_name == "dot" and again.max_seq_length == 100
    np.testing.assert_array_equal(again.encode(TEXTS), original.encode(TEXTS))
    st = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert {k: st.prompts[k] for k in prompts} == prompts
    assert st.default_prompt_name == "classification" and st.similarity_fn_name == "dot"
    assert StaticModel.from_pretrained(tmp_path / "saved").encode(TEXTS).shape[0] == len(TEXTS)


def test_round_trip_of_the_built_in_model_keeps_its_settings(tmp_path: Path) -> None:
    original = StaticSentenceTransformer(prompts={"query": "q: "}, default_prompt_name="query", similarity_fn_name="manhattan")
    original.save(tmp_path / "saved")
    again = StaticSentenceTransformer(tmp_path / "saved")
    assert (again.prompts["query"], again.default_prompt_name, again.similarity_fn_name) == ("q: ", "query", "manhattan")
    np.testing.assert_array_equal(again.encode(TEXTS), original.encode(TEXTS))
