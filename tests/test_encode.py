"""encode() and friends behave like sentence-transformers 6.2 (checked against the real library)."""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from staticst import StaticSentenceTransformer
from tests.conftest import wordpiece_tokenizer, write_model2vec

pytestmark = pytest.mark.usefixtures("backend")  # every test here runs on both backends

TEXTS = ["the cat sat on the mat", "a dog bit the man", "hello world", "", "zzz"]


@pytest.fixture
def pair(tiny_st: Path) -> tuple[StaticSentenceTransformer, object]:
    from sentence_transformers import SentenceTransformer

    return StaticSentenceTransformer(tiny_st), SentenceTransformer(str(tiny_st), device="cpu")


def test_shapes_and_dtypes_match_st(pair: tuple) -> None:
    ours, ref = pair
    for inputs in ["hello world", TEXTS, tuple(TEXTS), np.array(TEXTS)]:
        got, want = ours.encode(inputs), ref.encode(inputs)
        assert type(got) is type(want) and got.shape == want.shape and got.dtype == want.dtype
        assert np.abs(got - want).max() <= 1e-6


def test_empty_list_matches_st(pair: tuple) -> None:
    ours, ref = pair
    got, want = ours.encode([]), ref.encode([])
    assert got.shape == want.shape and got.dtype == want.dtype


def test_order_is_input_order(pair: tuple) -> None:
    ours, _ = pair
    full = ours.encode(TEXTS)
    for i, text in enumerate(TEXTS):
        np.testing.assert_array_equal(full[i], ours.encode(text))


def test_prompts(pair: tuple) -> None:
    ours, ref = pair
    assert ours.prompts == ref.prompts
    for kwargs in ({"prompt_name": "query"}, {"prompt": "search: "}, {"prompt": "x ", "prompt_name": "query"}):
        assert np.abs(ours.encode(TEXTS, **kwargs) - ref.encode(TEXTS, **kwargs)).max() <= 1e-6
    assert np.abs(ours.encode_query(TEXTS) - ref.encode_query(TEXTS)).max() <= 1e-6
    assert np.abs(ours.encode_document(TEXTS) - ref.encode_document(TEXTS)).max() <= 1e-6
    with pytest.raises(ValueError, match="Prompt name 'nope' not found"):
        ours.encode(TEXTS, prompt_name="nope")


def test_default_prompt_name(tiny_st: Path) -> None:
    from sentence_transformers import SentenceTransformer

    ours = StaticSentenceTransformer(tiny_st, default_prompt_name="query")
    ref = SentenceTransformer(str(tiny_st), default_prompt_name="query", device="cpu")
    assert np.abs(ours.encode(TEXTS) - ref.encode(TEXTS)).max() <= 1e-6
    with pytest.raises(ValueError, match="Default prompt name 'missing'"):
        StaticSentenceTransformer(tiny_st, default_prompt_name="missing")


@pytest.mark.parametrize("truncate_dim", [None, 3, 8, 50])
@pytest.mark.parametrize("normalize", [False, True])
def test_truncate_then_normalize_order(pair: tuple, truncate_dim: int | None, normalize: bool) -> None:
    ours, ref = pair
    got = ours.encode(TEXTS, truncate_dim=truncate_dim, normalize_embeddings=normalize)
    want = ref.encode(TEXTS, truncate_dim=truncate_dim, normalize_embeddings=normalize)
    assert got.shape == want.shape and np.abs(got - want).max() <= 1e-6


def test_constructor_truncate_dim_and_context_manager(tiny_st: Path) -> None:
    from sentence_transformers import SentenceTransformer

    ours = StaticSentenceTransformer(tiny_st, truncate_dim=4)
    ref = SentenceTransformer(str(tiny_st), truncate_dim=4, device="cpu")
    assert ours.get_sentence_embedding_dimension() == ref.get_sentence_embedding_dimension() == 4
    assert np.abs(ours.encode(TEXTS) - ref.encode(TEXTS)).max() <= 1e-6
    with ours.truncate_embeddings(2), ref.truncate_sentence_embeddings(2):
        assert ours.encode(TEXTS).shape == ref.encode(TEXTS).shape == (len(TEXTS), 2)
    assert ours.encode(TEXTS).shape == (len(TEXTS), 4)


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_precisions(pair: tuple, precision: str) -> None:
    ours, ref = pair
    texts = [f"the cat {w} on the mat" for w in ["sat", "bit", "eats", "was"]] + TEXTS
    got, want = ours.encode(texts, precision=precision), ref.encode(texts, precision=precision)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    single_got = ours.encode("hello", precision="binary")
    assert single_got.shape == ref.encode("hello", precision="binary").shape


