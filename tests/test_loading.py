"""Loading: every layout as data, every shared static model, and a clear error for each bad input."""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from staticst import (
    CorruptModelError,
    ModelNotFoundError,
    NonFiniteEmbeddingError,
    StaticSentenceTransformer,
    UnknownLayoutError,
    VocabularyMismatchError,
)
from staticst.persistence.layout import LAYOUTS, detect_layout
from tests.conftest import bpe_tokenizer, unigram_tokenizer, wordpiece_tokenizer, write_model2vec, write_st_root

pytestmark = pytest.mark.usefixtures("backend")  # every test here runs on both backends

SHARED_STATIC = {
    "potion-base-8M": ("model2vec", 256, "float32"),
    "potion-base-2M": ("model2vec", 64, "float32"),
    "potion-base-2M-sentence-transformers": ("sentence-transformers", 64, "float32"),
    "wordllama-l2-supercat-256": ("model2vec", 256, "float16"),
    "tokenlearn-10k-int8": ("model2vec", 64, "int8"),
}


@pytest.mark.parametrize("name", sorted(SHARED_STATIC))
def test_every_shared_static_model_loads(name: str, shared_model: Callable[[str], Path]) -> None:
    layout, dim, dtype = SHARED_STATIC[name]
    model = StaticSentenceTransformer(shared_model(name))
    info = model.info()
    assert (info["layout"], info["dim"], info["dtype"]) == (layout, dim, dtype)
    vec = model.encode("a quick test sentence")
    assert vec.shape == (dim,) and vec.dtype == np.float32 and np.isfinite(vec).all()


