"""Multi-process encoding (start_multi_process_pool / encode(pool=...) / encode(device=[...])).

Workers are real spawned processes encoding the real potion-base-8M; every result is compared bit for
bit with in-process encoding of the same texts.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import staticst.multiprocess as mp_module
from staticst import StaticSentenceTransformer
from tests.conftest import wordpiece_tokenizer, write_model2vec

ADVERSARIAL = ["", "   ", "emoji 😀 and 日本語", "Ünïcödé café naïve", "a" * 3000, "[CLS] inside [SEP] text", "\x00\x1f ctl"]


@pytest.fixture(scope="module")
def corpus(shared_dir: Path) -> list[str]:
    """Over POOL_MIN_TEXTS real texts: STS-B sentences, SciFact abstracts (long, some non-ASCII), oddities."""
    texts: list[str] = []
    with (shared_dir / "data" / "mteb" / "stsbenchmark-sts" / "train.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            texts += [row["sentence1"], row["sentence2"]]
    with (shared_dir / "data" / "mteb" / "scifact" / "corpus.jsonl").open(encoding="utf-8") as handle:
        for _, line in zip(range(400), handle, strict=False):
            texts.append(json.loads(line)["text"])
    texts += ADVERSARIAL * 3
    assert len(texts) > mp_module.POOL_MIN_TEXTS
    return texts


@pytest.fixture(scope="module")
def potion(shared_model: Callable[[str], Path]) -> StaticSentenceTransformer:
    return StaticSentenceTransformer(shared_model("potion-base-8M"))


@pytest.fixture(scope="module")
def pool(potion: StaticSentenceTransformer) -> Iterator[dict[str, Any]]:
    started = potion.start_multi_process_pool(["cpu", "cpu"])
    yield started
    potion.stop_multi_process_pool(started)


@pytest.fixture
def pool_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the size of every input that went to worker processes."""
    calls: list[int] = []
    original = mp_module.encode_with_pool

    def spy(model: Any, texts: list[str], pool: dict[str, Any], chunk_size: int | None, *rest: Any) -> np.ndarray:
        calls.append(len(texts))
        return original(model, texts, pool, chunk_size, *rest)

    monkeypatch.setattr(mp_module, "encode_with_pool", spy)
    return calls


def test_pool_is_bit_identical(
    potion: StaticSentenceTransformer, pool: dict[str, Any], corpus: list[str], pool_calls: list[int]
) -> None:
    assert len(pool["processes"]) == 2 and set(pool) >= {"input", "output", "processes"}
    np.testing.assert_array_equal(potion.encode(corpus, pool=pool), potion.encode(corpus))
    np.testing.assert_array_equal(potion.encode(corpus, pool=pool, chunk_size=333), potion.encode(corpus))
    kwargs: dict[str, Any] = {"prompt": "query: ", "truncate_dim": 64, "normalize_embeddings": True}
    np.testing.assert_array_equal(potion.encode(corpus, pool=pool, **kwargs), potion.encode(corpus, **kwargs))
    np.testing.assert_array_equal(
        potion.encode(corpus, pool=pool, precision="int8"), potion.encode(corpus, precision="int8")
    )
    # the pool's output block is reused for a smaller call and grown for a larger one
    np.testing.assert_array_equal(potion.encode(corpus[:5000], pool=pool), potion.encode(corpus[:5000]))
    np.testing.assert_array_equal(potion.encode(corpus * 2, pool=pool), potion.encode(corpus * 2))
    assert pool_calls == [len(corpus)] * 4 + [5000, 2 * len(corpus)]


def test_threads_can_share_a_pool(potion: StaticSentenceTransformer, pool: dict[str, Any], corpus: list[str]) -> None:
    expected = {k: potion.encode(corpus[k:]) for k in (0, 7)}
    results: dict[int, np.ndarray] = {}

    def run(k: int) -> None:
        results[k] = potion.encode(corpus[k:], pool=pool)

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for k in (0, 7):
        np.testing.assert_array_equal(results[k], expected[k])


def test_pool_follows_the_models_current_settings(
    shared_model: Callable[[str], Path], corpus: list[str], pool_calls: list[int]
) -> None:
    model = StaticSentenceTransformer(shared_model("potion-base-8M"))
    started = model.start_multi_process_pool(["cpu"])
    try:
        model.max_seq_length = 8  # changed after the workers loaded the model
        short = model.encode(corpus, pool=started)
        np.testing.assert_array_equal(short, model.encode(corpus))
        assert not np.array_equal(short, StaticSentenceTransformer(shared_model("potion-base-8M")).encode(corpus))
    finally:
        model.stop_multi_process_pool(started)
    assert pool_calls == [len(corpus)]


def test_pool_with_a_model_level_truncate_dim(
    shared_model: Callable[[str], Path], pool: dict[str, Any], corpus: list[str], pool_calls: list[int]
) -> None:
    model = StaticSentenceTransformer(shared_model("potion-base-8M"), truncate_dim=32)
    got = model.encode(corpus, pool=pool)
    assert got.shape == (len(corpus), 32)
    np.testing.assert_array_equal(got, model.encode(corpus))
    assert pool_calls == [len(corpus)]