def test_bad_arguments(pair: tuple) -> None:
    ours, ref = pair
    with pytest.raises(ValueError, match=r"additional keyword arguments .* \['foo'\]"):
        ours.encode(TEXTS, foo=1)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        ours.encode(TEXTS, batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got -3"):
        ours.encode(TEXTS, batch_size=-3)
    with pytest.raises(ValueError, match="Precision 'fp16' is not supported"):
        ours.encode(TEXTS, precision="fp16")
    with pytest.raises(ValueError, match="truncate_dim must be a positive integer"):
        ours.encode(TEXTS, truncate_dim=0)
    with pytest.raises(TypeError, match="item 1 is int"):
        ours.encode(["ok", 3])
    with pytest.raises(TypeError, match="item 2 is bytes"):
        ours.encode(["ok", "fine", b"bytes"])
    # str subclasses (numpy's str_) are text
    np.testing.assert_array_equal(ours.encode([np.str_("ok"), "fine"]), ours.encode(["ok", "fine"]))
    with pytest.raises(TypeError, match="got int"):
        ours.encode(5)
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        StaticSentenceTransformer(ours.model_path, bogus=True)
    # the reference raises ValueError for the same unknown kwarg
    with pytest.raises(ValueError):
        ref.encode(TEXTS, foo=1)
    ours.encode(TEXTS, task="query")  # accepted, as ST does


def test_no_effect_options_warn_once(tiny_st: Path) -> None:
    import staticst._st_args as args_module

    args_module._warned.clear()
    ours = StaticSentenceTransformer(tiny_st)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours.encode(TEXTS, device="cuda")
        ours.encode(TEXTS, device="cuda")
        ours.encode(TEXTS, chunk_size=10)
        ours.encode(TEXTS, device="cpu")
    messages = [str(w.message) for w in caught]
    assert sum("device='cuda' has no effect" in m for m in messages) == 1
    assert sum("chunk_size" in m for m in messages) == 1
    assert not any("'cpu'" in m for m in messages)


def test_convert_to_tensor_with_torch(pair: tuple) -> None:
    torch = pytest.importorskip("torch")  # torch is installed in CI via the [test] extra
    ours, ref = pair
    got = ours.encode(TEXTS, convert_to_tensor=True)
    want = ref.encode(TEXTS, convert_to_tensor=True)
    assert isinstance(got, torch.Tensor) and got.shape == want.shape and got.dtype == want.dtype
    as_list = ours.encode(TEXTS, convert_to_numpy=False)
    assert isinstance(as_list, list) and isinstance(as_list[0], torch.Tensor)
    assert ours.encode([], convert_to_tensor=True).shape == ref.encode([], convert_to_tensor=True).shape


def test_similarity_functions(pair: tuple) -> None:
    ours, ref = pair
    emb = ours.encode(TEXTS)
    for name in ["cosine", "dot", "euclidean", "manhattan"]:
        ours.similarity_fn_name = name
        ref.similarity_fn_name = name
        got = ours.similarity(emb, emb[:2])
        assert isinstance(got, np.ndarray)
        assert np.abs(got - ref.similarity(emb, emb[:2]).numpy()).max() <= 1e-5
        rev = np.ascontiguousarray(emb[::-1])
        pw = ours.similarity_pairwise(emb, rev)
        assert np.abs(pw - ref.similarity_pairwise(emb, rev).numpy()).max() <= 1e-5
    with pytest.raises(ValueError, match="only supports similarity_fn_name in"):  # sentence-transformers 6's wording
        ours.similarity_fn_name = "jaccard"


def test_similarity_default_is_cosine(tiny_model2vec: Path) -> None:
    assert StaticSentenceTransformer(tiny_model2vec).similarity_fn_name == "cosine"


def test_dimensions_and_seq_length(pair: tuple, tiny_model2vec: Path) -> None:
    ours, ref = pair
    assert ours.get_sentence_embedding_dimension() == ref.get_sentence_embedding_dimension()
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension()
    assert ours.max_seq_length == ref.max_seq_length == math.inf
    assert StaticSentenceTransformer(tiny_model2vec).max_seq_length == math.inf  # the ST face: no limit
    m2v = StaticSentenceTransformer(tiny_model2vec, family="model2vec")
    assert m2v.max_seq_length == 512  # model2vec 0.10's default limit
    m2v.max_seq_length = 2
    assert m2v.tokenize(["the cat sat on"])["input_ids"].tolist() == m2v.tokenize(["the cat"])["input_ids"].tolist()
    with pytest.raises(ValueError, match="max_seq_length must be a positive int"):
        m2v.max_seq_length = -1


def test_tokenize_matches_st(pair: tuple) -> None:
    ours, ref = pair
    got = ours.tokenize(TEXTS)
    want = ref.preprocess(TEXTS)
    assert got["input_ids"].tolist() == want["input_ids"].tolist()
    assert got["offsets"].tolist() == want["offsets"].tolist()


def test_empty_and_unknown_give_zero_vectors(tmp_path: Path) -> None:
    write_model2vec(tmp_path / "m", wordpiece_tokenizer(), normalize=True)
    model = StaticSentenceTransformer(tmp_path / "m", family="model2vec")
    out = model.encode(["", "   ", "\u2603\u2603"])  # snowmen are [UNK] for this vocabulary: dropped (model2vec)
    assert np.isfinite(out).all() and not out.any()


def test_progress_bar(pair: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    ours, _ = pair
    texts = [f"the cat {i}" for i in range(300)]
    plain = ours.encode(texts)
    shown = ours.encode(texts, show_progress_bar=True, batch_size=16)
    np.testing.assert_array_equal(plain, shown)
    assert "Batches" in capsys.readouterr().err


@pytest.mark.parametrize("n, batch_size", [(300, 16), (5, 32), (64, 32), (1000, 1)])
def test_progress_bar_counts_batches_as_sentence_transformers_does(
    pair: tuple, capsys: pytest.CaptureFixture[str], n: int, batch_size: int
) -> None:
    # The bar said "Batches" but counted texts (300/300 where sentence-transformers shows 19/19).
    import re

    ours, ref = pair
    texts = [f"the cat {i}" for i in range(n)]
    shown = []
    for model in (ref, ours):
        capsys.readouterr()
        model.encode(texts, show_progress_bar=True, batch_size=batch_size)
        final = re.findall(r"Batches: 100%\|[^|]*\| (\d+)/(\d+)", capsys.readouterr().err)
        assert final, type(model).__name__
        shown.append(final[-1])
    assert shown[1] == shown[0] == (str(-(-n // batch_size)),) * 2


def test_progress_bar_default_follows_logger(pair: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    ours, _ = pair
    logger = logging.getLogger("staticst.model")
    old = logger.level
    try:
        logger.setLevel(logging.INFO)
        ours.encode([f"t {i}" for i in range(100)], batch_size=8)
        assert "Batches" in capsys.readouterr().err
    finally:
        logger.setLevel(old)


def test_output_value_none_and_token_embeddings(pair: tuple) -> None:
    ours, _ = pair
    rows = ours.encode(TEXTS, output_value=None)
    assert isinstance(rows, list) and list(rows[0]) == ["input_ids", "offsets", "sentence_embedding"]  # as ST 6.2
    with pytest.raises(ValueError, match="no contextual token embeddings"):
        ours.encode(TEXTS, output_value="token_embeddings")


def test_large_batches_are_chunked_identically(tiny_model2vec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import staticst.engine as engine_module
    import staticst.pooling as pooling_module

    model = StaticSentenceTransformer(tiny_model2vec)
    texts = [" ".join(["the cat sat"] * (i % 40)) for i in range(3000)] + ["dog " * 2500]
    whole = model.encode(texts)
    monkeypatch.setattr(engine_module, "ENCODE_STEP", 97)
    monkeypatch.setattr(pooling_module, "WINDOW_BYTES", 4096)
    monkeypatch.setattr(pooling_module, "LONG_TEXT_TOKENS", 64)
    np.testing.assert_array_equal(whole, model.encode(texts))
    monkeypatch.setattr(engine_module, "ENCODE_STEP_CHARS", 500)  # steps cut by characters, long texts alone
    bounds = engine_module.steps(texts)
    assert bounds[0] == 0 and bounds[-1] == len(texts) and all(b > a for a, b in zip(bounds, bounds[1:], strict=False))
    assert len(bounds) > len(texts) // 97 + 2
    np.testing.assert_array_equal(whole, model.encode(texts))


def test_model_card_data_and_info(pair: tuple) -> None:
    ours, _ = pair
    info = ours.info()
    assert info["layout"] == "sentence-transformers" and info["dim"] == 8
    assert info["num_parameters"] == ours.embedding_table.size
    assert ours.model_card_data.to_dict()["tags"]
    assert "StaticSentenceTransformer(" in repr(ours)


def test_max_seq_length_change_keeps_the_tokenizer_and_its_cache(tiny_model2vec: Path) -> None:
    model = StaticSentenceTransformer(tiny_model2vec)
    before = model.engine.tokenizer
    model.encode(["the cat sat on the mat"] * 3)
    model.max_seq_length = 2
    after = model.engine.tokenizer
    assert after is not before and after.tokenizer is before.tokenizer and after.fast is before.fast
    assert after.settings.max_length == 2 and before.settings.max_length != 2
    full = len(before.encode_one("the cat sat on the mat"))
    assert full > 2 and len(after.encode_one("the cat sat on the mat")) == 2


def test_float16_copy_is_made_for_large_steps_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import staticst.engine as engine_module

    write_model2vec(tmp_path / "f16", wordpiece_tokenizer(), dtype="float16", dim=16)
    model = StaticSentenceTransformer(tmp_path / "f16", kernel="numpy")  # the numpy path's float32 copy
    texts = ["the cat sat on the mat", "a dog", "", "hello world the cat"] * 5
    small = model.encode(texts)
    assert model.engine.gather_table is None  # 20 short texts: rows are converted as they are gathered
    monkeypatch.setattr(engine_module, "GATHER_COPY_TOKENS", 1)
    with_copy = model.encode(texts)
    assert model.engine.gather_table is not None and model.engine.gather_table.dtype == np.float32
    np.testing.assert_array_equal(small, with_copy)
    np.testing.assert_array_equal(model.encode(texts[0]), small[0])


@pytest.mark.parametrize("method", ["encode", "encode_query", "encode_document"])
def test_signature_defaults_are_the_options_defaults_and_sentence_transformers(method: str) -> None:
    """The public signatures spell out EncodeOptions' defaults, which are sentence-transformers' own."""
    import dataclasses
    import inspect

    from sentence_transformers import SentenceTransformer

    from staticst._st_args import PLAIN_OPTIONS, EncodeOptions

    ours = inspect.signature(getattr(StaticSentenceTransformer, method)).parameters
    theirs = inspect.signature(getattr(SentenceTransformer, method)).parameters
    for field in dataclasses.fields(EncodeOptions):
        assert ours[field.name].default == field.default, (method, field.name)
        if field.name in theirs:
            assert theirs[field.name].default == field.default, (method, field.name)
    options = [name for name in ours if name not in ("self", "inputs", "kwargs")]
    assert options == [field.name for field in dataclasses.fields(EncodeOptions)]
    assert PLAIN_OPTIONS == ("float32", "sentence_embedding", True, False, None, None, None)


def test_encode_with_usage_takes_encode_options_by_name(pair: tuple) -> None:
    ours, _ = pair
    vectors, tokens = ours.encode_with_usage(TEXTS, truncate_dim=8, normalize_embeddings=True, precision="int8")
    np.testing.assert_array_equal(vectors, ours.encode(TEXTS, truncate_dim=8, normalize_embeddings=True, precision="int8"))
    assert tokens > 0
    with pytest.raises(ValueError, match="bogus"):
        ours.encode_with_usage(TEXTS, bogus=1)
