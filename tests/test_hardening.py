"""Regression tests of the hardening issue: each reproduces an attack that crashed staticst or gave a wrong result.

Library, loader and pool items; the server's are in tests/test_server_hardening.py, the safetensors
reader's in tests/test_io_fuzz.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, pre_tokenizers

from staticst import (
    CorruptModelError,
    InvalidConfigError,
    ModelNotFoundError,
    PoolingOverflowError,
    StaticSentenceTransformer,
    StaticSTError,
    UnknownLayoutError,
    VocabularyMismatchError,
)
from tests.conftest import REPO, wordpiece_tokenizer, write_model2vec

KERNELS = ["native", "numpy"]


# 1 -------------------------------------------------------------------------------- model files changing on disk


def test_a_model_file_truncated_or_overwritten_in_place_does_not_kill_the_process(
    tmp_path: Path, shared_model: Callable[[str], Path]
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(shared_model("potion-base-2M"), folder)
    other = shared_model("potion-base-8M") / "model.safetensors"
    script = textwrap.dedent(
        f"""
        import shutil, numpy as np
        from staticst import StaticSentenceTransformer
        for kernel in ("native", "numpy"):
            model = StaticSentenceTransformer({str(folder)!r}, kernel=kernel)
            before = model.encode(["the cat sat on the mat", "a second text"])
            one = model.encode("the cat sat")
            open({str(folder / "model.safetensors")!r}, "r+b").truncate(1000)
            after = model.encode(["the cat sat on the mat", "a second text"])
            assert (before == after).all() and (one == model.encode("the cat sat")).all()
            shutil.copyfile({str(other)!r}, {str(folder / "model.safetensors")!r})  # overwritten in place
            assert (model.encode(["the cat sat on the mat", "a second text"]) == before).all()
            shutil.copyfile({str(shared_model("potion-base-2M") / "model.safetensors")!r}, {str(folder / "model.safetensors")!r})
        print("alive")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "alive", (out.returncode, out.stderr[-2000:])


# 3 -------------------------------------------------------------------------------- token ids beyond the table


def test_token_ids_beyond_the_table_are_refused_at_load(tmp_path: Path) -> None:
    vocab = {"[UNK]": 0, "hello": 1, "world": 999_999}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    folder = tmp_path / "m"
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    save_file({"embeddings": np.ones((3, 8), np.float32)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"normalize": True}))
    with pytest.raises(VocabularyMismatchError, match="can produce token id 999999.*ids 0..2 only"):
        StaticSentenceTransformer(folder)


# 4 -------------------------------------------------------------------------------- config values


@pytest.mark.parametrize(
    "file, key, value",
    [
        ("config.json", "max_length", -5),
        ("config.json", "max_length", 0),
        ("config.json", "max_length", True),
        ("config.json", "max_length", "512"),
        ("config.json", "max_length", 1.5),
        ("config.json", "max_length", [1]),
        ("config.json", "normalize", "yes"),
        ("config_sentence_transformers.json", "prompts", ["query: "]),
        ("config_sentence_transformers.json", "prompts", "query: "),
        ("config_sentence_transformers.json", "prompts", {"query": 1}),
        ("config_sentence_transformers.json", "similarity_fn_name", "cos"),
        ("config_sentence_transformers.json", "default_prompt_name", 5),
    ],
)
def test_bad_config_values_are_refused_at_load(tmp_path: Path, file: str, key: str, value: object) -> None:
    folder = tmp_path / "m"
    write_model2vec(folder, wordpiece_tokenizer())
    path = folder / file
    config = json.loads(path.read_text()) if path.exists() else {}
    config[key] = value
    path.write_text(json.dumps(config))
    with pytest.raises(InvalidConfigError) as caught:
        StaticSentenceTransformer(folder)
    message = str(caught.value)
    assert str(path) in message and repr(key) in message and json.dumps(value) in message and "use " in message
    assert isinstance(caught.value, ValueError)


def test_null_max_length_means_no_limit(tmp_path: Path) -> None:
    write_model2vec(tmp_path / "m", wordpiece_tokenizer(), config_extra={"max_length": None})
    assert StaticSentenceTransformer(tmp_path / "m").max_seq_length == float("inf")


