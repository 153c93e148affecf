"""``StaticSentenceTransformer.merge`` against sentence-transformers 6.3's ``SentenceTransformer.merge`` (mergekit).

The inputs are the real potion-base-2M (sentence-transformers layout) and two fine-tune stand-ins: copies whose
table is moved by seeded noise (sentence-transformers' ``merge`` is for "fine-tunes of a common ancestor"; no two
real fine-tunes of one static model are in shared/). Every merged table is compared with the one
sentence-transformers + mergekit produce from the same folders in the same run, and the merged model's vectors on
both backends with that model's ``encode``.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from staticst import StaticEmbedding, StaticSentenceTransformer
from staticst.merge_methods import METHODS, NOT_PORTED

TEXTS = ["I love pizza and sushi", "the cat sat on the mat", "I love 🍕 and 寿司 ✨ so much", "qwertyuiop zxcvb", ""]
ST_2M = "potion-base-2M-sentence-transformers"


@pytest.fixture(scope="module")
def folders(shared_model: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """potion-base-2M and two copies with seeded noise (std 0.05) added to the table."""
    source = shared_model(ST_2M)
    paths = [str(source)]
    for seed in (1, 2):
        copy = tmp_path_factory.mktemp(f"tuned{seed}") / "model"
        shutil.copytree(source, copy)
        tensors = load_file(copy / "model.safetensors")
        rng = np.random.default_rng(seed)
        save_file(
            {k: v + rng.normal(0, 0.05, v.shape).astype(v.dtype) for k, v in tensors.items()},
            copy / "model.safetensors",
        )
        paths.append(str(copy))
    return paths


def _reference(paths: list[str], method: str, **kwargs: Any) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer.merge(paths, method=method, **kwargs)


# (method, which of the three folders, keyword arguments); base_model given as an index into the folders
CASES: list[tuple[str, list[int], dict[str, Any]]] = [
    ("linear", [0, 1], {"parameters": {"weight": [0.6, 0.4]}}),
    ("linear", [0, 1, 2], {"parameters": {"weight": [0.2, 0.3, 0.5]}}),
    ("linear", [0, 1, 2], {}),
    ("linear", [1, 2], {"parameters": {"weight": {0: 2.0, 1: 1.0}, "normalize": False}, "out_dtype": "float16"}),
    ("slerp", [0, 1], {"parameters": {"t": 0.3}}),
    ("slerp", [1, 2], {}),
    ("slerp", [1, 2], {"base_model": 2, "parameters": {"t": 0.8}}),
    ("task_arithmetic", [1, 2], {"base_model": 0}),
    ("task_arithmetic", [0, 1, 2], {"base_model": 0, "parameters": {"weight": [0.7, 0.5], "lambda": 0.8}}),
    ("ties", [1, 2], {"base_model": 0, "parameters": {"density": 0.5}}),
    ("ties", [1, 2], {"base_model": 0, "parameters": {"density": [0.3, 0.6], "rescale": True, "weight": [1.0, 0.5]}}),
]


@pytest.mark.parametrize(("method", "which", "kwargs"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_merge_gives_sentence_transformers_table_and_vectors(
    backend: str, folders: list[str], method: str, which: list[int], kwargs: dict[str, Any]
) -> None:
    paths = [folders[i] for i in which]
    if "base_model" in kwargs:
        kwargs = {**kwargs, "base_model": folders[kwargs["base_model"]]}
    reference = _reference(paths, method, **kwargs)
    merged = StaticSentenceTransformer.merge(paths, method=method, **kwargs)
    expected = reference[0].embedding.weight.detach().numpy()
    got = merged[0].weight
    assert got.dtype == expected.dtype and got.shape == expected.shape
    if method == "ties":
        # the density cut keeps the largest |delta|; where equal magnitudes straddle the cut, mergekit's pick is
        # torch's unstable sort order and staticst's the lowest positions: only such entries may differ
        differ = got != expected
        assert differ.mean() < 1e-5, f"{differ.sum()} of {differ.size} entries differ"
    else:
        np.testing.assert_array_equal(got, expected)
    if kwargs.get("out_dtype") == "float16":
        # sentence-transformers pools a float16 table in float16 (and its normalisation of the empty text divides
        # 0 by 0 there); staticst pools it in float32: equal to float16 precision on the other texts
        np.testing.assert_allclose(
            merged.encode(TEXTS[:-1]), reference.encode(TEXTS[:-1]).astype(np.float32), atol=2e-3
        )
    else:
        np.testing.assert_allclose(merged.encode(TEXTS), reference.encode(TEXTS), atol=1e-6)
    assert merged.info()["backend"] == backend


def test_merged_model_keeps_the_first_models_settings_and_saves(folders: list[str], tmp_path: Path) -> None:
    first = StaticSentenceTransformer(folders[0], prompts={"query": "query: "}, similarity_fn_name="dot")
    first.max_seq_length = 7
    second = StaticSentenceTransformer(folders[1])
    before = first.encode(TEXTS)
    merged = StaticSentenceTransformer.merge([first, second], parameters={"weight": [0.5, 0.5]})
    assert merged.prompts == first.prompts and merged.prompts is not first.prompts
    assert merged.similarity_fn_name == "dot" and merged.max_seq_length == 7 and len(merged) == len(first) == 2
    assert merged.model_path is None and merged.model_card_data is not first.model_card_data
    np.testing.assert_array_equal(first.encode(TEXTS), before)  # the inputs are unchanged
    expected = (first[0].weight.astype(np.float64) + second[0].weight) / 2
    np.testing.assert_allclose(merged[0].weight, expected, atol=1e-7)
    # pickling (multi-process workers, deepcopy) keeps the merged table, not the first model's folder
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(merged))[0].weight, merged[0].weight)
    merged.save_pretrained(str(tmp_path / "out"))
    from sentence_transformers import SentenceTransformer

    reloaded = SentenceTransformer(str(tmp_path / "out"))
    assert reloaded.prompts == {**reloaded.prompts, "query": "query: "} and reloaded.similarity_fn_name == "dot"
    long_texts = [*TEXTS, "a much longer text that goes on for well over seven tokens in all"]
    np.testing.assert_allclose(reloaded.encode(long_texts), merged.encode(long_texts), atol=1e-6)
    np.testing.assert_allclose(
        StaticSentenceTransformer(str(tmp_path / "out")).encode(long_texts), merged.encode(long_texts), atol=0
    )


def test_a_base_given_among_the_models_is_one_input(folders: list[str]) -> None:
    by_path = StaticSentenceTransformer.merge(folders, "task_arithmetic", base_model=folders[0])
    models = [StaticSentenceTransformer(p) for p in folders]
    by_object = StaticSentenceTransformer.merge(models, "task_arithmetic", base_model=models[0])
    reference = _reference(folders, "task_arithmetic", base_model=folders[0])
    np.testing.assert_array_equal(by_path[0].weight, reference[0].embedding.weight.detach().numpy())
    np.testing.assert_array_equal(by_object[0].weight, by_path[0].weight)


def _retokenized(folder: str, tmp_path: Path) -> str:
    """A copy whose vocabulary renames one token (same size, so only the vocabulary check can refuse it)."""
    copy = tmp_path / "renamed"
    shutil.copytree(folder, copy)
    data = json.loads((copy / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    vocab["zzzrenamed"] = vocab.pop("cat")
    (copy / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    return str(copy)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda f, t: StaticSentenceTransformer.merge([f[0]]), ValueError, "At least two models"),
        (lambda f, t: StaticSentenceTransformer.merge(f[0]), ValueError, "At least two models"),
        (
            lambda f, t: StaticSentenceTransformer.merge(f[:2], "frankenmerge"),
            ValueError,
            "unknown merge method 'frankenmerge'",
        ),
        (
            lambda f, t: StaticSentenceTransformer.merge(f[:2], "dare_ties", base_model=f[0]),
            ValueError,
            "SentenceTransformer.merge runs it",
        ),
        (lambda f, t: StaticSentenceTransformer.merge(f[:2], base_model=f[0]), ValueError, "does not use a base_model"),
        (lambda f, t: StaticSentenceTransformer.merge(f[:2], "ties"), ValueError, "requires a base_model"),
        (lambda f, t: StaticSentenceTransformer.merge(f, "slerp"), ValueError, "at most 2 models"),
        (
            lambda f, t: StaticSentenceTransformer.merge(f[:2], parameters={"t": 0.5}),
            TypeError,
            "Unknown parameter(s) for linear: t",
        ),
        (
            lambda f, t: StaticSentenceTransformer.merge(f[:2], parameters={"weight": [1.0]}),
            ValueError,
            "expects 2 values",
        ),
        (
            lambda f, t: StaticSentenceTransformer.merge(f[:2], parameters={"weight": "heavy"}),
            TypeError,
            "finite number, got 'heavy'",
        ),
        (
            lambda f, t: StaticSentenceTransformer.merge(f[:2], parameters={"weight": [1.0, -1.0]}),
            ValueError,
            "NaN or Inf",
        ),
        (lambda f, t: StaticSentenceTransformer.merge(f[:2], dtype="bfloat16"), ValueError, "bfloat16"),
        (lambda f, t: StaticSentenceTransformer.merge(f[:2], out_dtype="int8"), ValueError, "got 'int8'"),
        (lambda f, t: StaticSentenceTransformer.merge([f[0], 3]), TypeError, "got int"),
        (
            lambda f, t: StaticSentenceTransformer.merge([f[0], _retokenized(f[0], t)]),
            ValueError,
            "Tokenizer vocabulary",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_merges_are_refused_with_the_reason(
    folders: list[str], tmp_path: Path, call: Any, error: type, message: str
) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(folders, tmp_path)


def test_models_that_do_not_fit_are_refused(shared_model: Callable[[str], Path], folders: list[str]) -> None:
    with pytest.raises(ValueError, match=r"different configuration in model 1:\n  model 0: EmbeddingBag\(29528, 64\)"):
        StaticSentenceTransformer.merge([folders[0], str(shared_model("potion-base-8M"))])
    second = StaticSentenceTransformer(folders[1])
    quantized = StaticSentenceTransformer(
        modules=[StaticEmbedding(second.tokenizer, embedding_weights=(second[0].weight * 100).astype(np.int8))]
    )
    with pytest.raises(ValueError, match="Model 0 has a table of int8 .a quantized model.: merging quantized models"):
        StaticSentenceTransformer.merge([quantized, quantized])
    unnormalized = StaticSentenceTransformer(
        modules=[StaticEmbedding(second.tokenizer, embedding_weights=second[0].weight)]
    )
    with pytest.raises(ValueError, match="different module structure from model 0"):
        StaticSentenceTransformer.merge([folders[0], unnormalized])


def test_every_ported_method_is_one_sentence_transformers_accepts() -> None:
    from mergekit.merge_methods.registry import registered_methods

    offered = {method.spec.name for method in registered_methods()}
    assert set(METHODS) <= offered and set(NOT_PORTED) <= offered
    assert offered - {"passthrough"} <= set(METHODS) | set(NOT_PORTED)  # each is run or refused by name


def test_merge_does_not_import_torch(folders: list[str]) -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # an environment without torch\n"
        "from staticst import StaticSentenceTransformer as S\n"
        f"m = S.merge({folders[:2]!r}, 'slerp')\n"
        "print(m.encode(['a cat']).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1, 64)"
