"""Adapter conftest for sentence-transformers' own tests (copied next to them as ``conftest.py``; see run.py).

The tests take their model from the fixtures ``stsb_bert_tiny_model`` / ``paraphrase_distilroberta_base_v1_model``,
defined in sentence-transformers' own conftest (which no sdist ships) as a per-test ``deepcopy`` of a
session-wide model. Here each is the shared static model ``potion-base-2M-sentence-transformers``, loaded
by ``staticst.StaticSentenceTransformer`` (``[staticst]``) or, as the control, by the real
``sentence_transformers.SentenceTransformer`` on the same folder (``[sentence-transformers]``): a test that
fails on the control too does not apply to a static model (it hard-codes the transformer checkpoint).

Loading: tests in :data:`READ_ONLY` share one instance per implementation for the whole session (a
teardown check fails the test if it changed the model's settings after all); tests in :data:`PER_TEST_FUNCTION`
set the same state at the start of every parametrization, so they share one instance per test function;
every other test gets a freshly loaded model (as upstream's deepcopy, and cheaper).

``test_multi_process.py`` runs on staticst only: the control would spawn torch workers, about 30 s per
pool on two busy cores, for some twenty pools. ``STATICST_UPSTREAM_MP_CONTROL=1`` adds the control there.

``test_util.py`` runs its functions from ``staticst.util`` (``[util-staticst]``; numpy results handed back
as tensors, since the assertions are written in torch) and, as the control, from ``sentence_transformers.util``.

What is deselected or expected to fail, and why: :data:`DESELECT` and :data:`XFAIL` (applied and checked by
``_harness``; also in docs/compatibility.md).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _harness
import numpy as np
import pytest

SHARED = Path(os.environ.get("STATICST_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared")) / "models"
MODEL = "potion-base-2M-sentence-transformers"  # the sentence-transformers layout: ST loads it as the control
IMPLS = ("staticst", "sentence-transformers")
MODEL_FIXTURES = ("stsb_bert_tiny_model", "paraphrase_distilroberta_base_v1_model")
MP_CONTROL = os.environ.get("STATICST_UPSTREAM_MP_CONTROL") == "1"

#: Tests that only read the model (encode, similarity, save): one instance per implementation per session.
READ_ONLY = {
    "test_encode_token_embeddings", "test_encode_single_sentences", "test_encode_normalize", "test_encode_tuple_sentences",
    "test_safe_serialization", "test_prompt_output_value_None", "test_encode_quantization", "test_override_config_versions",
    "test_empty_encode", "test_encode_advanced_parameters", "test_encode_with_dataset_column",
    "test_multi_process_encode_same_as_standard_encode", "test_multi_process_pool", "test_multi_process_with_args",
    "test_multi_process_output_values", "test_multi_process_chunk_size", "test_multi_process_with_empty_texts",
    "test_multi_process_with_one_single_string", "test_multi_process_more_workers_than_texts",
    "test_multi_process_with_large_chunk_size",
}  # fmt: skip
#: Tests that set the same prompts / similarity function first in every parametrization: one instance per test.
PER_TEST_FUNCTION = {"test_encode_query", "test_encode_document", "test_similarity_score", "test_encode_multi_process"}

_HUB = "downloads a transformer checkpoint from the Hugging Face Hub (no network here)"
_CUDA = "needs CUDA"
_PEFT = "PEFT adapters on a transformers model (a static model has no attention layers to adapt)"
_MODULES = "builds transformer-only torch modules (CNN, LSTM, Dense, LayerNorm, WeightedLayerPooling) and downloads a word-embedding model from the Hub"
DESELECT: dict[str, str] = {
    "test_sentence_transformer.py::test_load_with_safetensors": _HUB,
    "test_sentence_transformer.py::test_push_to_hub": _HUB + "; staticst's push_to_hub calls are checked against ST in tests/test_compat_util_hub.py",
    "test_sentence_transformer.py::test_load_with_revision": _HUB,
    "test_sentence_transformer.py::test_save_load_prompts": _HUB,
    "test_sentence_transformer.py::test_load_with_model_kwargs": _HUB + " (and patches models.Transformer)",
    "test_sentence_transformer.py::test_encode_truncate[*]": _HUB + " (its second half loads stsb-bert-tiny by name)",
    "test_sentence_transformer.py::test_load_adapter_with_revision": _HUB + "; " + _PEFT,
    "test_sentence_transformer.py::test_clip": _HUB + " (CLIPModel)",
    "test_sentence_transformer.py::test_to": _CUDA + "; " + _HUB,
    "test_sentence_transformer.py::test_torch_dtype[*]": _CUDA + "; " + _HUB,
    "test_sentence_transformer.py::test_load_with_torch_dtype[*]": _CUDA,
    "test_sentence_transformer.py::test_encode_fp16[*]": _CUDA,
    "test_sentence_transformer.py::test_load_checkpoint_with_peft_and_lora[*]": _PEFT,
    "test_sentence_transformer.py::test_multiple_adapters[*]": _PEFT + "; " + _HUB,
    "test_sentence_transformer.py::test_safetensors[*]": _MODULES,
    "test_multi_process.py::test_multi_process_output_tensors_two_devices[*]": _CUDA,
    "test_util.py::test_paraphrase_mining[*]": _HUB + " (all-MiniLM-L6-v2)",
    "test_util.py::test_community_detection_gpu_support[*]": _CUDA,
    "test_util.py::test_mine_hard_negatives_with_prompt[*]": "training-data mining (datasets.Dataset in and out): not in staticst.util's scope",
}  # fmt: skip

_CONTROL_TOO = " (the control fails the same way)"
_768 = "hard-codes paraphrase-distilroberta-base-v1's output (768 dimensions, the sums of its vectors)" + _CONTROL_TOO
_128 = "hard-codes stsb-bert-tiny's 128 dimensions (the shared static model has 64)"
_TOKEN_EMBEDDINGS = (
    "output_value='token_embeddings': a static model has no contextual token embeddings (ST's StaticEmbedding raises "
    "KeyError, staticst a ValueError naming the alternatives)"
)
_SENTENCES_KWARG = (
    "a 5.x API that 6.2 removed: asserts that encode was called with sentences=...; 6.2's encode_query / "
    "encode_document pass inputs= (as staticst does)" + _CONTROL_TOO
)
_MULTI_VECTOR = (
    "6.2's SimilarityFunction.possible_values() includes the multi-vector 'maxsim' / 'meanmaxsim', which "
    "SentenceTransformer itself refuses with a ValueError (as staticst does)" + _CONTROL_TOO
)
XFAIL: dict[str, str] = {
    "test_compute_embeddings.py::test_encode_single_sentences[*]": _768,
    "test_compute_embeddings.py::test_encode_normalize[*]": _768,
    "test_compute_embeddings.py::test_encode_tuple_sentences[*]": _768,
    "test_compute_embeddings.py::test_encode_token_embeddings[*]": _TOKEN_EMBEDDINGS + _CONTROL_TOO,
    "test_multi_process.py::test_encode_multi_process[*]": _128,
    "test_multi_process.py::test_multi_process_with_prompt[*]": _128,
    "test_multi_process.py::test_multi_process_with_one_single_string[*-token_embeddings-*]": _TOKEN_EMBEDDINGS,
    "test_multi_process.py::test_multi_process_output_values[staticst]": (
        "torch types by design: staticst's output_value=None dicts hold numpy arrays (the test calls .cpu() on them)"
    ),
    "test_sentence_transformer.py::test_prompts[*]": (
        "expects 5.3's log message ('Encode with either a `prompt`, ...'); 6.2 logs 'Provide either a `prompt`, ...', "
        "as staticst does" + _CONTROL_TOO
    ),
    "test_sentence_transformer.py::test_prompt_output_value_None[*]": (
        "expects a BERT's outputs (token_type_ids, attention_mask, token_embeddings); a static model's are input_ids, "
        "offsets, sentence_embedding" + _CONTROL_TOO
    ),
    "test_sentence_transformer.py::test_prompt_length_calculation[*]": (
        "edits a transformers tokenizer's internals (cls_token_id, _tokenizer.post_processor); a static model's "
        "tokenizer is a tokenizers.Tokenizer" + _CONTROL_TOO
    ),
    "test_sentence_transformer.py::test_load_local_without_normalize_directory[*]": (
        "torch module surgery: adds a Normalize module with nn.Module.add_module (staticst's modules are read-only "
        "views, by design); on the control, 6.2 writes 2_Normalize/config.json, so the test's os.rmdir fails"
    ),
    "test_sentence_transformer.py::test_override_config_versions[*]": (
        "reads _model_config, a 5.x attribute that 6.2 removed, expecting bert-tiny's saved version 2.2.2" + _CONTROL_TOO
    ),
    "test_sentence_transformer.py::test_similarity_score[*-maxsim]": _MULTI_VECTOR,
    "test_sentence_transformer.py::test_similarity_score[*-meanmaxsim]": _MULTI_VECTOR,
    "test_sentence_transformer.py::test_encode_query[*]": _SENTENCES_KWARG,
    "test_sentence_transformer.py::test_encode_document[*]": _SENTENCES_KWARG,
    "test_sentence_transformer.py::test_get_model_kwargs[*]": (
        "torch module surgery: sets forward_kwargs on model[0] / model[1] and puts a torch Router in model[1] "
        "(staticst's modules are read-only views, by design); the control fails too (6.2's Router adds its own kwargs)"
    ),
}  # fmt: skip

# sentence-transformers' tests import ``tests.utils.is_ci``, a helper its sdist does not ship.
if "tests.utils" not in sys.modules:
    _tests = sys.modules.setdefault("tests", types.ModuleType("tests"))
    _utils = types.ModuleType("tests.utils")
    _utils.is_ci = lambda: True  # type: ignore[attr-defined]  # skip what upstream skips in its own CI
    sys.modules["tests.utils"] = _utils
    _tests.utils = _utils  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: upstream marker (run here)")
    config.addinivalue_line("markers", "custom: upstream marker")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _harness.apply_lists(config, items, DESELECT, XFAIL)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.endswith("test_util"):
        metafunc.parametrize("util_impl", IMPLS, indirect=True, ids=[f"util-{i}" for i in IMPLS])
    elif any(name in metafunc.fixturenames for name in MODEL_FIXTURES):
        impls = IMPLS if MP_CONTROL or not metafunc.module.__name__.endswith("test_multi_process") else IMPLS[:1]
        metafunc.parametrize("st_impl", impls, indirect=True)


@pytest.fixture
def st_impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _load(impl: str) -> Any:
    folder = SHARED / MODEL
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing: set STATICST_SHARED_DIR to the folder holding models/.")
    if impl == "staticst":
        from staticst import StaticSentenceTransformer

        model: Any = StaticSentenceTransformer(str(folder))
    else:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(folder), device="cpu")
    card = getattr(model, "model_card_data", None)
    if hasattr(card, "generate_widget_examples"):  # as upstream's conftest
        card.generate_widget_examples = False
    return model


def _settings(model: Any) -> tuple[Any, ...]:
    """What a read-only test must leave as it found it."""
    return (
        dict(model.prompts), model.default_prompt_name, model.similarity_fn_name, model.truncate_dim,
        model.max_seq_length, len(model), "encode" in vars(model), "tokenize" in vars(model),
    )  # fmt: skip


_SHARED: dict[str, Any] = {}  # impl -> the session's read-only instance
_PER_FUNCTION: dict[str, tuple[str, Any]] = {}  # impl -> (test function, its instance)


def _model(request: pytest.FixtureRequest, impl: str) -> Iterator[Any]:
    name = request.node.originalname
    if name in READ_ONLY:
        if impl not in _SHARED:
            _SHARED[impl] = _load(impl)
        model = _SHARED[impl]
        before = _settings(model)
        yield model
        if _settings(model) != before:
            del _SHARED[impl]
            raise AssertionError(f"{name} changed the shared model ({before} -> {_settings(model)}): move it out of READ_ONLY")
    elif name in PER_TEST_FUNCTION:
        function = f"{request.node.module.__name__}::{name}"
        if _PER_FUNCTION.get(impl, ("", None))[0] != function:
            _PER_FUNCTION[impl] = (function, _load(impl))
        yield _PER_FUNCTION[impl][1]
    else:
        yield _load(impl)


@pytest.fixture
def stsb_bert_tiny_model(request: pytest.FixtureRequest, st_impl: str) -> Iterator[Any]:
    yield from _model(request, st_impl)


@pytest.fixture
def paraphrase_distilroberta_base_v1_model(request: pytest.FixtureRequest, st_impl: str) -> Iterator[Any]:
    yield from _model(request, st_impl)


def _as_torch(value: Any) -> Any:
    import torch

    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return torch.tensor(value.item())
    return value


class _TorchFacingUtil(types.ModuleType):
    """``staticst.util`` with numpy results handed back as tensors (the upstream assertions use torch)."""

    def __init__(self) -> None:
        super().__init__("staticst_util_as_torch")

    def __getattr__(self, name: str) -> Callable[..., Any]:
        import staticst.util

        fn = getattr(staticst.util, name)  # a missing function fails the test: it is missing in staticst

        def call(*args: Any, **kwargs: Any) -> Any:
            return _as_torch(fn(*args, **kwargs))

        return call


@pytest.fixture(autouse=True)
def util_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    impl = getattr(request, "param", None)  # parametrized in test_util.py only
    if impl == "staticst":
        shim = _TorchFacingUtil()
        monkeypatch.setattr(request.module, "util", shim)
        monkeypatch.setattr(request.module, "community_detection", shim.community_detection)
    yield impl
