"""staticst.util against the real sentence_transformers.util (numpy in, numpy out; ST gives tensors).

Expected values come from sentence-transformers itself, from float64 / integer arithmetic written out
here, or (where ST's order among equal scores is implementation-defined) from a plain-Python reference of
ST's published algorithm with ties broken by the lower index.
"""

from __future__ import annotations

import ast
import heapq
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp

from staticst import StaticSentenceTransformer
from staticst import util as ours

torch = pytest.importorskip("torch")  # installed in CI via the [test] extra
st = pytest.importorskip("sentence_transformers.util")

REPO = Path(__file__).resolve().parent.parent
ALL_PAIRS = ["cos_sim", "dot_score", "euclidean_sim", "manhattan_sim"]
PAIRWISE = ["pairwise_cos_sim", "pairwise_dot_score", "pairwise_euclidean_sim", "pairwise_manhattan_sim"]
DTYPES = [np.float16, np.float32, np.float64]
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _np(value: Any) -> np.ndarray:
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _scale(fn: str, a: np.ndarray, b: np.ndarray) -> float:
    """Rough size of the rounding error of ``fn`` on ``a`` and ``b`` (in units of the working eps)."""
    a64, b64 = np.abs(np.asarray(a, np.float64)), np.abs(np.asarray(b, np.float64))
    dim = a64.shape[-1] if a64.ndim else 1
    amax, bmax = (float(x.max()) if x.size else 0.0 for x in (a64, b64))
    if "cos" in fn:
        return float(dim)
    if "dot" in fn:
        return dim * max(1.0, amax * bmax)
    return dim * max(1.0, amax + bmax)


def assert_same(got: Any, want: Any, scale: float = 1.0) -> None:
    """Same type, shape and dtype as ST's (numpy for tensor), values equal up to rounding."""
    want = _np(want)
    assert isinstance(got, np.ndarray), type(got)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    eps = float(np.finfo(want.dtype).eps) if want.dtype.kind == "f" else 0.0
    np.testing.assert_allclose(got, want, rtol=8 * eps, atol=16 * eps * scale)


def _convert(x: np.ndarray, kind: str) -> Any:
    if kind == "numpy":
        return x
    if kind == "list":
        return x.tolist()
    if kind == "tensor":
        return torch.from_numpy(x.copy())
    if kind == "list_of_arrays":
        return list(x)
    if kind == "list_of_tensors":
        return [torch.from_numpy(row.copy()) for row in x]
    raise AssertionError(kind)


def _random(shape: tuple[int, ...], dtype: Any = np.float32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------------------------------------
# API surface


def test_every_public_name_is_tested_and_named_as_in_st() -> None:
    source = Path(__file__).read_text()
    # the functions added for the drop-in issue are compared with ST's in test_compat_util_hub.py
    more = (Path(__file__).parent / "test_compat_util_hub.py").read_text()
    for name in ours.__all__:
        indexed = name.startswith("semantic_search_") and f'("{name.removeprefix("semantic_search_")}", (' in more
        tested = name in ALL_PAIRS + PAIRWISE or f"ours.{name}" in source or f"util.{name}(" in more or indexed
        assert tested, f"staticst.util.{name} has no test here or in test_compat_util_hub.py"
        if name not in ("EmbeddingShapeError", "similarity_fn", "pairwise_similarity_fn"):
            where = st.quantization if name.startswith("semantic_search_") else st  # ST keeps those two there
            assert hasattr(where, name), f"{name} is not a sentence_transformers.util function"


def test_util_never_imports_torch() -> None:
    files = sorted((REPO / "staticst" / "util").glob("*.py"))
    assert len(files) >= 4
    for path in files:
        tree = ast.parse(path.read_text())
        imported = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert "torch" not in imported and "sentence_transformers" not in imported, path


def test_shape_error_is_value_and_runtime_error() -> None:
    assert issubclass(ours.EmbeddingShapeError, ValueError)
    assert issubclass(ours.EmbeddingShapeError, RuntimeError)


# --------------------------------------------------------------------------------------------------------
# similarity functions


# all-pairs: 1-D inputs read as one row; pairwise: two 1-D inputs give ST's 0-d result, a single row broadcasts
SHAPES = [((5, 8), (7, 8)), ((1, 8), (7, 8)), ((5, 8), (1, 8)), ((8,), (7, 8)), ((5, 8), (8,)), ((8,), (8,)), ((0, 8), (3, 8))]
PAIR_SHAPES = [((5, 8), (5, 8)), ((5, 8), (1, 8)), ((5, 8), (8,)), ((8,), (8,)), ((2, 3, 8), (2, 3, 8)), ((0, 8), (0, 8))]
CASES = [(fn, shapes) for fn in ALL_PAIRS for shapes in SHAPES] + [(fn, shapes) for fn in PAIRWISE for shapes in PAIR_SHAPES]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("fn", "shapes"), CASES, ids=str)
def test_similarities_match_st(fn: str, shapes: tuple, dtype: Any) -> None:
    a, b = _random(shapes[0], dtype, 1), _random(shapes[1], dtype, 2)
    assert_same(getattr(ours, fn)(a, b), getattr(st, fn)(a, b), _scale(fn, a, b))


