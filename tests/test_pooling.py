"""Pooling arithmetic against straightforward per-text numpy references, and the single-text path."""

from __future__ import annotations

import numpy as np
import pytest

import staticst.pooling as pooling
from staticst.pooling import PoolingConfig, pool, pool_one


def _random_case(seed: int, dtype: str, n_texts: int = 60, vocab: int = 50, dim: int = 12):
    rng = np.random.default_rng(seed)
    if dtype == "int8":
        table = rng.integers(-127, 127, (vocab, dim)).astype(np.int8)
    else:
        table = rng.standard_normal((vocab, dim)).astype(dtype)
    lengths = rng.integers(0, 40, n_texts)
    lengths[::7] = 0
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(0, vocab, int(offsets[-1])).astype(np.int64)
    return table, ids, offsets


def _model2vec_reference(table, ids, offsets, normalize, mapping=None, weights=None):
    """model2vec 0.10's arithmetic, text by text."""
    out_dtype = np.float32 if table.dtype == np.int8 else table.dtype
    out = np.zeros((len(offsets) - 1, table.shape[1]), dtype=out_dtype)
    for i in range(len(offsets) - 1):
        tok = ids[offsets[i] : offsets[i + 1]]
        if len(tok) == 0:
            continue
        emb = table[mapping[tok] if mapping is not None else tok]
        if weights is not None:
            emb = emb * weights[tok][:, None]
        out[i] = emb.mean(axis=0)
    if normalize:
        out32 = out.astype(np.float32)
        out = (out32 / (np.linalg.norm(out32, axis=1, keepdims=True) + 1e-32)).astype(out.dtype)
    return out.astype(np.float32)


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_model2vec_arithmetic_is_bit_exact(dtype: str, normalize: bool, seed: int) -> None:
    table, ids, offsets = _random_case(seed, dtype)
    got = pool(table, ids, offsets, PoolingConfig("model2vec", normalize))
    np.testing.assert_array_equal(got, _model2vec_reference(table, ids, offsets, normalize))
    for i in range(len(offsets) - 1):
        one = pool_one(table, ids[offsets[i] : offsets[i + 1]], PoolingConfig("model2vec", normalize))
        np.testing.assert_array_equal(one, got[i])


@pytest.mark.parametrize("dtype", ["float32", "int8", "float16"])
def test_mapping_and_weights(dtype: str) -> None:
    table, ids, offsets = _random_case(5, dtype, vocab=10)
    rng = np.random.default_rng(1)
    n_tokens = 80
    ids = rng.integers(0, n_tokens, len(ids)).astype(np.int64)
    mapping = rng.integers(0, 10, n_tokens).astype(np.int64)
    weights = rng.uniform(0.1, 3, n_tokens).astype(np.float32)
    config = PoolingConfig("model2vec", True)
    got = pool(table, ids, offsets, config, mapping=mapping, weights=weights)
    np.testing.assert_array_equal(got, _model2vec_reference(table, ids, offsets, True, mapping, weights))
    one = pool_one(table, ids[offsets[1] : offsets[2]], config, mapping=mapping, weights=weights)
    np.testing.assert_array_equal(one, got[1])


def test_weight_sum_denominator_is_the_attention_weighted_mean() -> None:
    table, ids, offsets = _random_case(9, "float32", vocab=20)
    weights = np.random.default_rng(2).uniform(0.1, 3, 20).astype(np.float32)
    got = pool(table, ids, offsets, PoolingConfig("model2vec", False, "weight_sum"), weights=weights)
    for i in range(len(offsets) - 1):
        tok = ids[offsets[i] : offsets[i + 1]]
        if len(tok):
            expected = (weights[tok, None].astype(np.float64) * table[tok]).sum(0) / weights[tok].astype(np.float64).sum()
            assert np.abs(got[i] - expected).max() < 1e-5
    by_count = pool(table, ids, offsets, PoolingConfig("model2vec", True, "count"), weights=weights)
    by_weight = pool(table, ids, offsets, PoolingConfig("model2vec", True, "weight_sum"), weights=weights)
    assert np.abs(by_count - by_weight).max() < 1e-6


def test_sentence_transformers_arithmetic() -> None:
    torch = pytest.importorskip("torch")
    table, ids, offsets = _random_case(4, "float32")
    bag = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(table), mode="mean")
    ref = bag(torch.from_numpy(ids), torch.from_numpy(offsets[:-1])).numpy()
    got = pool(table, ids, offsets, PoolingConfig("sentence-transformers", False))
    np.testing.assert_array_equal(got, ref)
    normed = pool(table, ids, offsets, PoolingConfig("sentence-transformers", True))
    assert np.abs(normed - torch.nn.functional.normalize(torch.from_numpy(ref), dim=-1).numpy()).max() < 1e-6


