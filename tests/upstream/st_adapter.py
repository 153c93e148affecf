"""Adapter conftest for sentence-transformers' own tests (copied by run.py as ``tests/sentence_transformer/conftest.py``
and ``tests/util/conftest.py`` beside the unmodified upstream files; upstream's ``tests/conftest.py`` still applies).

Every test runs under two implementations, in the same process:

* ``[sentence-transformers]``: the real library (the control), untouched;
* ``[staticst]``: the test module's ``SentenceTransformer``, ``StaticEmbedding``, ``Normalize`` and ``util`` (and,
  in the util tests, each function ``staticst.util`` has) are staticst's, as for a user who changed the import.
  ``staticst.util`` returns numpy where sentence-transformers returns tensors; the assertions are written in
  torch, so its results are handed back as tensors.

Models come from the names the tests use, through the offline Hub cache ``run.py`` builds (``run.HUB``): the same
folder for both implementations. The model fixtures are upstream's (a ``deepcopy`` of one session model per
implementation), loaded by each implementation's class. A test that needs a transformer runs on the control only,
with the shared transformer (all-MiniLM-L6-v2) under the names it loads (``run.HUB_TRANSFORMER``).

What is deselected, control-only, torch-only or failing on the control too, and why: :data:`LISTS` (applied and
checked by ``_harness``; also in docs/compatibility.md).
"""

from __future__ import annotations

import copy
import os
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _harness
import numpy as np
import pytest

SHARED = Path(os.environ["STATICST_SHARED_DIR"]) / "models"
IMPLS = ("sentence-transformers", "staticst")
STSB = "sentence-transformers-testing/stsb-bert-tiny-safetensors"

_HUB = "loads a model from the Hugging Face Hub that shared/ does not hold (no network here)"
_CUDA = "needs CUDA"
_PEFT = "PEFT adapters on a transformer (peft is not installed; a static model has no attention layers to adapt)"
_TRAIN = "training (SentenceTransformerTrainer, losses): staticst does not train"
_TRANSFORMER = "needs a transformer (its modules, tokenizer internals or outputs): the control runs it on all-MiniLM-L6-v2"
_128 = (
    "hard-codes stsb-bert-tiny's 128 dimensions; the shared static model its name maps to has 64 (the control "
    "fails the same shape assertion)"
)
_768 = "hard-codes paraphrase-distilroberta-base-v1's outputs (768 dimensions, the sums of its vectors), not in shared/"
_UNASKED = (
    "torch tensors the caller did not ask for: with output_value=None and the default convert_to_numpy=True, "
    "sentence-transformers' dicts hold tensors (its forward pass is torch); staticst's hold numpy arrays and give "
    "tensors only with convert_to_tensor=True or convert_to_numpy=False (it never imports torch unasked)"
)
_NO_UTIL = "a function staticst.util does not have (multi-vector MaxSim, sparse tensors, sentence-transformers internals)"