# 5 -------------------------------------------------------------------------------- overflow to Inf / NaN


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_finite_table_that_overflows_raises_instead_of_returning_nan(tmp_path: Path, kernel: str) -> None:
    tok = wordpiece_tokenizer()
    folder = tmp_path / "big"
    write_model2vec(folder, tok, normalize=False)
    table = np.full((tok.get_vocab_size(True), 8), 3e38, dtype=np.float32)
    save_file({"embeddings": table}, str(folder / "model.safetensors"))
    model = StaticSentenceTransformer(folder, kernel=kernel)
    with pytest.raises(PoolingOverflowError, match="input 1 overflowed"):
        model.encode(["cat", "the cat sat on the mat"])
    with pytest.raises(PoolingOverflowError):
        model.encode("the cat sat on the mat")
    assert np.isfinite(model.encode(["cat"])).all()  # one token does not overflow
    with pytest.raises(PoolingOverflowError, match="input 0 overflowed"):  # ... but its norm does
        model.encode(["cat"], normalize_embeddings=True)
    with pytest.raises(PoolingOverflowError, match="input 1 overflowed"):  # text pairs pool on the backend too
        model.encode([("cat", ""), ("the cat sat", "on the mat")])


@pytest.mark.parametrize("kernel", KERNELS)
def test_huge_token_weights_overflow_is_an_error(tmp_path: Path, kernel: str) -> None:
    tok = wordpiece_tokenizer()
    folder = tmp_path / "w"
    write_model2vec(folder, tok, dtype="int8", quantized_rows=5, normalize=False)
    vocab = tok.get_vocab_size(True)
    save_file(
        {
            "embeddings": np.full((5, 8), 127, np.int8),
            "mapping": np.zeros(vocab, np.int64),
            "weights": np.full(vocab, 1e38, np.float32),
        },
        str(folder / "model.safetensors"),
    )
    model = StaticSentenceTransformer(folder, kernel=kernel)
    with pytest.raises(PoolingOverflowError, match="input 0 overflowed"):
        model.encode(["the cat sat"])
    assert isinstance(PoolingOverflowError("x"), FloatingPointError)


# 6, 7 ---------------------------------------------------------------------------- inputs that must be refused


def test_inputs_sentence_transformers_would_not_accept_are_refused() -> None:
    import pandas as pd

    model = StaticSentenceTransformer()
    with pytest.raises(TypeError, match="got a set: its order changes"):
        model.encode({"a", "b"})
    with pytest.raises(TypeError, match="got DataFrame \\(pick its column"):
        model.encode(pd.DataFrame({"text": ["a", "b"]}))
    with pytest.raises(TypeError, match="got bytearray \\(decode it first"):
        model.encode(bytearray(b"abc"))
    with pytest.raises(TypeError, match="got generator"):
        model.encode(t for t in ["a"])
    series = pd.Series(["the cat", "a dog"])
    np.testing.assert_array_equal(model.encode(series), model.encode(["the cat", "a dog"]))
    np.testing.assert_array_equal(model.encode(np.array(["the cat", "a dog"])), model.encode(["the cat", "a dog"]))


@pytest.mark.parametrize("kernel", KERNELS)
def test_lone_surrogates_name_the_input(kernel: str) -> None:
    model = StaticSentenceTransformer(kernel=kernel)
    with pytest.raises(ValueError, match="input 0 is not valid Unicode text: it holds the lone surrogate U\\+D800"):
        model.encode("\ud800")
    with pytest.raises(ValueError, match="input 2 is not valid Unicode text.*U\\+DCFF at position 4"):
        model.encode(["fine", "also fine", "bad \udcff bytes"])


def test_lone_surrogates_through_the_pool_name_the_input(shared_model: Callable[[str], Path]) -> None:
    from staticst.multiprocess import POOL_MIN_TEXTS

    model = StaticSentenceTransformer(shared_model("potion-base-2M"))
    texts = ["a sentence"] * POOL_MIN_TEXTS + ["broken \udc80"]
    pool = model.start_multi_process_pool(["cpu"])
    try:
        with pytest.raises(ValueError, match=f"input {POOL_MIN_TEXTS} is not valid Unicode text"):
            model.encode(texts, pool=pool)
    finally:
        model.stop_multi_process_pool(pool)


# 8, 9 ---------------------------------------------------------------------------- modules staticst does not run


def test_a_module_before_the_static_embedding_is_refused(tmp_path: Path) -> None:
    from tests.conftest import write_st_root

    write_st_root(tmp_path / "st", wordpiece_tokenizer())
    modules = json.loads((tmp_path / "st" / "modules.json").read_text())
    custom = {"idx": 0, "name": "pre", "path": "pre", "type": "my_package.CustomPreprocessor"}
    (tmp_path / "st" / "modules.json").write_text(json.dumps([custom, *modules]))
    with pytest.raises(UnknownLayoutError, match="'my_package.CustomPreprocessor' at position 0"):
        StaticSentenceTransformer(tmp_path / "st")