def test_bounded_windows_and_long_texts_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    table, ids, offsets = _random_case(7, "float16", n_texts=200)
    long_ids = np.random.default_rng(3).integers(0, 50, 5000)
    ids = np.concatenate([ids, long_ids])
    offsets = np.concatenate([offsets, [offsets[-1] + 5000]])
    config = PoolingConfig("model2vec", True)
    expected = _model2vec_reference(table, ids, offsets, True)
    np.testing.assert_array_equal(pool(table, ids, offsets, config), expected)
    monkeypatch.setattr(pooling, "WINDOW_BYTES", 512)
    monkeypatch.setattr(pooling, "LONG_TEXT_TOKENS", 16)
    np.testing.assert_array_equal(pool(table, ids, offsets, config), expected)
    np.testing.assert_array_equal(pool_one(table, long_ids, config), expected[-1])


def test_empty_inputs() -> None:
    table = np.ones((3, 4), np.float32)
    assert pool(table, np.zeros(0, np.int64), np.zeros(1, np.int64), PoolingConfig("model2vec", True)).shape == (0, 4)
    zero = pool(table, np.zeros(0, np.int64), np.zeros(3, np.int64), PoolingConfig("sentence-transformers", True))
    assert zero.shape == (2, 4) and not zero.any() and np.isfinite(zero).all()


@pytest.mark.parametrize("arithmetic", ["model2vec", "sentence-transformers"])
@pytest.mark.parametrize("with_weights", [False, True])
def test_float16_gather_table_changes_nothing(arithmetic: str, with_weights: bool) -> None:
    """The float32 working copy of a float16 table is a speed-up only: bit-identical results."""
    table, ids, offsets = _random_case(11, "float16")
    weights = np.random.default_rng(3).random(table.shape[0]).astype(np.float32) if with_weights else None
    config = PoolingConfig(arithmetic, normalize=True)  # type: ignore[arg-type]
    copy = table.astype(np.float32)
    plain = pool(table, ids, offsets, config, weights=weights)
    fast = pool(table, ids, offsets, config, weights=weights, gather_table=copy)
    assert plain.tobytes() == fast.tobytes()
    if arithmetic == "model2vec":
        reference = _model2vec_reference(table, ids, offsets, True, weights=weights)
        assert plain.tobytes() == reference.tobytes()
    for i in range(len(offsets) - 1):
        tok = ids[offsets[i] : offsets[i + 1]]
        one = pool_one(table, tok, config, weights=weights, gather_table=copy)
        assert one.tobytes() == plain[i].tobytes()


@pytest.mark.parametrize("dim", [7, 64, 256, 300, 1024])
@pytest.mark.parametrize("arithmetic", ["model2vec", "sentence-transformers"])
@pytest.mark.parametrize("normalize", [False, True])
def test_single_text_path_equals_batch_at_real_widths(dim: int, arithmetic: str, normalize: bool) -> None:
    """pool_one's float32 shortcut (float32 division / math.sqrt) is bit-identical to pool() on every text."""
    rng = np.random.default_rng(dim)
    table = (rng.standard_normal((500, dim)) * rng.uniform(1e-3, 1e3, (500, 1))).astype(np.float32)
    table[7] = 0.0  # a zero row: a text of only this token has norm 0
    lengths = rng.integers(1, 90, 400)
    lengths[:3] = [1, 1, 2]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(0, 500, int(offsets[-1])).astype(np.int64)
    ids[offsets[0]] = ids[offsets[2]] = ids[offsets[2] + 1] = 7
    config = PoolingConfig(arithmetic, normalize)  # type: ignore[arg-type]
    batch = pool(table, ids, offsets, config)
    if arithmetic == "model2vec":
        np.testing.assert_array_equal(batch, _model2vec_reference(table, ids, offsets, normalize))
    for i in range(len(lengths)):
        chunk = ids[offsets[i] : offsets[i + 1]]
        np.testing.assert_array_equal(pool_one(table, chunk.tolist(), config), batch[i])
        np.testing.assert_array_equal(pool_one(table, chunk, config), batch[i])
    assert not np.isnan(batch).any() and not batch[0].any()
