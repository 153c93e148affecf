"""The native tokenizer models (csrc/model_*.c, ``staticst._kernel.TokenModel``) against Hugging Face tokenizers.

For every tokenizer — the shared real models (BERT WordPiece, Llama BPE with byte_fallback, the 276K-piece
Unigram), the trained fixture pipelines and the setting variants of tests/tokenizer_fixtures.py — the native
ids of a word must equal ``[t.id for t in tokenizer.model.tokenize(word)]``: every vocabulary piece as a word,
every code point alone, the pre-tokens of every language of the sample, and hypothesis words (arbitrary
Unicode; pieces glued together; byte-mapped characters). Where tokenizers raises, the native model raises too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers

from tests.tokenizer_fixtures import (
    SHARED_TOKENIZERS,
    bare_model,
    model_variants,
    pretokens,
    sample_by_script,
    sample_lines,
    shared_tokenizers,
    trained_tokenizers,
)

kernel = pytest.importorskip("staticst._kernel", reason="the compiled kernel is not built")
from staticst.tokenization.native_model import UnsupportedModel, build_token_model  # noqa: E402

TRAINED = tuple(trained_tokenizers())
VARIANTS = tuple(model_variants())
ALL = SHARED_TOKENIZERS + TRAINED + VARIANTS
#: variants on which tokenizers raises for some words (an unk token that cannot be produced)
RAISING = {"bpe-unk-not-in-vocab", "unigram-no-unk", "wordpiece-no-unk-in-vocab"}
CODE_POINTS = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


@pytest.fixture(scope="module")
def tokenizers(shared_dir: Path) -> dict[str, Tokenizer]:
    return {**shared_tokenizers(shared_dir), **trained_tokenizers(), **model_variants()}


_NATIVE: dict[int, Any] = {}


def native(tokenizers: dict[str, Tokenizer], name: str) -> Any:
    """The native model of a fixture tokenizer (built once per tokenizer object)."""
    tok = tokenizers[name]
    if id(tok) not in _NATIVE:
        _NATIVE[id(tok)] = (tok, build_token_model(tok))
    return _NATIVE[id(tok)][1]


def reference(tokenizer: Tokenizer, word: str) -> list[int] | str:
    try:
        return [t.id for t in tokenizer.model.tokenize(word)]
    except Exception as exc:  # tokenizers raises a bare Exception
        return f"error: {exc}"


def ours(model: Any, word: str) -> list[int] | str:
    try:
        return list(model.encode(word))
    except ValueError as exc:
        return f"error: {exc}"


def assert_same(tokenizer: Tokenizer, model: Any, words: Iterable[str], *, bulk: bool = True) -> int:
    """Native ids == tokenizers' ids for every word (bulk: through the bare model's parallel encode_batch, checked
    word by word on a difference). Returns the number of words compared."""
    words = list(words)
    if bulk:
        try:
            encodings = bare_model(tokenizer).encode_batch(words, add_special_tokens=False)
        except Exception:
            encodings = None  # some word raises: compare word by word
        if encodings is not None:
            ids, offsets = model.encode_flat(words)
            want = [e.ids for e in encodings]
            lengths = np.fromiter((len(w) for w in want), dtype=np.int64, count=len(want))
            flat = np.fromiter((i for w in want for i in w), dtype=np.int64, count=int(lengths.sum()))
            if np.array_equal(np.diff(offsets), lengths) and np.array_equal(ids, flat):
                return len(words)
    bad = []
    for word in words:
        want_one, got = reference(tokenizer, word), ours(model, word)
        if isinstance(want_one, str) and isinstance(got, str):
            continue  # both raise
        if want_one != got:
            bad.append((word, want_one, got))
    assert not bad, f"{len(bad)} of {len(words)} words differ, e.g. {bad[:5]}"
    return len(words)


def vocab_words(tokenizer: Tokenizer) -> list[str]:
    section = json.loads(tokenizer.model.__getstate__())
    vocab = section["vocab"]
    return [piece for piece, _ in vocab] if isinstance(vocab, list) else list(vocab)


# ------------------------------------------------------------------ every tokenizer, every kind of word


@pytest.mark.parametrize("name", ALL)
def test_every_vocabulary_piece_as_a_word(name: str, tokenizers: dict[str, Tokenizer]) -> None:
    tok = tokenizers[name]
    pieces = vocab_words(tok)
    # each piece alone, each piece twice, and neighbours glued (pieces next to each other in the vocabulary)
    glued = [a + b for a, b in zip(pieces[::7], pieces[3::7], strict=False)]
    assert assert_same(tok, native(tokenizers, name), pieces + [p + p for p in pieces[::5]] + glued) >= len(pieces)


@pytest.mark.parametrize("name", ALL)
def test_every_code_point_alone(name: str, tokenizers: dict[str, Tokenizer]) -> None:
    assert assert_same(tokenizers[name], native(tokenizers, name), CODE_POINTS) == 0x110000 - 0x800


@pytest.mark.parametrize("name", ALL)
def test_every_language_of_the_sample(name: str, tokenizers: dict[str, Tokenizer]) -> None:
    """The pre-tokens the model sees in the tokenizer's own pipeline (byte-mapped for ByteLevel), the raw
    whitespace-split words, and whole messages as one word (CJK and Thai write without spaces)."""
    tok, model = tokenizers[name], native(tokenizers, name)
    assert len(sample_by_script()) == 97  # 96 locales and English
    for language, texts in sample_by_script().items():
        words = pretokens(tok, texts) + [w for t in texts for w in t.split()] + list(texts)
        assert assert_same(tok, model, words), language


def test_the_bulk_reference_is_model_tokenize(tokenizers: dict[str, Tokenizer]) -> None:
    """assert_same's fast path (the bare model's encode_batch) gives exactly ``model.tokenize`` per word."""
    for name in ("potion-base-8M", "wordllama-l2-supercat-256", "tokenlearn-10k-int8", *TRAINED):
        tok = tokenizers[name]
        words = pretokens(tok, sample_lines()[::5]) + CODE_POINTS[::997] + ["", " ", "a" * 150]
        bulk = [e.ids for e in bare_model(tok).encode_batch(words, add_special_tokens=False)]
        assert bulk == [reference(tok, w) for w in words], name


# ------------------------------------------------------------------ property tests

BYTE_CHARS = "".join(pre_tokenizers.ByteLevel.alphabet())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(words=st.lists(st.text(max_size=40), min_size=1, max_size=30))
@pytest.mark.parametrize("name", ALL)
def test_arbitrary_unicode_words(name: str, words: list[str], tokenizers: dict[str, Tokenizer]) -> None:
    assert_same(tokenizers[name], native(tokenizers, name), words)


@st.composite
def piece_words(draw: Callable[..., Any], part: st.SearchStrategy[str]) -> str:
    return "".join(draw(st.lists(part, min_size=1, max_size=8)))


@pytest.mark.parametrize("name", ALL)
def test_words_made_of_pieces_and_byte_characters(name: str, tokenizers: dict[str, Tokenizer]) -> None:
    tok = tokenizers[name]
    model = native(tokenizers, name)
    # one strategy for the whole run: hypothesis labels a sampled_from by scanning its elements, once per
    # strategy object (a new one per example scanned 276K pieces 5,000 times: 30 s of a 45 s test)
    part = st.sampled_from(tuple(vocab_words(tok))) | st.text(alphabet=BYTE_CHARS, min_size=1, max_size=3)

    @settings(max_examples=80, deadline=None)
    @given(words=st.lists(piece_words(part), min_size=1, max_size=20))
    def check(words: list[str]) -> None:
        assert_same(tok, model, words)

    check()


# ------------------------------------------------------------------ edge cases, each rule on purpose


def _build(model: Any) -> tuple[Tokenizer, Any]:
    tok = Tokenizer(model)
    return tok, build_token_model(tok)


def test_the_empty_word_has_no_ids(tokenizers: dict[str, Tokenizer]) -> None:
    for name in ALL:
        assert reference(tokenizers[name], "") == [] == native(tokenizers, name).encode(""), name


def test_wordpiece_longest_match_limit_and_unknown() -> None:
    vocab = {"[UNK]": 0, "un": 1, "##aff": 2, "##able": 3, "una": 4, "##ffa": 5, "##b": 6, "a": 7, "##le": 8}
    tok, model = _build(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=9))
    words = ["unaffable", "unaffabl", "unaffable" + "x", "una", "un", "aaaa", "a" * 9, "a" * 10, "é" * 9, "é" * 10,
             "unaffab", "##aff", "x", "ünaffable"]  # fmt: skip
    assert_same(tok, model, words, bulk=False)
    assert model.encode("a" * 10) == [0]  # 10 characters > max_input_chars_per_word
    assert model.encode("unaffable") == [4, 5, 6, 8]  # greedy longest first: "una" before "un"


def test_wordpiece_without_its_unk_token_raises_where_tokenizers_raises() -> None:
    tok, model = _build(models.WordPiece({"a": 0, "##b": 1}, unk_token="[UNK]", max_input_chars_per_word=3))
    assert model.encode("ab") == [0, 1]
    for word in ("ac", "aaaa"):
        with pytest.raises(Exception, match="Missing"):
            tok.model.tokenize(word)
        with pytest.raises(ValueError, match="cannot tokenize"):
            model.encode(word)


def test_unigram_ties_take_the_first_path_found() -> None:
    # "ab" + "c" and "a" + "bc" score the same: the earliest start wins at each end, as in tokenizers
    pieces = [("<unk>", 0.0), ("a", -1.0), ("b", -1.0), ("c", -1.0), ("ab", -2.0), ("bc", -2.0), ("abc", -3.0)]
    tok, model = _build(models.Unigram(pieces, unk_id=0, byte_fallback=False))
    words = ["abc", "abcabc", "ab", "bc", "cab", "xabcx", "aXb"]
    assert_same(tok, model, words, bulk=False)
    assert model.encode("abc") == [t.id for t in tok.model.tokenize("abc")]


def test_unigram_unknown_runs_fuse_and_fall_back_to_bytes() -> None:
    pieces = [("<unk>", 0.0), ("a", -1.0), ("b", -2.0), ("<0xE2>", -5.0), ("<0x98>", -5.0), ("<0x83>", -5.0)]
    for byte_fallback in (False, True):
        tok, model = _build(models.Unigram(pieces, unk_id=0, byte_fallback=byte_fallback))
        words = ["☃", "☃☃a☃", "a☃b", "é", "aé☃", "<unk>☃", "<0xE2>"]
        assert_same(tok, model, words, bulk=False)
    # fused unknown string equal to a piece takes that piece's id (positive scores make unknowns win)
    tok, model = _build(models.Unigram([("<unk>", 50.0), ("xy", 45.0)], unk_id=0, byte_fallback=False))
    assert_same(tok, model, ["xy", "xyxy", "x", "yx"], bulk=False)
    assert model.encode("xy") == [1] == reference(tok, "xy")


def test_unigram_without_unk_id_raises_where_tokenizers_raises() -> None:
    tok, model = _build(models.Unigram([("a", -1.0), ("b", -2.0), ("ab", -1.5)], unk_id=None, byte_fallback=False))
    assert model.encode("ab") == reference(tok, "ab")
    with pytest.raises(ValueError, match="unk_id"):
        model.encode("abc")
    assert isinstance(reference(tok, "abc"), str)


def test_unigram_duplicate_pieces_take_the_last_id() -> None:
    tok, model = _build(
        models.Unigram([("<unk>", 0.0), ("a", -1.0), ("b", -1.0), ("a", -3.0)], unk_id=0, byte_fallback=False)
    )
    assert model.encode("ab") == reference(tok, "ab") == [3, 2]


def test_bpe_equal_ranks_at_different_positions_merge_left_first() -> None:
    vocab = {"a": 0, "b": 1, "aa": 2, "aaa": 3, "ab": 4, "aab": 5, "ba": 6}
    merges = [("a", "a"), ("aa", "a"), ("a", "b"), ("aa", "b"), ("b", "a")]
    tok, model = _build(models.BPE(vocab, merges))
    words = ["aaa", "aaaa", "aaaaa", "aab", "abab", "baaab", "aaaaab", "ba" * 5]
    assert_same(tok, model, words, bulk=False)
    assert model.encode("aaaa") == [2, 2]  # (a a) at position 0 before position 1 and 2


def test_bpe_stale_queue_entries_follow_tokenizers() -> None:
    # "a"+"bc" and "ab"+"c" make the same token: tokenizers checks a queued merge only by the new id it makes
    vocab = {"a": 0, "b": 1, "c": 2, "bc": 3, "ab": 4, "abc": 5, "d": 6, "cd": 7}
    merges = [("b", "c"), ("a", "b"), ("c", "d"), ("ab", "c"), ("a", "bc")]
    tok, model = _build(models.BPE(vocab, merges))
    assert_same(tok, model, ["abc", "abcd", "aabc", "abcabc", "bcd", "abbc"], bulk=False)


def test_bpe_ignore_merges_takes_whole_words() -> None:
    vocab = {"<unk>": 0, "a": 1, "b": 2, "ab": 3, "abab": 4, "ba": 5}
    for ignore in (False, True):
        tok, model = _build(models.BPE(vocab, [("a", "b"), ("b", "a")], unk_token="<unk>", ignore_merges=ignore))
        assert_same(tok, model, ["abab", "ababab", "ba", "x", "abx"], bulk=False)
    assert model.encode("abab") == [4]


def test_bpe_byte_fallback_unknown_and_affixes() -> None:
    vocab = {"<unk>": 0, "a": 1, "##a": 2, "a</w>": 3, "##a</w>": 4, "<0xC3>": 5, "<0xA9>": 6, "<0x23>": 7, "<0x3C>": 8}
    for fuse in (False, True):
        for unk in ("<unk>", None):
            for fallback in (False, True):
                tok, model = _build(models.BPE(vocab, [], unk_token=unk, continuing_subword_prefix="##",
                                               end_of_word_suffix="</w>", fuse_unk=fuse, byte_fallback=fallback))  # fmt: skip
                assert_same(
                    tok, model, ["a", "aa", "aaa", "é", "aéa", "éé", "☃", "a☃☃a", "☃é☃", "a☃é", "éa"], bulk=False
                )


def test_bpe_unk_token_missing_from_the_vocabulary_raises_where_tokenizers_raises() -> None:
    tok, model = _build(models.BPE({"a": 0}, [], unk_token="<unk>"))
    assert model.encode("aa") == [0, 0]
    with pytest.raises(ValueError, match="Unk token"):
        model.encode("ab")
    assert isinstance(reference(tok, "ab"), str)


# ------------------------------------------------------------------ what is refused, and why


def test_what_is_not_native_is_refused_with_a_reason() -> None:
    with pytest.raises(UnsupportedModel, match="dropout"):
        build_token_model(Tokenizer(models.BPE({"a": 0}, [], dropout=0.5)))
    build_token_model(Tokenizer(models.BPE({"a": 0}, [], dropout=0.0)))  # 0.0: no dropout at all
    with pytest.raises(UnsupportedModel, match="WordLevel"):
        build_token_model(Tokenizer(models.WordLevel({"a": 0}, unk_token="a")))
    sampled = Tokenizer(models.Unigram([("<unk>", 0.0), ("a", -1.0)], unk_id=0, byte_fallback=False))
    sampled.model.alpha = 0.1
    with pytest.raises(UnsupportedModel, match="alpha"):
        build_token_model(sampled)
    with pytest.raises(UnsupportedModel, match="settings the native kernel does not implement"):
        build_token_model(Tokenizer(models.WordPiece({"a": 0})), {"type": "WordPiece", "vocab": {}, "new_setting": 1})


def test_bad_constructor_input_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="TokenModel.wordpiece"):
        kernel.TokenModel()
    with pytest.raises(ValueError, match="not in the vocabulary"):
        kernel.TokenModel.bpe({"a": 0}, [("a", "b")], None, None, None, False, False, False)
    with pytest.raises(ValueError, match="merged token"):
        kernel.TokenModel.bpe({"a": 0, "b": 1}, [("a", "b")], None, None, None, False, False, False)
    with pytest.raises(ValueError, match="unk_id 5"):
        kernel.TokenModel.unigram([("a", 0.0)], 5, False)
    with pytest.raises(ValueError, match="outside"):
        kernel.TokenModel.wordpiece({"a": -1}, "[UNK]", "##", 100)
    with pytest.raises(TypeError, match="must be a str"):
        kernel.TokenModel.wordpiece({"a": 0}, "[UNK]", "##", 100).encode(b"a")


def test_models_report_their_size(tokenizers: dict[str, Tokenizer]) -> None:
    big = native(tokenizers, "tokenlearn-10k-int8")
    assert big.kind == "Unigram" and big.vocab_size == 276326
    assert big.trie_states > 276326 and 0 < big.memory < 64 * 2**20 and big.build_ms > 0
    assert repr(big).startswith("<TokenModel Unigram, 276326 ids")
    assert sys.getrefcount(big) >= 2