def test_a_model2vec_folder_whose_modules_json_lists_a_custom_module_is_refused(tmp_path: Path) -> None:
    write_model2vec(tmp_path / "m", wordpiece_tokenizer())
    modules = [
        {"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    (tmp_path / "m" / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnknownLayoutError, match="'sentence_transformers.models.Dense' at position 1"):
        StaticSentenceTransformer(tmp_path / "m")


def test_a_transformer_is_named_as_one(shared_model: Callable[[str], Path]) -> None:
    with pytest.raises(UnknownLayoutError) as caught:
        StaticSentenceTransformer(shared_model("all-MiniLM-L6-v2"))
    message = str(caught.value)
    assert "is a transformer model" in message and "sentence_transformers.SentenceTransformer" in message
    assert len(message) < 400


# 10 ------------------------------------------------------------------------------- unknown folders and names


def test_unknown_folders_are_listed_one_level_deep(tmp_path: Path) -> None:
    for i in range(30):
        deep = tmp_path / f"d{i:02d}" / "a" / "b"
        deep.mkdir(parents=True)
        (deep / "file.txt").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UnknownLayoutError) as caught:
        StaticSentenceTransformer(tmp_path)
    message = str(caught.value)
    assert "d00/a" in message and "file.txt" not in message  # the listing never walks the tree


@pytest.mark.parametrize(
    "name, error, text",
    [
        ("", ModelNotFoundError, "is empty"),
        ("   ", ModelNotFoundError, "is empty"),
        ("/nonexistent", ModelNotFoundError, "No such folder: '/nonexistent'"),
        ("./missing/model", ModelNotFoundError, "No such folder"),
        ("~/definitely-not-here-xyz", ModelNotFoundError, "No such folder"),
        ("/", UnknownLayoutError, "not a static embedding model in any known layout"),
    ],
)
def test_bad_model_names(name: str, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        StaticSentenceTransformer(name)


# 11 ------------------------------------------------------------------------------- other error types when loading


@pytest.mark.parametrize("file", ["config.json", "config_sentence_transformers.json", "modules.json"])
def test_deeply_nested_json_is_a_corrupt_model(tmp_path: Path, file: str) -> None:
    write_model2vec(tmp_path / "m", wordpiece_tokenizer())
    (tmp_path / "m" / file).write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(StaticSTError, match="m/" + file.replace(".", r"\.")):
        StaticSentenceTransformer(tmp_path / "m")


def test_a_deeply_nested_tokenizer_is_a_corrupt_model(tmp_path: Path) -> None:
    write_model2vec(tmp_path / "m", wordpiece_tokenizer())
    (tmp_path / "m" / "tokenizer.json").write_text('{"x":' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(CorruptModelError, match="tokenizer.json"):
        StaticSentenceTransformer(tmp_path / "m")


# 17 ------------------------------------------------------------------------------- the process pool


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals")
def test_a_stopped_worker_times_out_with_an_honest_message(shared_model: Callable[[str], Path]) -> None:
    from staticst.multiprocess import POOL_MIN_TEXTS

    model = StaticSentenceTransformer(shared_model("potion-base-2M"))
    pool = model.start_multi_process_pool(["cpu"], timeout=2)
    texts = [f"sentence number {i}" for i in range(POOL_MIN_TEXTS)]
    try:
        for _ in range(30):  # the worker is up: on a loaded machine its start can take longer than the 2 s timeout
            try:
                model.encode(texts, pool=pool)
                break
            except TimeoutError:
                continue
        else:
            pytest.fail("the pool worker did not start within 30 attempts of 2 s")
        os.kill(pool["processes"][0].pid, signal.SIGSTOP)
        with pytest.raises(TimeoutError, match=r"no staticst pool worker finished a chunk in 2 s.*stopped \(SIGSTOP\)"):
            model.encode(texts, pool=pool)
    finally:
        os.kill(pool["processes"][0].pid, signal.SIGCONT)
        model.stop_multi_process_pool(pool)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        model.start_multi_process_pool(["cpu"], timeout=0)


def test_the_native_word_table_stays_within_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unique words beyond the bound start a new generation: memory levels off (benchmarks/soak.py measures RSS)."""
    from staticst import kernel as kernels

    if not kernels.available():
        pytest.skip("the compiled kernel is not built")  # the RSS soak covers the numpy path's cache
    monkeypatch.setattr(kernels, "WORD_TABLE_WORDS", 5000)
    model = StaticSentenceTransformer(kernel="native")
    table = model.engine._shared.words
    for batch in range(20):
        model.encode([f"w{batch}x{i}q" for i in range(2000)])
        assert len(table) <= 5000
    assert table.generations >= 5
