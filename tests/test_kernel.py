"""The compiled kernel against the numpy path (the oracle): ids, vectors, threads, bounds and memory.

The parity tests against model2vec and sentence-transformers run on both backends (the ``backend`` fixture of
``tests/conftest.py``); this file names its backends itself and checks the kernel's own promises: bit-identical to the numpy path, independent of thread count, bounded, safe at its boundary.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from staticst import StaticSentenceTransformer
from staticst import kernel as kernels
from staticst.engine import Embedder
from staticst.pooling import PoolingConfig, pool
from tests.conftest import bpe_tokenizer, unigram_tokenizer, wordpiece_tokenizer, write_model2vec, write_st_root

pytestmark = pytest.mark.skipif(
    not kernels.available() and not os.environ.get("STATICST_REQUIRE_KERNEL"),
    reason="the compiled kernel is not built (CI sets STATICST_REQUIRE_KERNEL=1 and builds it)",
)


@pytest.fixture(autouse=True)
def _default_kernel_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests name their backends; the suite-wide STATICST_KERNEL must not change what "auto" means here."""
    monkeypatch.delenv("STATICST_KERNEL", raising=False)


SHARED_MODELS = [
    "potion-base-8M",
    "potion-base-2M",
    "potion-base-2M-sentence-transformers",
    "wordllama-l2-supercat-256",
    "tokenlearn-10k-int8",
]

ADVERSARIAL = [
    "", " ", "  ", "a", " a", "a ", "a  b", "  lead", "trail  ", "\t\n\r\x0b\x0c", "\x00\x01\x1c\x1f\x7f",
    "[CLS]", "[cls] x", "x[SEP]y", "<s>", "</s> <unk>", "<unk>", "▁", "▁▁a", "a\u00a0b", "café", "naïve",
    "日本語のテキスト", "emoji 😀 ok", "mixed ASCII and ü", "Hello, World!", "it's 3.14 -- ok?",
    "a" * 5000, "ab " * 2000, "x." * 700, "UPPER lower MiXeD", "tab\tsep", "new\nline", "a\r\nb",
    "((([[[{{{", "!!!???...", "don't can't won't", "e-mail@example.com", "https://x.y/z?q=1&r=2",
    "1234567890 0987654321", "_under_score_", "C++ and C#", "multiple     spaces", " \t mixed \n ws ",
    # non-ASCII text split into chunks at ASCII whitespace: combining marks, odd spaces, CJK, controls
    "e\u0301 \u0301a e \u0301", "a\u00a0b c", "x\u3000y z", "日本 語 text", "\u00bd and ⑴", "tab\x0bvt é",
    "Ωmega ΣΊΣΥΦΟΣ ς", "ﬁ ligature ß", "naïve café résumé", "🙂 🙃", "a\u200bb", "mix é\x0cformfeed",
    "é" * 600 + " end", "é " * 400, "\u2028line sep é", "x\u0085y é",
    "\x01", "\x01 é", "\x80", "\x80 é x", "é\x01é",  # the fuzzer found the ASCII key "\x01" colliding with a chunk key
    "▁ ", "a ▁b", "▁▁ x",  # ... and Llama's "▁" in the text itself merging across a word boundary
]  # fmt: skip