def test_old_st_layout_in_0_static_embedding(tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    src = shared_model("potion-base-2M-sentence-transformers")
    dst = tmp_path / "old"
    (dst / "0_StaticEmbedding").mkdir(parents=True)
    shutil.copy(src / "model.safetensors", dst / "0_StaticEmbedding" / "model.safetensors")
    shutil.copy(src / "tokenizer.json", dst / "0_StaticEmbedding" / "tokenizer.json")
    shutil.copytree(src / "1_Normalize", dst / "1_Normalize")
    modules = [
        {"idx": 0, "name": "0", "path": "0_StaticEmbedding", "type": "sentence_transformers.models.StaticEmbedding"},
        {"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (dst / "modules.json").write_text(json.dumps(modules))
    old = StaticSentenceTransformer(dst)
    new = StaticSentenceTransformer(src)
    assert old.layout == "sentence-transformers-0_StaticEmbedding"
    texts = ["hello world", "a different sentence entirely"]
    np.testing.assert_array_equal(old.encode(texts), new.encode(texts))


def test_layouts_are_an_ordered_table() -> None:
    names = [layout.name for layout in LAYOUTS]
    assert names == ["model2vec", "sentence-transformers", "sentence-transformers-0_StaticEmbedding"]


@pytest.mark.parametrize("make_tokenizer", [wordpiece_tokenizer, bpe_tokenizer, unigram_tokenizer])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_tiny_models_of_each_tokenizer_and_dtype(tmp_path: Path, make_tokenizer: Callable, dtype: str) -> None:
    from model2vec import StaticModel

    tok = make_tokenizer()
    write_model2vec(tmp_path / "m", tok, dtype=dtype)
    ours = StaticSentenceTransformer(tmp_path / "m", family="model2vec")  # model2vec's rules, on purpose
    texts = ["the cat sat on the mat", "dogs eat fish", "", "zzz qqq"]
    got = ours.encode(texts)
    ref = StaticModel.from_pretrained(tmp_path / "m").encode(texts)
    assert got.dtype == np.float32
    assert np.abs(got - ref.astype(np.float32)).max() <= 1e-6


def test_quantized_vocabulary_tiny(tmp_path: Path) -> None:
    from model2vec import StaticModel

    write_model2vec(tmp_path / "q", wordpiece_tokenizer(), dtype="int8", quantized_rows=7, normalize=False)
    ours = StaticSentenceTransformer(tmp_path / "q")
    assert ours.info()["vocabulary_quantized"] and ours.info()["token_weights"]
    texts = ["the cat sat", "hello world dog", ""]
    ref = StaticModel.from_pretrained(tmp_path / "q").encode(texts)
    assert np.abs(ours.encode(texts) - ref).max() <= 1e-6


# ------------------------------------------------------------------------------------------- errors


def test_missing_folder_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        StaticSentenceTransformer(str(tmp_path / "nope" / "deeper"))


def test_unknown_layout_lists_what_was_found(tmp_path: Path) -> None:
    (tmp_path / "weird").mkdir()
    (tmp_path / "weird" / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(UnknownLayoutError, match="pytorch_model.bin") as info:
        StaticSentenceTransformer(tmp_path / "weird")
    assert "model2vec: config.json, model.safetensors, tokenizer.json" in str(info.value)


def test_missing_tokenizer_is_unknown_layout(tiny_model2vec: Path) -> None:
    (tiny_model2vec / "tokenizer.json").unlink()
    with pytest.raises(UnknownLayoutError, match=r"config.json.*model.safetensors"):
        StaticSentenceTransformer(tiny_model2vec)


def test_truncated_safetensors(tiny_model2vec: Path) -> None:
    path = tiny_model2vec / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(CorruptModelError, match="truncated"):
        StaticSentenceTransformer(tiny_model2vec)


def test_garbage_safetensors_header(tiny_model2vec: Path) -> None:
    path = tiny_model2vec / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 5) + b"{oops" + b"\0" * 32)
    with pytest.raises(CorruptModelError, match="unreadable safetensors header"):
        StaticSentenceTransformer(tiny_model2vec)


def test_tiny_file(tiny_model2vec: Path) -> None:
    (tiny_model2vec / "model.safetensors").write_bytes(b"abc")
    with pytest.raises(CorruptModelError, match="too small"):
        StaticSentenceTransformer(tiny_model2vec)


def test_wrong_tensor_name(tiny_model2vec: Path) -> None:
    save_file({"something_else": np.zeros((3, 2), np.float32)}, str(tiny_model2vec / "model.safetensors"))
    with pytest.raises(CorruptModelError, match=r"expected a tensor named 'embeddings'.*something_else"):
        StaticSentenceTransformer(tiny_model2vec)


def test_row_count_mismatch(tiny_model2vec: Path) -> None:
    save_file({"embeddings": np.zeros((5, 8), np.float32)}, str(tiny_model2vec / "model.safetensors"))
    with pytest.raises(VocabularyMismatchError, match=r"5 rows but the tokenizer .* has \d+ tokens"):
        StaticSentenceTransformer(tiny_model2vec)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_table(tiny_model2vec: Path, bad: float, dtype: str) -> None:
    from safetensors.numpy import load_file

    table = load_file(str(tiny_model2vec / "model.safetensors"))["embeddings"].astype(dtype)
    table[3, 2] = bad
    save_file({"embeddings": table}, str(tiny_model2vec / "model.safetensors"))
    with pytest.raises(NonFiniteEmbeddingError, match="row 3"):
        StaticSentenceTransformer(tiny_model2vec)


def test_float16_extremes_are_finite(tiny_model2vec: Path) -> None:
    from safetensors.numpy import load_file

    table = load_file(str(tiny_model2vec / "model.safetensors"))["embeddings"].astype(np.float16)
    table[0, :4] = [65504.0, -65504.0, 6e-8, -0.0]  # largest, smallest subnormal, negative zero
    save_file({"embeddings": table}, str(tiny_model2vec / "model.safetensors"))
    assert StaticSentenceTransformer(tiny_model2vec).embedding_table.dtype == np.float16


def test_unsupported_dtype(tiny_model2vec: Path) -> None:
    vocab = wordpiece_tokenizer().get_vocab_size()
    save_file({"embeddings": np.zeros((vocab, 4), np.int32)}, str(tiny_model2vec / "model.safetensors"))
    with pytest.raises(CorruptModelError, match="dtype int32 is not supported"):
        StaticSentenceTransformer(tiny_model2vec)


def test_one_dimensional_table(tiny_model2vec: Path) -> None:
    save_file({"embeddings": np.zeros((10,), np.float32)}, str(tiny_model2vec / "model.safetensors"))
    with pytest.raises(CorruptModelError, match="2-D"):
        StaticSentenceTransformer(tiny_model2vec)


def test_mapping_out_of_range(tmp_path: Path) -> None:
    tok = wordpiece_tokenizer()
    n = tok.get_vocab_size()
    write_model2vec(tmp_path / "q", tok, quantized_rows=4)
    save_file(
        {
            "embeddings": np.ones((4, 8), np.float32),
            "mapping": np.full(n, 9, np.int64),
            "weights": np.ones(n, np.float32),
        },
        str(tmp_path / "q" / "model.safetensors"),
    )
    with pytest.raises(CorruptModelError, match="outside 0..3"):
        StaticSentenceTransformer(tmp_path / "q")


def test_corrupt_tokenizer(tiny_model2vec: Path) -> None:
    (tiny_model2vec / "tokenizer.json").write_text("{not json")
    with pytest.raises(CorruptModelError, match="Could not load tokenizer"):
        StaticSentenceTransformer(tiny_model2vec)


def test_corrupt_config(tiny_model2vec: Path) -> None:
    (tiny_model2vec / "config.json").write_text("[1, 2")
    with pytest.raises(CorruptModelError, match="config.json as JSON"):
        StaticSentenceTransformer(tiny_model2vec)


def test_st_modules_with_unsupported_module(tiny_st: Path) -> None:
    modules = json.loads((tiny_st / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (tiny_st / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnknownLayoutError, match="Dense"):
        StaticSentenceTransformer(tiny_st)


def test_detect_layout_reports_normalize(tiny_st: Path, tmp_path: Path) -> None:
    assert detect_layout(tiny_st).normalize_module is True
    write_st_root(tmp_path / "plain", wordpiece_tokenizer(), normalize=False)
    assert detect_layout(tmp_path / "plain").normalize_module is False


def test_pickle_is_never_read(tiny_model2vec: Path) -> None:
    (tiny_model2vec / "model.safetensors").unlink()
    (tiny_model2vec / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(UnknownLayoutError):
        StaticSentenceTransformer(tiny_model2vec)