@pytest.mark.parametrize("fn", ALL_PAIRS + PAIRWISE)
@pytest.mark.parametrize("kind", ["list", "tensor", "list_of_arrays", "list_of_tensors"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_input_kinds_match_st(fn: str, kind: str, dtype: Any) -> None:
    """Python-float lists read as float32 (as torch.tensor does); arrays and tensors keep their dtype."""
    a, b = _random((4, 6), dtype, 3), _random((4, 6), dtype, 4)
    got = getattr(ours, fn)(_convert(a, kind), _convert(b, kind))
    assert_same(got, getattr(st, fn)(_convert(a, kind), _convert(b, kind)), _scale(fn, a, b))


@pytest.mark.parametrize("fn", ALL_PAIRS + PAIRWISE)
def test_zero_and_duplicate_vectors_match_st(fn: str) -> None:
    a = _random((4, 5), np.float32, 7)
    a[1] = 0.0
    b = np.stack([a[0], a[1], np.zeros(5, np.float32), -a[3]])
    got, want = getattr(ours, fn)(a, b), getattr(st, fn)(a, b)
    assert_same(got, want, _scale(fn, a, b))
    assert np.isfinite(got).all()
    if fn in ("cos_sim", "pairwise_cos_sim"):  # a zero vector has cosine 0 with everything, itself included
        assert (got.reshape(4, -1)[1] == 0).all()


@pytest.mark.parametrize("fn", ["euclidean_sim", "manhattan_sim"])
def test_distances_are_exact_on_large_inputs(fn: str) -> None:
    """torch.cdist switches to a Gram-matrix formula above 25 rows; ours stays exact (and bounded in memory)."""
    a, b = _random((60, 24), np.float32, 8), _random((40, 24), np.float32, 9)
    b[:10] = a[:10]
    got = getattr(ours, fn)(a, b)
    diff = a.astype(np.float64)[:, None, :] - b.astype(np.float64)[None, :, :]
    truth = -np.sqrt((diff**2).sum(-1)) if fn == "euclidean_sim" else -np.abs(diff).sum(-1)
    np.testing.assert_allclose(got, truth, rtol=1e-6, atol=1e-5)
    assert (got[np.arange(10), np.arange(10)] == 0).all()  # identical rows: distance exactly 0
    np.testing.assert_allclose(got, _np(getattr(st, fn)(a, b)), rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6,), (3, 6), (2, 3, 6), (0, 6)])
def test_normalize_embeddings_matches_st(dtype: Any, shape: tuple) -> None:
    x = _random(shape, dtype, 10)
    assert_same(ours.normalize_embeddings(x), st.normalize_embeddings(torch.from_numpy(x.copy())))
    if x.ndim == 2 and len(x):
        x[1] = 0.0
        got, want = ours.normalize_embeddings(x), _np(st.normalize_embeddings(torch.from_numpy(x.copy())))
        assert (got[1] == 0).all()  # a zero row stays zero ...
        if dtype == np.float16:  # ... where torch's eps (1e-12) underflows in float16 and gives NaN
            assert np.isnan(want[1]).all()
        assert_same(np.delete(got, 1, axis=0), np.nan_to_num(np.delete(want, 1, axis=0)))
    assert ours.normalize_embeddings(x.tolist()).dtype == np.float32  # lists read as torch.tensor reads them


def test_normalize_embeddings_rejects_a_scalar() -> None:
    with pytest.raises(ours.EmbeddingShapeError, match="scalar"):
        ours.normalize_embeddings(np.float32(3.0))


@hs.composite
def _matrix_pairs(draw: Any, pairwise: bool) -> tuple[np.ndarray, np.ndarray]:
    dtype = draw(hs.sampled_from(DTYPES))
    dim = draw(hs.integers(1, 10))
    n = draw(hs.integers(0 if pairwise else 1, 12))
    m = n if pairwise else draw(hs.integers(1, 12))
    values = hs.floats(-8, 8, width=16)  # exact in every dtype
    a = draw(hnp.arrays(dtype, (n, dim), elements=values))
    b = draw(hnp.arrays(dtype, (m, dim), elements=values))
    if n and m and draw(hs.booleans()):
        b[0] = a[-1]  # an exact duplicate
    if draw(hs.booleans()):  # single embeddings as 1-D vectors
        a = a[0] if len(a) else a
    return a, b