def test_small_inputs_stay_in_process(
    potion: StaticSentenceTransformer, pool: dict[str, Any], corpus: list[str], pool_calls: list[int]
) -> None:
    small = corpus[: mp_module.POOL_MIN_TEXTS - 1]
    np.testing.assert_array_equal(potion.encode(small, pool=pool), potion.encode(small))
    np.testing.assert_array_equal(potion.encode(corpus[0], pool=pool), potion.encode(corpus[0]))
    assert potion.encode([], pool=pool).shape == (0,)
    assert pool_calls == []


def test_device_list_starts_a_temporary_pool(
    potion: StaticSentenceTransformer, corpus: list[str], pool_calls: list[int]
) -> None:
    before = set(multiprocessing.active_children())
    np.testing.assert_array_equal(potion.encode(corpus, device=["cpu", "cpu"]), potion.encode(corpus))
    assert pool_calls == [len(corpus)]
    assert set(multiprocessing.active_children()) <= before  # the temporary workers are gone


def test_bad_pools_and_arguments(potion: StaticSentenceTransformer, corpus: list[str]) -> None:
    with pytest.raises(ValueError, match="start_multi_process_pool"):
        potion.encode(corpus, pool={"input": None, "output": None, "processes": []})
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        potion.encode(corpus, chunk_size=0)
    with pytest.raises(ValueError, match=r"device=\[\] names no worker"):
        potion.encode(corpus, device=[])
    with pytest.raises(ValueError, match="target_devices must be a non-empty list"):
        potion.start_multi_process_pool("cpu")  # type: ignore[arg-type]
    stopped = potion.start_multi_process_pool(["cpu"])
    potion.stop_multi_process_pool(stopped)
    potion.stop_multi_process_pool(stopped)  # a second stop is a no-op
    with pytest.raises(ValueError, match="the pool has been stopped"):
        potion.encode(corpus, pool=stopped)


def test_a_dead_worker_is_an_error_not_a_hang(tmp_path: Path, corpus: list[str]) -> None:
    write_model2vec(tmp_path / "tiny", wordpiece_tokenizer())
    model = StaticSentenceTransformer(tmp_path / "tiny")
    started = model.start_multi_process_pool(["cpu"])
    try:
        started["processes"][0].kill()
        started["processes"][0].join()
        with pytest.raises(ValueError, match=r"every worker of the pool has died \(pid \d+ \(killed by SIGKILL\)\)"):
            model.encode(corpus, pool=started)  # no live worker left: said as it is, not "stopped"
    finally:
        model.stop_multi_process_pool(started)
    # a worker that dies with chunks outstanding: the caller raises instead of waiting forever
    ctx = multiprocessing.get_context("spawn")
    gone = ctx.Process(target=time.sleep, args=(0,))
    gone.start()
    gone.join()
    fake = {"input": ctx.Queue(), "output": ctx.Queue(), "processes": [gone], "staticst": "x"}
    fake.update(staticst_lock=threading.Lock(), staticst_block=None)
    try:
        with pytest.raises(RuntimeError, match=r"1 staticst pool worker\(s\) died: pid \d+ \(exit code 0\)"):
            mp_module.encode_with_pool(model.engine, corpus, fake, None)
        assert fake["staticst_block"] is None  # a failed call's block is dropped: late chunks write elsewhere
    finally:
        fake["input"].cancel_join_thread()
        fake["input"].close()
        fake["output"].close()


def test_pool_results_above_the_bound_are_mapped_not_copied(
    potion: StaticSentenceTransformer, pool: dict[str, Any], corpus: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large pooled result is the workers' block itself (peak memory once, not twice), identical, and freed with it."""
    import gc
    import mmap

    monkeypatch.setattr(mp_module, "OWN_BLOCK_BYTES", 1)
    before = set(Path("/dev/shm").iterdir())
    got = potion.encode(corpus, pool=pool)
    owner: Any = got
    while not isinstance(owner, mmap.mmap) and owner is not None:  # array -> ... -> memoryview -> mmap
        owner = owner.obj if isinstance(owner, memoryview) else owner.base
    assert isinstance(owner, mmap.mmap)
    assert set(Path("/dev/shm").iterdir()) <= before  # the block's name is gone already
    np.testing.assert_array_equal(got, potion.encode(corpus))
    del got, owner
    gc.collect()


def test_pool_shows_the_progress_bar_it_is_asked_for(
    potion: StaticSentenceTransformer, pool: dict[str, Any], corpus: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    potion.encode(corpus, pool=pool, show_progress_bar=True)
    err = capsys.readouterr().err
    batches = -(-len(corpus) // 32)  # batches of the default batch_size, as sentence-transformers counts them
    assert "Batches" in err and f"{batches}/{batches}" in err
    potion.encode(corpus, pool=pool, show_progress_bar=False)
    assert "Batches" not in capsys.readouterr().err