LISTS = _harness.Lists(
    deselect={
        "test_model.py::test_load_with_safetensors[*]": _HUB + " (into a fresh cache folder)",
        "test_model.py::test_load_with_pytorch_bin[*]": _HUB + " (a pytorch_model.bin checkpoint)",
        "test_model.py::test_load_with_revision[*]": _HUB + " (two older revisions)",
        "test_model.py::test_to[*]": _CUDA,
        "test_model.py::test_torch_dtype[*]": _CUDA,
        "test_model.py::test_load_with_torch_dtype[*]": _CUDA,
        "test_model.py::test_encode_fp16[*]": _CUDA,
        "test_model.py::test_load_checkpoint_with_peft_and_lora[*]": "skipped upstream (a peft bug); " + _PEFT,
        "test_model.py::test_multiple_adapters[*]": _PEFT,
        "test_model.py::test_load_adapter_with_revision[*]": _PEFT,
        "test_model.py::test_safetensors[*]": _HUB + " (average_word_embeddings_levy_dependency) and transformer-only torch modules",
        "test_model.py::test_clip[*]": _HUB + " (CLIP)",
        "test_model.py::test_default_pooling_mode*": _HUB + " (tiny random Llama / BERT LM-head checkpoints)",
        "test_model.py::test_conversion_ignores_*": _HUB + " (a CrossEncoder / SparseEncoder checkpoint)",
        "test_static_embedding.py::test_from_distillation[*]": "skipped upstream under transformers >= 5; distillation is issue 23",
        "test_multi_process.py::test_multi_process_output_tensors_two_devices[*]": _CUDA,
        "test_model_card.py::test_model_card_base[*]": _TRAIN,
        "test_model_card.py::test_model_card_set_transform[*]": _TRAIN,
        "test_retrieval.py::test_community_detection_gpu_support[*]": _CUDA,
        "test_similarity.py::test_pairwise_angle_sim_even_and_odd_sparse_embeddings[*]": _HUB + " (a SPLADE model)",
        "test_similarity.py::test_maxsim_moves_queries_to_the_documents_device[*]": _CUDA,
        "test_similarity.py::test_maxsim_numpy_documents_follow_the_queries_device[*]": _CUDA,
        "test_similarity.py::test_maxsim_moves_masks_onto_the_scoring_device[*]": _CUDA,
        "test_similarity.py::test_maxsim_device_is_a_pure_compute_knob[*]": _CUDA,
        "test_similarity.py::test_maxsim_device_bounds_residency_by_element_budget[*]": _CUDA,
    },
    control_only={
        "test_model.py::test_prompt_output_value_None[*]": _TRANSFORMER + " (a BERT's output keys)",
        "test_model.py::test_prompt_length_calculation[*]": _TRANSFORMER + " (a transformers tokenizer's internals)",
        "test_model.py::test_load_with_model_kwargs[*]": _TRANSFORMER + " (patches models.Transformer)",
        "test_model.py::test_transformers_model_property[*]": _TRANSFORMER,
        "test_model.py::test_router_transformers_model_property[*]": _TRANSFORMER,
        "test_compute_embeddings.py::test_encode_token_embeddings[*]": _TRANSFORMER + " (contextual token embeddings)",
        "test_compute_embeddings.py::test_encode_single_sentences[*]": _TRANSFORMER + " (paraphrase-distilroberta-base-v1's outputs)",
        "test_compute_embeddings.py::test_encode_normalize[*]": _TRANSFORMER + " (paraphrase-distilroberta-base-v1's 768 dimensions)",
        "test_compute_embeddings.py::test_encode_tuple_sentences[*]": _TRANSFORMER + " (paraphrase-distilroberta-base-v1's outputs)",
        "test_similarity.py::test_*maxsim*": _NO_UTIL,
        "test_similarity.py::test_*sparse*": _NO_UTIL,
        "test_similarity.py::test_chunk_ranges_budget_packing[*]": _NO_UTIL,
        "test_similarity.py::test_empty_document_score_survives_the_losses_that_consume_it[*]": _NO_UTIL,
        "test_tensor.py::test_select_max_active_dims*": _NO_UTIL,
        "test_tensor.py::test_convert_to_tensor*": _NO_UTIL,
        "test_tensor.py::test_scoring_does_not_mutate_numpy_inputs[*-maxsim]": _NO_UTIL,
        "test_retrieval.py::test_paraphrase_mining[*]": _TRANSFORMER + " (all-MiniLM-L6-v2, loaded by name)",
    },
    torch_only={
        "test_compute_embeddings.py::test_encode_routes_through_module_call[*]": (
            "registers a torch forward hook (nn.Module.register_forward_hook) and expects encode to call the torch module"
        ),
        "test_model.py::test_encode_truncate[*-None-*-True-False-sentences1]": _UNASKED,
        "test_multi_process.py::test_multi_process_output_values[*]": _UNASKED,
    },
    control_fails={
        "test_multi_process.py::test_encode_multi_process[*]": _128,
        "test_multi_process.py::test_multi_process_with_prompt[*]": _128,
        "test_multi_process.py::test_multi_process_with_one_single_string[*-token_embeddings-*]": (
            "a static model has no contextual token embeddings: sentence-transformers' StaticEmbedding raises "
            "KeyError('token_embeddings'), staticst a ValueError naming the alternatives"
        ),
        "test_compute_embeddings.py::test_encode_single_sentences[*]": _768,
        "test_compute_embeddings.py::test_encode_normalize[*]": _768,
        "test_compute_embeddings.py::test_encode_tuple_sentences[*]": _768,
        "test_model.py::test_encode_per_call_processing_kwargs[*]": (
            "processing_kwargs configure a Transformer module; StaticEmbedding.preprocess ignores them, so the "
            "truncated and full encodings are equal"
        ),
        "test_model.py::test_get_model_kwargs[*]": (
            "on a static model the Normalize module's forward takes no extra keyword argument (a TypeError on "
            "encode(foo=..., bar=...)); the test then puts a torch Router in model[1]"
        ),
        "test_model_card.py::test_model_card_renders_query_and_document_lengths[*]": (
            "a static model's max_seq_length is inf, which the card does not render as the test expects"
        ),
    },
)  # fmt: skip