@FAST
@given(_matrix_pairs(pairwise=False), hs.sampled_from(ALL_PAIRS))
def test_all_pairs_property(pair: tuple[np.ndarray, np.ndarray], fn: str) -> None:
    a, b = pair
    assert_same(getattr(ours, fn)(a, b), getattr(st, fn)(a, b), _scale(fn, a, b))


@FAST
@given(_matrix_pairs(pairwise=True), hs.sampled_from(PAIRWISE))
def test_pairwise_property(pair: tuple[np.ndarray, np.ndarray], fn: str) -> None:
    a, b = pair
    if a.ndim == 1:
        b = b[0] if len(b) else b
    if a.shape != b.shape:
        return
    assert_same(getattr(ours, fn)(a, b), getattr(st, fn)(a, b), _scale(fn, a, b))


BAD_SHAPES = [
    ((2, 3), (2, 4), "differ"),  # mismatched dimensions
    ((2, 2, 3), (2, 3), "shape"),  # a 3-D input
    ((), (2, 3), "shape"),  # a scalar
]


@pytest.mark.parametrize("fn", ALL_PAIRS)
@pytest.mark.parametrize("bad", BAD_SHAPES, ids=str)
def test_all_pairs_bad_shapes(fn: str, bad: tuple) -> None:
    a, b = np.ones(bad[0], np.float32), np.ones(bad[1], np.float32)
    if not (a.ndim == 3 and fn in ("euclidean_sim", "manhattan_sim")):  # there torch.cdist runs batched
        with pytest.raises(RuntimeError):
            getattr(st, fn)(a, b)
    with pytest.raises(ours.EmbeddingShapeError, match=bad[2]) as info:
        getattr(ours, fn)(a, b)
    assert str(a.shape) in str(info.value)  # names the actual value


@pytest.mark.parametrize("fn", PAIRWISE)
@pytest.mark.parametrize("bad", [((3, 4), (2, 4)), ((3, 4), (3, 5))], ids=str)
def test_pairwise_bad_shapes(fn: str, bad: tuple) -> None:
    a, b = np.ones(bad[0], np.float32), np.ones(bad[1], np.float32)
    with pytest.raises(RuntimeError):
        getattr(st, fn)(a, b)
    with pytest.raises(ours.EmbeddingShapeError, match=r"\(3, 4\)"):
        getattr(ours, fn)(a, b)


@pytest.mark.parametrize("fn", ["cos_sim", "pairwise_dot_score", "normalize_embeddings"])
def test_ragged_and_non_numeric_inputs(fn: str) -> None:
    args: list[Any] = [[[1.0, 2.0], [3.0]]] * (1 if fn == "normalize_embeddings" else 2)
    with pytest.raises(ValueError, match="ragged"):
        getattr(ours, fn)(*args)
    args = [np.array([["a", "b"]])] * len(args)
    with pytest.raises(ValueError, match="real numbers"):
        getattr(ours, fn)(*args)


def test_integer_inputs_are_computed_in_float() -> None:
    a = np.array([[1, 2, 3], [0, 0, 0]], np.int8)
    b = np.array([[127, 127, 127]], np.int8)
    np.testing.assert_array_equal(ours.dot_score(a, b), [[762.0], [0.0]])  # no int8 overflow
    np.testing.assert_allclose(ours.cos_sim(a, b), [[6 / np.sqrt(42)], [0.0]], rtol=1e-6)