def _corpus(shared_dir: Path, limit: int = 6000) -> list[str]:
    texts: list[str] = []
    for name in ("stsbenchmark-sts/test.jsonl", "sickr-sts/test.jsonl", "emotion/test.jsonl", "banking77/test.jsonl"):
        for line in (shared_dir / "data" / "mteb" / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts.extend(row[k] for k in ("sentence1", "sentence2", "text") if k in row)
    random.Random(0).shuffle(texts)
    return texts[:limit] + ADVERSARIAL


@pytest.fixture(scope="module")
def engines(shared_model: Callable[[str], Path]) -> dict[str, tuple[Embedder, Embedder]]:
    return {
        name: (Embedder.load(shared_model(name), kernel="native"), Embedder.load(shared_model(name), kernel="numpy"))
        for name in SHARED_MODELS
    }


def _assert_same(native: Embedder, numpy_engine: Embedder, texts: list[str]) -> None:
    ids_n, off_n = native.tokenize(texts)
    ids_p, off_p = numpy_engine.tokenize(texts)
    np.testing.assert_array_equal(off_n, off_p)
    np.testing.assert_array_equal(ids_n, ids_p)
    a, b = native.embed(texts), numpy_engine.embed(texts)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
    assert a.tobytes() == b.tobytes(), f"{int((a != b).any(axis=1).sum())} rows differ"
    for text, row in zip(
        texts[:50] + texts[-len(ADVERSARIAL) :], np.concatenate([b[:50], b[-len(ADVERSARIAL) :]]), strict=True
    ):
        assert native.embed_one(text).tobytes() == row.tobytes(), text[:40]


def test_the_kernel_is_built_where_ci_requires_it() -> None:
    if os.environ.get("STATICST_REQUIRE_KERNEL"):
        assert kernels.available(), kernels.IMPORT_ERROR


def test_the_kernel_is_seen_by_the_garbage_collector(tmp_path: Path) -> None:
    """The kernel holds Python callables: it is GC-tracked, shows them as referents, and a cycle through one is freed."""
    import gc
    import weakref

    write_model2vec(tmp_path / "m", wordpiece_tokenizer())
    engine = Embedder.load(tmp_path / "m", kernel="native")
    core = engine._backend.kernel._core  # type: ignore[attr-defined]
    assert gc.is_tracked(core)
    referents = gc.get_referents(core)
    assert any(callable(r) and getattr(r, "__name__", "") == "fallback" for r in referents)

    class Owner:
        pass

    owner = Owner()
    owner.engine = engine  # type: ignore[attr-defined]
    gc.collect()
    # a cycle: the kernel's fallback closure reaches the owner, which holds the engine and its kernel
    fallback = next(r for r in referents if callable(r) and getattr(r, "__name__", "") == "fallback")
    fallback.__dict__["owner"] = owner  # type: ignore[attr-defined]
    alive = weakref.ref(owner)
    del owner, engine, core, referents, fallback
    gc.collect()
    assert alive() is None


def test_the_kernel_names_its_codes_and_every_family_uses_one() -> None:
    """Modes and arithmetics are the kernel's own (``_kernel.MODES`` / ``ARITHMETICS``), used by name."""
    from staticst import _kernel
    from staticst.pooling import ARITHMETICS
    from staticst.tokenization import pretokenizers

    assert set(_kernel.ARITHMETICS) == set(ARITHMETICS)
    assert len(set(_kernel.MODES.values())) == len(_kernel.MODES) and "none" in _kernel.MODES
    families = [
        c
        for c in vars(pretokenizers).values()
        if isinstance(c, type) and issubclass(c, pretokenizers.PreTokenizerFamily)
    ]
    used = {f.kernel_mode for f in families} - {None}
    assert used and used <= set(_kernel.MODES) - {"none"}


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_native_equals_numpy_on_real_text(
    name: str, engines: dict[str, tuple[Embedder, Embedder]], shared_dir: Path
) -> None:
    native, numpy_engine = engines[name]
    assert native.backend == "native" and numpy_engine.backend == "numpy"
    texts = _corpus(shared_dir)
    _assert_same(native, numpy_engine, texts)  # cold word table: every word resolved once
    _assert_same(native, numpy_engine, texts)  # warm


_printable = st.characters(min_codepoint=0, max_codepoint=0x7F)
_anything = st.characters(blacklist_categories=("Cs",))
_words = st.sampled_from(
    ["the", "cat", "[CLS]", "[UNK]", "<s>", "</s>", "▁", "##s", "don't", "U.S.", "a", " ", "  ", "\t", "x" * 120]
)


# A bounded fuzz run: 60 examples in the suite, more in the sanitizer run (.ci/sanitize sets STATICST_FUZZ_EXAMPLES).
@settings(
    max_examples=int(os.environ.get("STATICST_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    texts=st.lists(
        st.one_of(
            st.text(_printable, max_size=60),
            st.text(_anything, max_size=20),
            st.lists(_words, max_size=12).map("".join),
            st.lists(_words, max_size=12).map(" ".join),
            # non-ASCII characters beside ASCII words and separators: the chunked path's boundaries
            st.lists(st.one_of(_words, st.text(_anything, min_size=1, max_size=3)), max_size=10).map(" ".join),
            st.lists(
                st.one_of(_words, st.text(_anything, min_size=1, max_size=3), st.sampled_from(["\t", "\n", " "])),
                max_size=10,
            ).map("".join),
        ),
        max_size=40,
    )
)
def test_fuzz_native_equals_numpy(texts: list[str], engines: dict[str, tuple[Embedder, Embedder]]) -> None:
    for name in SHARED_MODELS:
        native, numpy_engine = engines[name]
        _assert_same(native, numpy_engine, texts)


def _tiny_models(tmp_path: Path) -> dict[str, Path]:
    made = {}
    write_model2vec(tmp_path / "wp", wordpiece_tokenizer(), config_extra={"max_length": 7})
    write_model2vec(tmp_path / "bpe", bpe_tokenizer(), dtype="float16", dim=16)
    write_model2vec(tmp_path / "uni", unigram_tokenizer(), dtype="int8", dim=12, normalize=False)
    write_model2vec(tmp_path / "quant", wordpiece_tokenizer(), quantized_rows=7, dim=10)
    write_st_root(tmp_path / "st", wordpiece_tokenizer())
    for name in ("wp", "bpe", "uni", "quant", "st"):
        made[name] = tmp_path / name
    return made


def test_token_rules_and_tensor_layouts_on_tiny_models(tmp_path: Path) -> None:
    """Truncation, the character cut, [UNK] removal, float16 / int8 tables, mapping + weights, both families."""
    texts = ["the cat sat on the mat by the river bank " * 3, "qzx the", "", "dog", "cats dogs running", "the" * 40]
    texts += [t.upper() for t in texts] + ADVERSARIAL
    for name, folder in _tiny_models(tmp_path).items():
        native, numpy_engine = Embedder.load(folder, kernel="native"), Embedder.load(folder, kernel="numpy")
        _assert_same(native, numpy_engine, texts)
        left = native.with_settings(native.family.with_max_length(native.settings, 3, native.median_length))
        assert left.backend == "native", name
        _assert_same(left, numpy_engine.with_max_length(3), texts)


def test_results_do_not_depend_on_the_thread_count(
    engines: dict[str, tuple[Embedder, Embedder]], shared_dir: Path
) -> None:
    native, _ = engines["potion-base-8M"]
    texts = _corpus(shared_dir, 20000) * 3
    reference = native.with_kernel("native")
    reference.threads = 1
    one = reference.embed(texts)
    for threads in (2, 3, 7):
        other = native.with_kernel("native")
        other.threads = threads
        assert other.embed(texts).tobytes() == one.tobytes(), threads


def test_python_threads_share_one_kernel_exactly(shared_model: Callable[[str], Path], shared_dir: Path) -> None:
    """Concurrent calls while the word table fills up and is replaced: every result equals the numpy path."""
    from concurrent.futures import ThreadPoolExecutor

    folder = shared_model("potion-base-8M")
    native = Embedder.load(folder, kernel="native")
    expected_engine = Embedder.load(folder, kernel="numpy")
    texts = _corpus(shared_dir, 8000)
    rng = random.Random(1)
    batches = [[f"{t} {rng.randrange(10**9)}zq" for t in rng.sample(texts, 400)] for _ in range(24)]
    with ThreadPoolExecutor(max_workers=6) as pool_:
        results = list(pool_.map(native.embed, batches))
    for batch, got in zip(batches, results, strict=True):
        assert got.tobytes() == expected_engine.embed(batch).tobytes()


def test_the_word_table_is_bounded_and_shared(tiny_model2vec: Path) -> None:
    from staticst import _kernel  # type: ignore[attr-defined]

    words = _kernel.WordTable(max_words=64, start_words=16)
    assert len(words) == 0 and words.max_words == 64
    model = StaticSentenceTransformer(tiny_model2vec, kernel="native")
    engine = model.engine
    table = engine._shared.words
    assert table is not None
    engine.embed([f"w{i}x" for i in range(3000)])
    assert 0 < len(table) <= table.max_words
    model.max_seq_length = 3  # a new kernel for the new rules: the same word table
    assert model.engine._shared.words is table and model.engine.backend == "native"


def test_word_table_generations_are_replaced_within_the_bound(tiny_model2vec: Path) -> None:
    engine = Embedder.load(tiny_model2vec, kernel="native")
    numpy_engine = Embedder.load(tiny_model2vec, kernel="numpy")
    small = kernels._kernel.WordTable(max_words=32, start_words=16)
    engine._shared.words = small
    engine = engine.with_kernel("native")
    texts = [" ".join(f"t{i}{j}" for j in range(5)) for i in range(500)]
    for lo in range(0, 500, 50):
        chunk = texts[lo : lo + 50]
        assert engine.embed(chunk).tobytes() == numpy_engine.embed(chunk).tobytes()
        assert len(small) <= 32
    assert small.generations > 3


def _raw_kernel(
    table: np.ndarray, mapping: np.ndarray | None = None, weights: np.ndarray | None = None, **over: object
) -> object:
    args = {**_raw_defaults(), "table": table, "mapping": mapping, "weights": weights}
    args.update(over)
    return kernels._kernel.Kernel(kernels.KernelConfig(**args))  # type: ignore[arg-type]


def _raw_defaults() -> dict[str, object]:
    return dict(
        words=kernels._kernel.WordTable(),
        table=None,
        mapping=None,
        weights=None,
        mode=5,
        prepend_space=False,
        norm_table=(b"",) * 128,
        raw=(),
        normalized=(),
        char_limit=-1,
        max_length=-1,
        truncate_left=False,
        unk_id=-1,
        drop_unknown=False,
        arithmetic=0,
        normalize=True,
        weight_sum=False,
        resolve=lambda keys: [],
        fallback=lambda texts: (np.zeros(0, np.int32), np.zeros(len(texts) + 1, np.int64)),
        threads=1,
    )


def test_the_config_fields_are_the_c_modules_list() -> None:
    """KernelConfig's fields are the C module's own list, in its order (csrc/kernel_type.c exports it)."""
    import dataclasses

    assert tuple(f.name for f in dataclasses.fields(kernels.KernelConfig)) == kernels._kernel.KERNEL_CONFIG_FIELDS


def test_a_config_missing_a_field_or_with_a_mistyped_one_is_refused_by_name() -> None:
    import types

    table = np.ones((10, 4), dtype=np.float32)
    good = kernels.KernelConfig(**{**_raw_defaults(), "table": table})  # type: ignore[arg-type]
    partial = types.SimpleNamespace(**{f: getattr(good, f) for f in kernels._kernel.KERNEL_CONFIG_FIELDS if f != "threads"})
    with pytest.raises(TypeError, match="has no field 'threads'"):
        kernels._kernel.Kernel(partial)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
        _raw_kernel(table, max_length="many")
    with pytest.raises(TypeError):
        kernels._kernel.Kernel(config=None, threads=1)  # type: ignore[call-arg]


def test_the_boundary_refuses_bad_arrays_and_ids() -> None:
    table = np.ones((10, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="mapping\\[1\\] = 10 is outside the table's rows 0..9"):
        _raw_kernel(table, mapping=np.array([0, 10], dtype=np.int64))
    with pytest.raises(ValueError, match="C-contiguous 2-D"):
        _raw_kernel(np.ones((10, 8), dtype=np.float32)[:, ::2])
    with pytest.raises(ValueError, match="C-contiguous 2-D"):
        _raw_kernel(np.ones((10, 4), dtype=np.int32))
    with pytest.raises(ValueError, match="weights must be"):
        _raw_kernel(table, weights=np.ones(3, dtype=np.float32))
    k = _raw_kernel(table)
    out = np.empty((1, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="token id 10 at position 1 is outside the table's ids 0..9"):
        k.pool(np.array([1, 10], dtype=np.int32), np.array([0, 2], dtype=np.int64), out)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="offsets"):
        k.pool(np.array([1, 2], dtype=np.int32), np.array([0, 3], dtype=np.int64), out)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="shape \\(1, 4\\)"):
        k.embed(["x"], np.empty((1, 5), dtype=np.float32))  # type: ignore[attr-defined]
    # ids from the Hugging Face tokenizer are checked too: a text is named, nothing is read out of bounds
    bad = _raw_kernel(table, fallback=lambda texts: (np.array([3, 99], np.int32), np.array([0, 0, 2], np.int64)))
    with pytest.raises(ValueError, match="token id 99 for input 1"):
        bad.embed(["fine", "bad"], np.empty((2, 4), dtype=np.float32))  # type: ignore[attr-defined]


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int8"])
@pytest.mark.parametrize("arithmetic", ["model2vec", "sentence-transformers"])
@pytest.mark.parametrize("extra", ["none", "weights32", "weights64", "mapping+weights", "weight_sum"])
def test_pooling_is_bit_identical_to_numpy(dtype: str, arithmetic: str, extra: str) -> None:
    rng = np.random.default_rng(hash((dtype, arithmetic, extra)) % 2**32)
    vocab, rows, dim = 300, 120 if "mapping" in extra else 300, 37
    if dtype == "int8":
        table = rng.integers(-128, 128, size=(rows, dim)).astype(np.int8)
    else:
        table = (rng.standard_normal((rows, dim)) * 10 ** rng.uniform(-3, 3, size=(rows, 1))).astype(dtype)
        table[::7, ::5] = 0.0
        table[::11, ::3] = -0.0
    mapping = rng.integers(0, rows, size=vocab).astype(np.int64) if "mapping" in extra else None
    weights = None
    if extra.startswith("weights") or extra in ("mapping+weights", "weight_sum"):
        weights = rng.uniform(0.01, 3.0, size=vocab).astype(np.float64 if extra == "weights64" else np.float32)
    if dtype == "float16" and weights is not None and weights.dtype == np.float64:
        # float64 means rounded straight to float16: left to the numpy path, and refused here, not approximated
        with pytest.raises(ValueError, match="float16 table with float64 weights is pooled by the numpy path"):
            _raw_kernel(table, mapping=mapping, weights=weights)
        return
    lengths = [0, 1, 2, 7, 8, 9, 130, 3000] + list(rng.integers(0, 60, size=60))
    ids = rng.integers(0, vocab if mapping is not None or weights is not None else rows, size=sum(lengths)).astype(
        np.int32
    )
    ids[: lengths[1] + lengths[2]] = 0
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    for normalize in (False, True):
        config = PoolingConfig(arithmetic, normalize, "weight_sum" if extra == "weight_sum" else "count")  # type: ignore[arg-type]
        expected = pool(table, ids.astype(np.int64), offsets, config, mapping=mapping, weights=weights)
        k = _raw_kernel(
            table,
            mapping=mapping,
            weights=weights,
            arithmetic=0 if arithmetic == "model2vec" else 1,
            normalize=normalize,
            weight_sum=extra == "weight_sum",
        )
        got = np.empty_like(expected)
        k.pool(ids, offsets, got)  # type: ignore[attr-defined]
        assert got.tobytes() == expected.tobytes(), (normalize, np.flatnonzero((got != expected).any(axis=1))[:5])


def test_float16_rounding_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, size=2_000_000, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    values = values[np.isfinite(values)]
    halves = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    halves = halves[np.isfinite(halves)]
    with np.errstate(over="ignore"):
        ulp = np.spacing(halves.astype(np.float16)).astype(np.float32)
    edges = np.concatenate(
        [halves, halves + ulp / 2, halves - ulp / 2, np.nextafter(halves + ulp / 2, np.float32(np.inf))]
    )
    for sample in (
        values,
        edges[np.isfinite(edges)],
        np.array([6.5504e4, 6.5520e4, 6.5519e4, 1e-8, -1e-8, 2.0**-25, 2.0**-24], np.float32),
    ):
        with np.errstate(over="ignore"):
            expected = sample.astype(np.float16).view(np.uint16)
        got = kernels._kernel._f32_to_f16(sample)
        mismatch = np.flatnonzero(got != expected)
        assert not len(mismatch), [(float(sample[i]), int(got[i]), int(expected[i])) for i in mismatch[:5]]
        # the row rounding pooling uses (F16C where the CPU has it) gives the same values
        small = sample[np.abs(sample) < 65504]
        with np.errstate(over="ignore"):
            assert kernels._kernel._round_f16(small).tobytes() == small.astype(np.float16).astype(np.float32).tobytes()


def test_pairwise_norm_sum_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    for n in list(range(0, 300)) + [511, 512, 513, 1000, 1024, 4097]:
        a = (rng.standard_normal(n) * 10 ** rng.uniform(-4, 4)).astype(np.float32)
        assert np.float32(kernels._kernel._pairwise_sum(a)).tobytes() == np.add.reduce(a).tobytes(), n


def test_kernel_choice_and_reasons(tiny_model2vec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = StaticSentenceTransformer(tiny_model2vec)
    assert model.info()["backend"] == "native" and "native kernel" in model.info()["backend_reason"]
    forced = StaticSentenceTransformer(tiny_model2vec, kernel="numpy")
    assert forced.info()["backend"] == "numpy" and "requested" in forced.info()["backend_reason"]
    monkeypatch.setenv("STATICST_KERNEL", "numpy")
    assert StaticSentenceTransformer(tiny_model2vec).info()["backend"] == "numpy"
    monkeypatch.setenv("STATICST_KERNEL", "gpu")
    with pytest.raises(ValueError, match="STATICST_KERNEL='gpu' is not a kernel"):
        StaticSentenceTransformer(tiny_model2vec)
    monkeypatch.delenv("STATICST_KERNEL")
    monkeypatch.setenv("STATICST_NUM_THREADS", "0")
    with pytest.raises(ValueError, match="STATICST_NUM_THREADS='0' is not a positive integer"):
        StaticSentenceTransformer(tiny_model2vec)
    monkeypatch.setenv("STATICST_NUM_THREADS", "3")
    assert StaticSentenceTransformer(tiny_model2vec).num_threads == 3
    with pytest.raises(ValueError, match="threads must be an integer"):
        model.num_threads = 0


def test_native_is_refused_clearly_when_the_kernel_cannot_run_a_model(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    write_model2vec(tmp_path / "m", wordpiece_tokenizer(), dtype="float16", quantized_rows=5)
    tensors = {
        "embeddings": np.ones((5, 8), np.float16),
        "mapping": np.zeros(wordpiece_tokenizer().get_vocab_size(True), np.int64),
    }
    tensors["weights"] = np.ones(len(tensors["mapping"]), np.float64)
    save_file(tensors, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(ValueError, match="kernel='native' cannot run this model: a float16 table with float64 weights"):
        StaticSentenceTransformer(tmp_path / "m", kernel="native")
    auto = StaticSentenceTransformer(tmp_path / "m")
    assert auto.info()["backend"] == "numpy" and "float64 weights" in auto.info()["backend_reason"]


def test_the_gil_is_released_for_large_batches(engines: dict[str, tuple[Embedder, Embedder]], shared_dir: Path) -> None:
    native, _ = engines["potion-base-8M"]
    texts = _corpus(shared_dir, 20000) * 10
    native.embed(texts[:1000])
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    worker = threading.Thread(target=count)
    worker.start()
    try:
        native.embed(texts)
    finally:
        stop.set()
        worker.join()
    # With the GIL held for the whole call the counting thread would barely run at all.
    assert ticks > 10_000


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_a_million_calls_leak_nothing(engines: dict[str, tuple[Embedder, Embedder]]) -> None:
    native, _ = engines["potion-base-8M"]
    texts = ["The cat sat on the mat.", "café au lait", "[CLS] special", "", "qwzx unknownish"]
    for _ in range(50_000):
        native.embed_one(texts[_ % 5])
    native.embed(texts * 200)
    before = _rss_kb()
    for i in range(1_000_000):
        native.embed_one(texts[i % 5])
        if i % 1000 == 0:
            native.embed(texts * 20)
    grown = _rss_kb() - before
    assert grown < 4096, f"RSS grew by {grown} KB over a million calls"
