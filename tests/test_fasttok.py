"""Exactness of the word-cache tokenizer (staticst.fasttok) against the tokenizers library itself.

Every test compares ``FastTokenizer.encode_flat`` with ``Tokenizer.encode(text, add_special_tokens=False)``
of the same tokenizer (padding and truncation disabled), on the real tokenizers in shared/models, on tiny
tokenizers built here, on adversarial strings and on the whole shared MTEB corpus with mutations.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

from staticst.tokenization.fast import FastTokenizer

REAL_MODELS = [
    "potion-base-8M",
    "potion-base-2M",
    "potion-base-2M-sentence-transformers",
    "wordllama-l2-supercat-256",
    "tokenlearn-10k-int8",
    "all-MiniLM-L6-v2",
]

# Fragments that stress the normalisation / splitting rules.
FRAGMENTS = [
    "Hello", "WORLD", "MiXeD", "don't", "U.S.A.", "e-mail", "$3.50", "100%", "#tag", "@user", "a_b", "x--y",
    "...", "?!?!", "(((", "}{", "~`^|\\", "'\"", "2024-01-01", "3.14159", "007", "1,000,000",
    " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x00", "\x01", "\x7f",
    "\u00a0", "\u3000", "\u2028", "\u2029", "\u200b", "\ufeff", "\ufffd", "\x85",
    "café", "CAFÉ", "cafe\u0301", "naïve", "Ångström", "İstanbul", "straße", "ẞ", "ﬁ", "Ω", "µ", "½",
    "日本語", "中文文本", "한국어", "ｆｕｌｌ", "😀", "👍🏽", "🇫🇷", "\u0301", "\u20ac", "—", "“quoted”", "«»",
    "[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "[cls]", "[CLS", "<s>", "</s>", "<unk>", "<pad>", "<PAD>",
    "▁", "▁word", "_", "x" * 101, "ab" * 60, "a" * 100, "b" * 99 + ".",
]  # fmt: skip
WORDS = ["the", "cat", "dog", "sat", "on", "mat", "hello", "world", "running", "quickly", "unbelievable"]


def _plain(tokenizer: Tokenizer) -> Tokenizer:
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_padding()
    copy.no_truncation()
    return copy


def _reference(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [tokenizer.encode(text, add_special_tokens=False).ids for text in texts]


def _assert_exact(fast: FastTokenizer, reference: Tokenizer, texts: list[str]) -> None:
    ids, offsets = fast.encode_flat(texts)
    assert ids.dtype == np.int32
    assert offsets.dtype == np.int64
    assert offsets.shape == (len(texts) + 1,)
    assert offsets[0] == 0 and offsets[-1] == len(ids)
    expected = _reference(reference, texts)
    for i, text in enumerate(texts):
        got = ids[offsets[i] : offsets[i + 1]].tolist()
        assert got == expected[i], f"text {i} {text!r}: fast {got} != tokenizers {expected[i]}"
        assert fast.encode_one(text) == expected[i], f"encode_one, text {i} {text!r}"


# -- tiny tokenizers built here ------------------------------------------------------------------


def _wordpiece_vocab() -> dict[str, int]:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s", "##ing", "##ed", "##ly", "##able"]
    tokens += list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-$%")
    tokens += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    return {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}


def tiny_bert(*, lowercase: bool = True, strip_accents: bool | None = None, clean_text: bool = True) -> Tokenizer:
    """A BERT-style WordPiece (BertNormalizer + BertPreTokenizer), with added special tokens."""
    tok = Tokenizer(models.WordPiece(_wordpiece_vocab(), unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=clean_text, handle_chinese_chars=True, strip_accents=strip_accents, lowercase=lowercase
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    return tok


def tiny_wordpiece_whitespace() -> Tokenizer:
    """WordPiece with a Lowercase normalizer and the Whitespace (\\w+|[^\\w\\s]+) pre-tokenizer."""
    tok = Tokenizer(models.WordPiece(_wordpiece_vocab(), unk_token="[UNK]", max_input_chars_per_word=12))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_tokens(["hello world"])  # a non-special added token containing a space
    return tok


def tiny_wordlevel() -> Tokenizer:
    """WordLevel with WhitespaceSplit and no normalizer."""
    vocab = {"<unk>": 0, **{w: i + 1 for i, w in enumerate(WORDS + ["Hello", "WORLD", "..."])}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok


def tiny_unigram(*, standalone: bool) -> Tokenizer:
    """Unigram + Metaspace (standalone, or after WhitespaceSplit as in tokenlearn), with a normalized added token."""
    pieces = [("<unk>", 0.0), ("▁", -2.0)] + [(f"▁{w}", -1.0) for w in WORDS] + [(w, -1.5) for w in WORDS]
    pieces += [(c, -3.0) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'"]
    tok = Tokenizer(models.Unigram(pieces, unk_id=0, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    metaspace = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    if standalone:
        tok.pre_tokenizer = metaspace
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), metaspace])
    tok.add_special_tokens(["<pad>"])
    return tok


def tiny_llama_bpe(*, cross_boundary_merge: bool = False, inner_marker_token: bool = False) -> Tokenizer:
    """Llama-style BPE: Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, byte fallback."""
    vocab: dict[str, int] = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for c in "▁abcdefghijklmnopqrstuvwxyzHW.,!?'":
        vocab.setdefault(c, len(vocab))
    merges: list[tuple[str, str]] = [("▁", "▁")]
    vocab["▁▁"] = len(vocab)
    for w in ["▁the", "▁cat", "▁dog", "▁hello", "▁world", "at", "ing"]:
        cur = w[0]
        for c in w[1:]:
            if (cur, c) not in merges:
                merges.append((cur, c))
            cur += c
            vocab.setdefault(cur, len(vocab))
    if cross_boundary_merge:  # "t" + "▁" lets a merge join two words: no fast path
        merges.append(("t", "▁"))
        vocab["t▁"] = len(vocab)
    if inner_marker_token:  # in the vocabulary but no merge makes it: the merges must be read to tell
        vocab["x▁y"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.ByteFallback()
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    return tok


def tiny_bytelevel_bpe() -> Tokenizer:
    """GPT-2 style byte-level BPE: not covered by a fast path, must still be exact (via fallback)."""
    tok = Tokenizer(models.BPE({"a": 0, "b": 1, "ab": 2, "Ġ": 3}, [("a", "b")]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return tok


TINY = {
    "bert": tiny_bert,
    "bert-cased": lambda: tiny_bert(lowercase=False),
    "bert-strip-accents": lambda: tiny_bert(strip_accents=True),
    "bert-no-clean": lambda: tiny_bert(clean_text=False),
    "wordpiece-whitespace": tiny_wordpiece_whitespace,
    "wordlevel": tiny_wordlevel,
    "unigram-metaspace": lambda: tiny_unigram(standalone=True),
    "unigram-wss-metaspace": lambda: tiny_unigram(standalone=False),
    "llama-bpe": tiny_llama_bpe,
    "llama-bpe-crossing": lambda: tiny_llama_bpe(cross_boundary_merge=True),
    "llama-bpe-inner-marker": lambda: tiny_llama_bpe(inner_marker_token=True),
    "bytelevel-bpe": tiny_bytelevel_bpe,
}
TINY_FAST = {k for k in TINY if k not in {"llama-bpe-crossing", "bytelevel-bpe"}}

text_strategy = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.sampled_from(WORDS),
        st.text(max_size=12),
        st.text(alphabet=st.characters(max_codepoint=127), max_size=20),
    ),
    max_size=12,
).map(lambda parts: "".join(parts))
batch_strategy = st.lists(text_strategy, min_size=1, max_size=12)


# -- the real tokenizers in shared/models --------------------------------------------------------


@pytest.fixture(scope="module")
def real_tokenizers(shared_dir: Path) -> dict[str, Tokenizer]:
    """Every tokenizer.json in shared/models (a missing file is an error)."""
    out = {}
    for name in REAL_MODELS:
        path = shared_dir / "models" / name / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"shared tokenizer {path} is missing")
        tok = Tokenizer.from_file(str(path))
        tok.no_padding()
        tok.no_truncation()
        out[name] = tok
    return out


@pytest.fixture(scope="module")
def real_fast(real_tokenizers: dict[str, Tokenizer]) -> dict[str, FastTokenizer]:
    return {name: FastTokenizer(tok) for name, tok in real_tokenizers.items()}


@pytest.mark.parametrize("name", REAL_MODELS)
def test_real_tokenizers_have_a_fast_path(real_fast: dict[str, FastTokenizer], name: str) -> None:
    fast = real_fast[name]
    assert fast.fast_path, fast.fast_path_reason


@pytest.mark.parametrize("name", REAL_MODELS)
def test_real_tokenizers_adversarial(
    real_fast: dict[str, FastTokenizer], real_tokenizers: dict[str, Tokenizer], name: str
) -> None:
    texts = ["", "a", *FRAGMENTS, " ".join(FRAGMENTS), "".join(FRAGMENTS), "\n".join(FRAGMENTS)]
    texts += [f"{a}{b}" for a in FRAGMENTS[:40] for b in FRAGMENTS[20:60]]
    texts += [f" {w}  {w.upper()}\t{w}. " for w in WORDS]
    _assert_exact(real_fast[name], real_tokenizers[name], texts)
    _assert_exact(real_fast[name], real_tokenizers[name], texts)  # again, now from the cache


@pytest.mark.parametrize("name", REAL_MODELS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=batch_strategy)
def test_real_tokenizers_property(
    real_fast: dict[str, FastTokenizer], real_tokenizers: dict[str, Tokenizer], name: str, texts: list[str]
) -> None:
    _assert_exact(real_fast[name], real_tokenizers[name], texts)


def _corpus(shared_dir: Path) -> list[str]:
    texts: list[str] = []
    files = sorted((shared_dir / "data" / "mteb").glob("**/*.jsonl"))
    assert len(files) >= 10, f"expected the shared MTEB jsonl files under {shared_dir}, found {files}"
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts += [row[k] for k in ("text", "sentence1", "sentence2", "title") if isinstance(row.get(k), str)]
    return texts


def _mutations(texts: list[str]) -> list[str]:
    rng = np.random.default_rng(0)
    inserts = ["[CLS]", "[mask]", "\x00", "\x12", "  ", "\r\n", "\t", " é ", "日本", "😀", "<s>", "<pad>", "\u00a0"]
    out = []
    for i, text in enumerate(texts):
        pos = int(rng.integers(0, len(text) + 1))
        out.append(text[:pos] + inserts[i % len(inserts)] + text[pos:])
        out.append(text.upper() if i % 2 else " " + text.title() + " ")
    return out


@pytest.mark.parametrize("name", ["potion-base-8M", "tokenlearn-10k-int8", "wordllama-l2-supercat-256"])
def test_real_corpus_with_mutations(shared_dir: Path, real_tokenizers: dict[str, Tokenizer], name: str) -> None:
    texts = _corpus(shared_dir)
    assert len(texts) > 50_000
    texts += _mutations(texts[::8])
    reference = real_tokenizers[name]
    fast = FastTokenizer(reference)
    ids, offsets = fast.encode_flat(texts)
    assert fast.cached_words > 1000  # the fast path did the work
    expected = reference.encode_batch(texts, add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) for e in expected), dtype=np.int64, count=len(expected))
    np.testing.assert_array_equal(np.diff(offsets), lengths)
    np.testing.assert_array_equal(ids, np.fromiter((i for e in expected for i in e.ids), dtype=np.int64))


# -- tiny tokenizers -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_fast_path_flag(name: str) -> None:
    fast = FastTokenizer(TINY[name]())
    assert fast.fast_path == (name in TINY_FAST), fast.fast_path_reason
    assert isinstance(fast.fast_path_reason, str) and fast.fast_path_reason


@pytest.mark.parametrize("name", sorted(TINY))
@settings(max_examples=30, deadline=None)
@given(texts=batch_strategy)
def test_tiny_property(name: str, texts: list[str]) -> None:
    tok = TINY[name]()
    _assert_exact(FastTokenizer(tok, cache_size=50), tok, texts)


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_adversarial(name: str) -> None:
    tok = TINY[name]()
    texts = ["", *FRAGMENTS, " ".join(FRAGMENTS), "".join(FRAGMENTS)]
    texts += [f"{a} {b}{a}" for a in FRAGMENTS[:30] for b in FRAGMENTS[25:70]]
    fast = FastTokenizer(tok)
    _assert_exact(fast, tok, texts)
    _assert_exact(fast, tok, texts[::-1])


def test_fast_path_is_used_for_ascii_text() -> None:
    fast = FastTokenizer(tiny_bert())
    fast.encode_flat(["The cat sat on the mat.", "Hello, world!"])
    cached = fast.cached_words
    assert cached > 0
    fast.encode_flat(["日本語 only", "[CLS] special"])  # these go to the tokenizer whole
    assert fast.cached_words == cached


def test_special_tokens_inside_text() -> None:
    tok = tiny_bert()
    fast = FastTokenizer(tok)
    ids, offsets = fast.encode_flat(["hello [CLS] world", "hello [cls] world", "[MASK][SEP]"])
    vocab = tok.get_vocab()
    assert ids[offsets[0] : offsets[1]].tolist() == [vocab["hello"], vocab["[CLS]"], vocab["world"]]
    second = ids[offsets[1] : offsets[2]].tolist()  # lowercase: not the special token, plain pieces
    assert vocab["[CLS]"] not in second
    assert second[0] == vocab["hello"] and second[-1] == vocab["world"] and len(second) > 3
    assert ids[offsets[2] : offsets[3]].tolist() == [vocab["[MASK]"], vocab["[SEP]"]]


def test_long_words_become_unknown() -> None:
    tok = tiny_bert()
    fast = FastTokenizer(tok)
    unk = tok.token_to_id("[UNK]")
    ids, offsets = fast.encode_flat(["a" * 100, "a" * 101, "cat " + "b" * 150 + " cat"])
    assert unk not in ids[offsets[0] : offsets[1]].tolist()
    assert ids[offsets[1] : offsets[2]].tolist() == [unk]
    cat = tok.token_to_id("cat")
    assert ids[offsets[2] : offsets[3]].tolist() == [cat, unk, cat]


def test_cache_bound_holds_and_stays_exact() -> None:
    tok = tiny_bert()
    fast = FastTokenizer(tok, cache_size=10)
    texts = [f"{w} {v}ing {w}s, {v}!" for w in WORDS for v in WORDS]
    for start in range(0, len(texts), 7):
        _assert_exact(fast, tok, texts[start : start + 7])
        assert fast.cached_words <= 10
    _assert_exact(fast, tok, texts)
    assert fast.cached_words <= 10
    no_cache = FastTokenizer(tok, cache_size=0)
    _assert_exact(no_cache, tok, texts)
    assert no_cache.cached_words == 0


def test_real_cache_bound(real_tokenizers: dict[str, Tokenizer]) -> None:
    texts = [" ".join(FRAGMENTS[i : i + 5]) + f" word{i} Word{i}." for i in range(len(FRAGMENTS))]
    for name, tok in real_tokenizers.items():
        fast = FastTokenizer(tok, cache_size=10)
        _assert_exact(fast, tok, texts)
        assert fast.cached_words <= 10, name


def test_two_threads_share_one_instance() -> None:
    tok = tiny_bert()
    fast = FastTokenizer(tok, cache_size=20)  # small: clears happen while the other thread reads
    texts = [f"{w} {v}ing {w}s, {v}! {i}" for i in range(20) for w in WORDS for v in WORDS[:4]]
    expected_ids, expected_offsets = FastTokenizer(tok, cache_size=0).encode_flat(texts)
    _assert_exact(FastTokenizer(tok, cache_size=0), tok, texts[:50])
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            rng = np.random.default_rng(seed)
            for _ in range(30):
                start = int(rng.integers(0, len(texts) - 40))
                ids, offsets = fast.encode_flat(texts[start : start + 40])
                want = expected_ids[expected_offsets[start] : expected_offsets[start + 40]]
                np.testing.assert_array_equal(ids, want)
                np.testing.assert_array_equal(offsets, expected_offsets[start : start + 41] - expected_offsets[start])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_padding_and_truncation_of_the_given_tokenizer_are_ignored() -> None:
    tok = tiny_bert()
    plain = _plain(tok)
    tok.enable_truncation(max_length=2)
    tok.enable_padding(length=16)
    texts = ["the cat sat on the mat", "日本語 the cat sat on the mat", "[CLS] the cat sat"]
    _assert_exact(FastTokenizer(tok), plain, texts)
    assert tok.truncation is not None  # the caller's tokenizer is not modified


def test_empty_input() -> None:
    ids, offsets = FastTokenizer(tiny_bert()).encode_flat([])
    assert ids.shape == (0,) and ids.dtype == np.int32
    assert offsets.tolist() == [0]


def test_accepts_any_sequence() -> None:
    tok = tiny_bert()
    fast = FastTokenizer(tok)
    a = fast.encode_flat(("the cat", "hello world"))
    b = fast.encode_flat(["the cat", "hello world"])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_bad_input() -> None:
    tok = tiny_bert()
    fast = FastTokenizer(tok)
    with pytest.raises(TypeError, match="single str"):
        fast.encode_flat("the cat")
    with pytest.raises(TypeError, match="int"):
        fast.encode_flat(["the cat", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="-1"):
        FastTokenizer(tok, cache_size=-1)
    with pytest.raises(TypeError, match="cache_size"):
        FastTokenizer(tok, cache_size=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tokenizers.Tokenizer"):
        FastTokenizer("bert-base-uncased")  # type: ignore[arg-type]


def test_threads_share_the_cache_exactly(real_tokenizers: dict[str, Tokenizer]) -> None:
    """Concurrent callers (a threaded server) with a tiny cache that keeps starting new generations."""
    from concurrent.futures import ThreadPoolExecutor

    tok = real_tokenizers["potion-base-8M"]
    fast = FastTokenizer(tok, cache_size=50)
    rng = random.Random(7)
    words = [f"w{i}x{i * 7 % 13}" for i in range(400)] + ["the", "cat", "sat", "Hello,", "world!", "don't"]
    batches = [[" ".join(rng.choices(words, k=rng.randint(0, 12))) for _ in range(40)] for _ in range(24)]

    def run(batch: list[str]) -> tuple[list[list[int]], list[list[int]]]:
        ids, offsets = fast.encode_flat(batch)
        flat = [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(batch))]
        return flat, [fast.encode_one(text) for text in batch]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, batches))
    for batch, (flat, single) in zip(batches, results, strict=True):
        expected = _reference(tok, batch)
        assert flat == expected
        assert single == expected
    assert fast.cached_words <= 50


@pytest.mark.parametrize("unk_id", [None, 0, 3])
def test_unknown_token_id_of_unigram_without_full_parse(unk_id: int | None) -> None:
    from staticst.tokenization.settings import UNIGRAM_UNK as _UNIGRAM_UNK
    from staticst.tokenization.settings import unknown_token_id

    pieces = [("<s>", 0.0), ('"model":{"type":"Unigram","unk_id":7}', -1.0), ("a", -1.0), ("<unk>", 0.0), ("b", -2.0)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=unk_id, byte_fallback=False))
    tok.add_special_tokens(['"model":{"type":"Unigram","unk_id":9,'])
    assert len(_UNIGRAM_UNK.findall(tok.to_str())) == 1  # the escaped look-alikes in tokens do not match
    assert unknown_token_id(tok) == unk_id == json.loads(tok.to_str())["model"]["unk_id"]


def test_unknown_token_id_of_real_tokenizers(real_tokenizers: dict[str, Tokenizer]) -> None:
    from staticst.tokenization import unknown_token_id

    for name, tok in real_tokenizers.items():
        model = json.loads(tok.to_str())["model"]
        expected = model.get("unk_id") if model["type"] == "Unigram" else tok.token_to_id(model["unk_token"]) if model.get("unk_token") else None
        assert unknown_token_id(tok) == expected, name