@pytest.mark.parametrize("name", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarity_fn_lookup_matches_st(name: str) -> None:
    a, b = _random((3, 5), np.float32, 11), _random((3, 5), np.float32, 12)
    enum = st.SimilarityFunction(name)
    for key in (name, enum):
        fn, pairwise = ours.similarity_fn(key), ours.pairwise_similarity_fn(key)
        assert_same(fn(a, b), st.SimilarityFunction.to_similarity_fn(enum)(a, b), _scale(name, a, b))
        assert_same(pairwise(a, b), st.SimilarityFunction.to_similarity_pairwise_fn(enum)(a, b), _scale(name, a, b))


@pytest.mark.parametrize("name", ["jaccard", "dot_product", "maxsim", None])
def test_similarity_fn_unknown_names(name: Any) -> None:
    for lookup in (ours.similarity_fn, ours.pairwise_similarity_fn):
        with pytest.raises(ValueError, match=f"{name!r}.*cosine"):
            lookup(name)
    if name != "maxsim":
        with pytest.raises(ValueError):
            st.SimilarityFunction.to_similarity_fn(name)


# --------------------------------------------------------------------------------------------------------
# semantic_search


def _hits(result: list[list[dict[str, int | float]]]) -> list[list[tuple[int, float]]]:
    for hits in result:
        for hit in hits:
            assert set(hit) == {"corpus_id", "score"}
            assert type(hit["corpus_id"]) is int and type(hit["score"]) is float
    return [[(int(h["corpus_id"]), float(h["score"])) for h in hits] for hits in result]


def assert_same_hits(got: list, want: list, atol: float = 1e-6) -> None:
    got_hits, want_hits = _hits(got), _hits(want)
    assert [[c for c, _ in h] for h in got_hits] == [[c for c, _ in h] for h in want_hits]
    for g, w in zip(got_hits, want_hits, strict=True):
        np.testing.assert_allclose([s for _, s in g], [s for _, s in w], rtol=1e-6, atol=atol)


@pytest.mark.parametrize(
    ("n_queries", "n_corpus", "query_chunk_size", "corpus_chunk_size", "top_k"),
    [
        (6, 40, 100, 500000, 5),  # defaults
        (6, 40, 1, 1, 5),  # one row per chunk
        (7, 40, 3, 7, 4),  # ragged last chunks
        (3, 9, 2, 4, 20),  # top_k larger than the corpus
        (4, 30, 2, 8, 1),
        (4, 30, 5, 8, 0),  # top_k = 0
        (1, 30, 1, 30, 30),  # top_k == corpus size
    ],
)
def test_semantic_search_matches_st(n_queries: int, n_corpus: int, query_chunk_size: int, corpus_chunk_size: int, top_k: int) -> None:
    q, c = _random((n_queries, 16), np.float32, 13), _random((n_corpus, 16), np.float32, 14)
    kwargs = {"query_chunk_size": query_chunk_size, "corpus_chunk_size": corpus_chunk_size, "top_k": top_k}
    got = ours.semantic_search(q, c, **kwargs)
    assert_same_hits(got, st.semantic_search(q, c, **kwargs))
    assert all(len(h) == min(top_k, n_corpus) for h in got)


@pytest.mark.parametrize("score", ["dot_score", "euclidean_sim", "manhattan_sim"])
def test_semantic_search_score_functions_match_st(score: str) -> None:
    q, c = _random((5, 8), np.float32, 15), _random((30, 8), np.float32, 16)
    want = st.semantic_search(q, c, top_k=6, corpus_chunk_size=7, score_function=getattr(st, score))
    assert_same_hits(ours.semantic_search(q, c, top_k=6, corpus_chunk_size=7, score_function=getattr(ours, score)), want, 1e-5)
    # ST's own (torch) score function works in ours too
    assert_same_hits(ours.semantic_search(q, c, top_k=6, corpus_chunk_size=7, score_function=getattr(st, score)), want, 1e-5)


def test_semantic_search_custom_score_function_gets_numpy() -> None:
    q, c = _random((3, 4), np.float16, 17), _random((9, 4), np.float16, 18)
    seen: list[tuple[type, Any]] = []

    def neg_l2(a: Any, b: Any) -> Any:
        seen.append((type(a), a.dtype))
        return -((a[:, None, :].astype(np.float64) - b[None, :, :]) ** 2).sum(-1)

    got = ours.semantic_search(q, c, top_k=3, corpus_chunk_size=4, score_function=neg_l2)
    assert seen and all(t is np.ndarray and d == np.float16 for t, d in seen)  # dtype kept, as ST keeps it
    truth = -((q.astype(np.float64)[:, None] - c.astype(np.float64)[None]) ** 2).sum(-1)
    assert [[h["corpus_id"] for h in hits] for hits in got] == np.argsort(-truth, axis=1)[:, :3].tolist()


@pytest.mark.parametrize("kind", ["list", "tensor", "list_of_arrays"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_semantic_search_inputs_match_st(kind: str, dtype: Any) -> None:
    q, c = _random((3, 8), dtype, 19), _random((12, 8), dtype, 20)
    atol = 1e-3 if dtype == np.float16 else 1e-6
    got = ours.semantic_search(_convert(q, kind), _convert(c, kind), top_k=4)
    assert_same_hits(got, st.semantic_search(_convert(q, kind), _convert(c, kind), top_k=4), atol)


def test_semantic_search_single_query_and_empty_inputs() -> None:
    q, c = _random((8,), np.float32, 21), _random((10, 8), np.float32, 22)
    assert_same_hits(ours.semantic_search(q, c, top_k=3), st.semantic_search(q, c, top_k=3))  # 1-D query: one row
    assert_same_hits(ours.semantic_search(q, c[0]), st.semantic_search(q, c[0]))  # 1-D corpus: one document
    empty_corpus = np.zeros((0, 8), np.float32)
    assert ours.semantic_search(c[:2], empty_corpus) == st.semantic_search(c[:2], empty_corpus) == [[], []]
    assert ours.semantic_search(empty_corpus, c) == st.semantic_search(empty_corpus, c) == []


def _exact_ties() -> tuple[np.ndarray, np.ndarray]:
    """Queries and a corpus with many duplicated rows; every dot product is a small integer (exact in float32)."""
    rng = np.random.default_rng(23)
    base = rng.integers(-2, 3, (4, 5)).astype(np.float32)
    corpus = base[rng.integers(0, 4, 23)]
    queries = rng.integers(-2, 3, (6, 5)).astype(np.float32)
    return queries, corpus


@pytest.mark.parametrize("top_k", [1, 3, 7, 30])
def test_semantic_search_ties_are_deterministic(top_k: int) -> None:
    queries, corpus = _exact_ties()
    exact = queries.astype(np.int64) @ corpus.astype(np.int64).T
    want = [sorted(range(len(corpus)), key=lambda j, i=i: (-exact[i, j], j))[:top_k] for i in range(len(queries))]
    reference = st.semantic_search(queries, corpus, top_k=top_k, score_function=st.dot_score)
    for qcs, ccs in [(100, 500000), (1, 1), (4, 5), (2, 9)]:
        got = _hits(ours.semantic_search(queries, corpus, qcs, ccs, top_k, ours.dot_score))
        assert [[cid for cid, _ in hits] for hits in got] == want  # ties: lower corpus_id first, also at the cut
        for i, hits in enumerate(got):
            assert [score for _, score in hits] == [float(exact[i, j]) for j in want[i]]
    for i, hits in enumerate(_hits(reference)):  # ST picks among ties in its own order: same scores
        assert [score for _, score in hits] == [float(exact[i, j]) for j in want[i]]
        assert all(exact[i, cid] == score for cid, score in hits)


def test_semantic_search_cosine_ties() -> None:
    """Duplicated one-hot corpus rows give bit-identical cosine scores."""
    queries = _random((5, 4), np.float32, 24)
    corpus = np.eye(4, dtype=np.float32)[[2, 0, 2, 1, 3, 0, 2, 1]]
    want_scores = st.semantic_search(queries, corpus, top_k=5)
    got = _hits(ours.semantic_search(queries, corpus, top_k=5, corpus_chunk_size=3))
    for hits, ref in zip(got, _hits(want_scores), strict=True):
        np.testing.assert_allclose([s for _, s in hits], [s for _, s in ref], rtol=1e-6)
        keys = [(-s, cid) for cid, s in hits]
        assert keys == sorted(keys)


def test_semantic_search_errors() -> None:
    q, c = _random((2, 4), np.float32, 25), _random((5, 4), np.float32, 26)
    with pytest.raises(RuntimeError):
        st.semantic_search(q, c, top_k=-1)
    with pytest.raises(ValueError, match="top_k must be at least 0, got -1"):
        ours.semantic_search(q, c, top_k=-1)
    for name in ("query_chunk_size", "corpus_chunk_size"):
        with pytest.raises(ValueError):
            st.semantic_search(q, c, **{name: 0})
        with pytest.raises(ValueError, match=f"{name} must be at least 1, got 0"):
            ours.semantic_search(q, c, **{name: 0})
        with pytest.raises(ValueError, match=f"{name} must be at least 1, got -3"):
            ours.semantic_search(q, c, **{name: -3})  # ST silently returns empty hits here
    with pytest.raises(TypeError):
        st.semantic_search(q, c, top_k=1.5)
    with pytest.raises(TypeError, match="top_k must be an int, got 1.5"):
        ours.semantic_search(q, c, top_k=1.5)
    with pytest.raises(RuntimeError):
        st.semantic_search(q, c[:, :3])
    with pytest.raises(ours.EmbeddingShapeError, match="differ"):
        ours.semantic_search(q, c[:, :3])
    with pytest.raises(ours.EmbeddingShapeError, match=r"\(2, 2, 2\)"):
        ours.semantic_search(q.reshape(2, 2, 2), c)
    with pytest.raises(ValueError, match=r"score_function returned shape \(2,\)"):
        ours.semantic_search(q, c, score_function=lambda a, b: np.zeros(len(a)))
    assert ours.semantic_search(q, c, top_k=np.int64(2)) == ours.semantic_search(q, c, top_k=2)


# --------------------------------------------------------------------------------------------------------
# paraphrase mining


def assert_same_pairs(got: list, want: list, atol: float = 1e-6) -> None:
    assert [p[1:] for p in got] == [p[1:] for p in want]
    np.testing.assert_allclose([p[0] for p in got], [p[0] for p in want], rtol=1e-6, atol=atol)
    for score, i, j in got:
        assert type(score) is float and type(i) is int and type(j) is int and i < j


@pytest.mark.parametrize(
    ("n", "query_chunk_size", "corpus_chunk_size", "max_pairs", "top_k"),
    [
        (30, 5000, 100000, 500000, 100),  # defaults
        (30, 1, 1, 500000, 100),
        (30, 7, 4, 40, 3),  # max_pairs evicts
        (30, 4, 7, 10, 1),
        (30, 9, 9, 0, 3),  # max_pairs = 0
        (30, 9, 9, 50, 0),  # top_k = 0
        (12, 5, 3, 1000, 11),  # every pair
        (2, 1, 1, 10, 5),
        (1, 1, 1, 10, 5),  # a single embedding has no pairs
        (0, 1, 1, 10, 5),
    ],
)
def test_paraphrase_mining_embeddings_matches_st(n: int, query_chunk_size: int, corpus_chunk_size: int, max_pairs: int, top_k: int) -> None:
    emb = _random((n, 12), np.float32, 27)
    kwargs = {"query_chunk_size": query_chunk_size, "corpus_chunk_size": corpus_chunk_size, "max_pairs": max_pairs, "top_k": top_k}
    got = ours.paraphrase_mining_embeddings(emb, **kwargs)
    assert_same_pairs(got, st.paraphrase_mining_embeddings(torch.from_numpy(emb), **kwargs))
    assert len(got) <= max_pairs


@pytest.mark.parametrize("score", ["dot_score", "manhattan_sim"])
@pytest.mark.parametrize("kind", ["numpy", "list", "tensor"])
def test_paraphrase_mining_inputs_and_score_functions(score: str, kind: str) -> None:
    emb = _random((25, 6), np.float32, 28)
    kwargs = {"query_chunk_size": 6, "corpus_chunk_size": 10, "max_pairs": 30, "top_k": 4}
    want = st.paraphrase_mining_embeddings(_convert(emb, kind), score_function=getattr(st, score), **kwargs)
    assert_same_pairs(ours.paraphrase_mining_embeddings(_convert(emb, kind), score_function=getattr(ours, score), **kwargs), want, 1e-5)


def _reference_mining(scores: np.ndarray, top_k: int, max_pairs: int) -> list[list[float | int]]:
    """ST's paraphrase_mining_embeddings loop written out on a full score matrix, ties by lower index."""
    pairs: list[tuple[float, int, int]] = []
    queued: set[tuple[int, int]] = set()
    min_score = float("-inf")
    for i in range(len(scores)):
        others = sorted((j for j in range(len(scores)) if j != i), key=lambda j: (-scores[i, j], j))[:top_k]
        for j in others:
            score, pair = float(scores[i, j]), (min(i, j), max(i, j))
            if score <= min_score or pair in queued:
                continue
            queued.add(pair)
            if len(pairs) < max_pairs:
                heapq.heappush(pairs, (score, *pair))
            else:
                evicted = heapq.heappushpop(pairs, (score, *pair))
                queued.discard(evicted[1:])
                min_score = evicted[0]
    return [[s, i, j] for s, i, j in sorted(pairs, key=lambda p: (-p[0], p[1], p[2]))]


@FAST
@given(
    emb=hnp.arrays(np.float32, hs.tuples(hs.integers(0, 9), hs.integers(1, 3)), elements=hs.integers(-2, 2)),
    top_k=hs.integers(0, 10),
    max_pairs=hs.integers(0, 50),
    query_chunk_size=hs.integers(1, 10),
    corpus_chunk_size=hs.integers(1, 10),
)
def test_paraphrase_mining_with_ties_is_deterministic(
    emb: np.ndarray, top_k: int, max_pairs: int, query_chunk_size: int, corpus_chunk_size: int
) -> None:
    """Integer embeddings under dot_score: many exact ties, so ST's order is arbitrary; ours follows the reference."""
    exact = emb.astype(np.int64) @ emb.astype(np.int64).T
    got = ours.paraphrase_mining_embeddings(emb, query_chunk_size, corpus_chunk_size, max_pairs, top_k, ours.dot_score)
    assert got == _reference_mining(exact, top_k, max_pairs)
    if top_k >= len(emb) - 1 and max_pairs >= len(emb) * (len(emb) - 1) // 2:  # every pair: ST gives the same set
        want = st.paraphrase_mining_embeddings(emb, top_k=top_k, max_pairs=max_pairs, score_function=st.dot_score)
        assert sorted(map(tuple, got)) == sorted(map(tuple, want))


def test_paraphrase_mining_chunking_does_not_change_the_result() -> None:
    # random rows plus duplicated one-hot rows: the one-hot scores are exact, so ties are exact (cosine 1.0)
    emb = np.concatenate([_random((30, 8), np.float32, 29), np.eye(8, dtype=np.float32)[[0, 3, 0, 5, 3, 0, 7]]])
    results = [
        ours.paraphrase_mining_embeddings(emb, qcs, ccs, max_pairs=25, top_k=3)
        for qcs, ccs in [(5000, 100000), (1, 1), (7, 3), (3, 11)]
    ]
    for result in results[1:]:
        assert_same_pairs(result, results[0])
    keys = [(-s, i, j) for s, i, j in results[0]]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_paraphrase_mining_errors_and_degenerate_inputs() -> None:
    emb = _random((6, 4), np.float32, 30)
    assert ours.paraphrase_mining_embeddings(emb[0]) == st.paraphrase_mining_embeddings(emb[0]) == []
    for name, value, minimum in [("query_chunk_size", 0, 1), ("corpus_chunk_size", 0, 1), ("max_pairs", -1, 0), ("top_k", -1, 0)]:
        with pytest.raises(ValueError, match=f"{name} must be at least {minimum}, got {value}"):
            ours.paraphrase_mining_embeddings(emb, **{name: value})
    with pytest.raises(TypeError, match="max_pairs must be an int"):
        ours.paraphrase_mining_embeddings(emb, max_pairs=2.0)
    with pytest.raises(ours.EmbeddingShapeError, match=r"\(2, 3, 4\)"):
        ours.paraphrase_mining_embeddings(np.ones((2, 3, 4)))


def test_paraphrase_mining_with_a_model_matches_st(tiny_st: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model, ref = StaticSentenceTransformer(tiny_st), SentenceTransformer(str(tiny_st), device="cpu")
    sentences = ["the cat sat on the mat", "a cat sat on a mat", "the dog bit the man", "hello world", "a good dog", "red sky", "blue sky"]
    for kwargs in [{}, {"top_k": 2, "max_pairs": 5}, {"truncate_dim": 4}, {"prompt_name": "query"}, {"prompt": "river ", "top_k": 1}]:
        got = ours.paraphrase_mining(model, sentences, **kwargs)
        assert_same_pairs(got, st.paraphrase_mining(ref, sentences, **kwargs))


# --------------------------------------------------------------------------------------------------------
# quantize_embeddings


def assert_same_quantized(got: Any, want: Any) -> None:
    assert type(got) is type(want)
    if isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_same_quantized(g, w)
        return
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("precision", ["float32", "int8", "uint8", "binary", "ubinary"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [1, 8, 13])
def test_quantize_matches_st(precision: str, dtype: Any, dim: int) -> None:
    emb = _random((120, dim), dtype, 31)
    emb[3] = 0.0
    calib = _random((50, dim), dtype, 32) * 2
    assert_same_quantized(ours.quantize_embeddings(emb, precision), st.quantize_embeddings(emb, precision))
    for kwargs in [{"calibration_embeddings": calib}, {"ranges": np.vstack([calib.min(0), calib.max(0)])}]:
        for x in (emb, emb[0], emb[:1]):  # a single embedding is fine once ranges are known
            assert_same_quantized(ours.quantize_embeddings(x, precision, **kwargs), st.quantize_embeddings(x, precision, **kwargs))


@pytest.mark.parametrize("precision", ["float32", "int8", "uint8", "binary", "ubinary"])
def test_quantize_input_kinds_match_st(precision: str) -> None:
    emb = _random((10, 9), np.float32, 33)
    for kind in ("list", "tensor", "list_of_arrays", "list_of_tensors"):
        assert_same_quantized(ours.quantize_embeddings(_convert(emb, kind), precision), st.quantize_embeddings(_convert(emb, kind), precision))
    bf16 = torch.from_numpy(emb).bfloat16()
    assert_same_quantized(ours.quantize_embeddings(bf16, precision), st.quantize_embeddings(bf16, precision))
    empty = np.zeros((0, 9), np.float32)
    assert_same_quantized(ours.quantize_embeddings(empty, precision), st.quantize_embeddings(empty, precision))
    assert ours.quantize_embeddings([], precision) == st.quantize_embeddings([], precision) == []


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_quantize_multi_vector_lists_match_st(precision: str) -> None:
    """A list of (tokens, dim) matrices shares one set of ranges; an empty document stays empty."""
    docs = [_random((3, 6), np.float32, 34), _random((5, 6), np.float32, 35), np.zeros((0, 6), np.float32)]
    assert_same_quantized(ours.quantize_embeddings(docs, precision), st.quantize_embeddings(docs, precision))
    calib = _random((20, 6), np.float32, 36)
    kwargs = {"calibration_embeddings": calib}
    assert_same_quantized(ours.quantize_embeddings(docs, precision, **kwargs), st.quantize_embeddings(docs, precision, **kwargs))


def test_quantize_warns_like_st_about_few_embeddings(caplog: pytest.LogCaptureFixture) -> None:
    emb = _random((5, 4), np.float32, 37)
    with caplog.at_level(logging.WARNING, logger="staticst.util"):
        ours.quantize_embeddings(emb, "int8")
        ours.quantize_embeddings(_random((100, 4), np.float32, 38), "int8")
    warnings = [r.getMessage() for r in caplog.records if r.name == "staticst.util"]
    assert len(warnings) == 1 and "based on 5 embeddings" in warnings[0]


def test_quantize_errors() -> None:
    emb = _random((6, 4), np.float32, 39)
    for bad in ["float16", "INT8", "xint8", None]:
        with pytest.raises((ValueError, AttributeError)):
            st.quantize_embeddings(emb, bad)
        with pytest.raises(ValueError, match=f"Precision {bad!r} is not supported.*'ubinary'"):
            ours.quantize_embeddings(emb, bad)
    for precision in ("int8", "uint8"):
        for single in (emb[0], emb[:1]):
            with pytest.raises(ValueError, match=f"Cannot compute {precision} quantization ranges from a single embedding"):
                st.quantize_embeddings(single, precision)
            with pytest.raises(ValueError, match=f"Cannot compute {precision} quantization ranges from a single embedding"):
                ours.quantize_embeddings(single, precision)
    quantized = st.quantize_embeddings(emb, "int8")
    with pytest.raises(Exception, match="must be float rather than int8 or uint8"):
        st.quantize_embeddings(quantized, "binary")
    with pytest.raises(ValueError, match="must be float rather than int8 or uint8, got int8"):
        ours.quantize_embeddings(quantized, "binary")
    with pytest.raises(ValueError):  # numpy's broadcast error inside ST
        st.quantize_embeddings(emb, "int8", ranges=np.zeros((2, 3)))
    with pytest.raises(ours.EmbeddingShapeError, match=r"ranges must have shape \(2, 4\).*got \(2, 3\)"):
        ours.quantize_embeddings(emb, "int8", ranges=np.zeros((2, 3)))
    with pytest.raises(ValueError):
        st.quantize_embeddings(emb, "uint8", calibration_embeddings=np.zeros((3, 3)))
    with pytest.raises(ours.EmbeddingShapeError, match=r"calibration_embeddings must be a non-empty \(n, 4\).*got shape \(3, 3\)"):
        ours.quantize_embeddings(emb, "uint8", calibration_embeddings=np.zeros((3, 3)))
    with pytest.raises(ours.EmbeddingShapeError, match=r"pass `ranges`"):
        ours.quantize_embeddings(np.ones((2, 3, 4)), "int8")  # ST computes meaningless ranges here
    with pytest.raises(ours.EmbeddingShapeError, match="scalar"):
        ours.quantize_embeddings(np.float32(1.0), "binary")


def test_quantize_ranges_as_a_list() -> None:
    """ST needs an ndarray for ranges; a nested list works in ours and gives the same result."""
    emb = _random((8, 4), np.float32, 40)
    ranges = np.vstack([emb.min(0), emb.max(0)])
    want = st.quantize_embeddings(emb, "uint8", ranges=ranges)
    assert_same_quantized(ours.quantize_embeddings(emb, "uint8", ranges=ranges.tolist()), want)


@FAST
@given(
    emb=hnp.arrays(hs.sampled_from(DTYPES), hs.tuples(hs.integers(2, 12), hs.integers(1, 20)), elements=hs.floats(-4, 4, width=16)),
    precision=hs.sampled_from(["int8", "uint8", "binary", "ubinary", "float32"]),
)
def test_quantize_property(emb: np.ndarray, precision: str) -> None:
    assert_same_quantized(ours.quantize_embeddings(emb, precision), st.quantize_embeddings(emb, precision))