def _impl_of(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    return str(callspec.params.get("st_impl", "sentence-transformers")) if callspec is not None else "sentence-transformers"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _harness.apply_lists(config, items, LISTS, _impl_of)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "st_impl" in metafunc.fixturenames:
        metafunc.parametrize("st_impl", IMPLS, indirect=True)


def _as_torch(value: Any) -> Any:
    import torch

    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return torch.tensor(value.item())
    return value


#: The ``staticst.util`` functions whose sentence-transformers counterparts return tensors (staticst: numpy).
#: The others return what sentence-transformers returns (lists, numpy arrays) and are handed on unchanged.
TENSOR_RESULTS = {
    "cos_sim", "dot_score", "euclidean_sim", "manhattan_sim", "pytorch_cos_sim", "normalize_embeddings",
    "truncate_embeddings", "pairwise_angle_sim", "pairwise_cos_sim", "pairwise_dot_score", "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
}  # fmt: skip
#: Functions that return a similarity function (whose results are tensors in sentence-transformers).
FUNCTION_RESULTS = {"similarity_fn", "pairwise_similarity_fn"}


def _torch_facing(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``fn`` from ``staticst.util``, its numpy results handed back as tensors where sentence-transformers returns them."""
    if name in FUNCTION_RESULTS:

        def make(*args: Any, **kwargs: Any) -> Any:
            return _torch_facing(fn(*args, **kwargs), "cos_sim")

        return make
    if name not in TENSOR_RESULTS:
        return fn

    def call(*args: Any, **kwargs: Any) -> Any:
        return _as_torch(fn(*args, **kwargs))

    call.__name__ = name
    return call


class _TorchFacingUtil(types.ModuleType):
    """``staticst.util`` with numpy results handed back as tensors."""

    def __init__(self) -> None:
        super().__init__("staticst_util_as_torch")

    def __getattr__(self, name: str) -> Callable[..., Any]:
        import staticst.util

        return _torch_facing(getattr(staticst.util, name), name)  # a missing function fails the test: staticst lacks it


def _staticst_names() -> dict[str, Any]:
    import staticst
    import staticst.util

    names: dict[str, Any] = {
        "SentenceTransformer": staticst.StaticSentenceTransformer,
        "StaticEmbedding": staticst.StaticEmbedding,
        "Normalize": staticst.Normalize,
        "util": _TorchFacingUtil(),
        "similarity": _TorchFacingUtil(),
    }
    names.update({name: _torch_facing(getattr(staticst.util, name), name) for name in staticst.util.__all__ if name[0].islower()})
    return names


@pytest.fixture(autouse=True)
def st_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The implementation a test runs under; for staticst, the module's names are staticst's."""
    impl = str(getattr(request, "param", "sentence-transformers"))
    if _needs_transformer(request):  # a name loads a transformer here (run.HUB_TRANSFORMER)
        import huggingface_hub.constants

        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", os.environ["STATICST_UPSTREAM_TRANSFORMER_HUB"])
    if impl == "staticst":
        module = request.module
        for name, value in _staticst_names().items():
            if hasattr(module, name):
                monkeypatch.setattr(module, name, value)
    yield impl


_SESSION: dict[tuple[str, str, str], Any] = {}


def _session_model(impl: str, name: str) -> Any:
    """One model per implementation and name for the session (upstream's session fixtures), loaded by name."""
    import huggingface_hub.constants

    key = (impl, name, str(huggingface_hub.constants.HF_HUB_CACHE))
    if key not in _SESSION:
        if impl == "staticst":
            from staticst import StaticSentenceTransformer

            model: Any = StaticSentenceTransformer(name)
        else:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(name)
        model.model_card_data.generate_widget_examples = False  # as upstream's conftest
        _SESSION[key] = model
    return _SESSION[key]


def _needs_transformer(request: pytest.FixtureRequest) -> bool:
    name = _harness.key(request.node)
    return any(LISTS.control_only[p].startswith(_TRANSFORMER) for p in _harness.matches(name, LISTS.control_only))


@pytest.fixture
def stsb_bert_tiny_model(st_impl: str) -> Any:
    """Upstream's fixture: a deepcopy of the session model (the transformer in a control-only transformer test)."""
    return copy.deepcopy(_session_model(st_impl, STSB))


@pytest.fixture
def paraphrase_distilroberta_base_v1_model(request: pytest.FixtureRequest, st_impl: str) -> Any:
    """Upstream's fixture, for the implementation under test."""
    return copy.deepcopy(_session_model(st_impl, "sentence-transformers/paraphrase-distilroberta-base-v1"))


@pytest.fixture
def static_embedding(tokenizer: Any, embedding_weights: np.ndarray, st_impl: str) -> Any:
    """Upstream's fixture, built with the implementation's ``StaticEmbedding``."""
    if st_impl == "staticst":
        from staticst import StaticEmbedding
    else:
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding  # type: ignore[assignment]
    return StaticEmbedding(tokenizer, embedding_weights=embedding_weights)


@pytest.fixture
def static_embedding_model(static_embedding: Any, st_impl: str) -> Any:
    """Upstream's fixture, built with the implementation's model class."""
    if st_impl == "staticst":
        from staticst import StaticSentenceTransformer as SentenceTransformer
    else:
        from sentence_transformers import SentenceTransformer  # type: ignore[assignment]
    model = SentenceTransformer(modules=[static_embedding])
    model.model_card_data.generate_widget_examples = False
    return model
