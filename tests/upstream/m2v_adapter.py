"""Adapter conftest for model2vec 0.10's own tests (copied by run.py as ``tests/conftest.py``).

run.py runs the suite twice, in two pytest processes: ``STATICST_M2V_IMPL=model2vec`` runs it on the real
library (the control); ``STATICST_M2V_IMPL=staticst`` swaps ``staticst.StaticModel`` in for
``model2vec.model.StaticModel`` *before* model2vec's own modules import it, so every model the tests build or
load is staticst's, including the ones model2vec's ``StaticModelPipeline`` (``model2vec.inference``) and its
trainers (``model2vec.train``) make and use.

model2vec's conftest builds fixtures for its whole suite (distillation, ONNX: transformers models and the
``skeletoken`` package). This one provides, unchanged, the fixtures that ``test_model.py``, ``test_persistence.py``,
``test_inference.py`` and the pretrained regression use (``mock_tokenizer``, ``mock_vectors``, ``mock_config``,
``mock_static_model``, the trained pipelines).

The pretrained regression loads its model through ``pretrained_model_metrics.load_static_model`` (a Hub
download); here that helper loads the shared copy of ``minishlab/potion-base-8M`` with the implementation's
class. Its MTEB STS metric needs datasets from the Hub, so that test is deselected (``distill_metrics`` is
stubbed). The other published models are not in shared/ and are deselected by name.

What is deselected or torch-only, and why: :data:`LISTS` (applied and checked by ``_harness``; also in
docs/compatibility.md).
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import _harness
import model2vec
import model2vec.model
import numpy as np
import pytest
from tokenizers import Tokenizer
from tokenizers.models import BPE, Unigram, WordPiece
from tokenizers.pre_tokenizers import Whitespace

import staticst

IMPL = os.environ.get("STATICST_M2V_IMPL", "staticst")
if IMPL not in ("model2vec", "staticst"):
    raise pytest.UsageError(f"STATICST_M2V_IMPL={IMPL!r}: use 'model2vec' (the control) or 'staticst'")
if IMPL == "staticst":  # before model2vec.inference / model2vec.train import it
    model2vec.StaticModel = staticst.StaticModel  # type: ignore[misc]
    model2vec.model.StaticModel = staticst.StaticModel  # type: ignore[misc]
StaticModel: Any = model2vec.model.StaticModel

SHARED = Path(os.environ.get("STATICST_SHARED_DIR", Path(__file__).resolve().parents[4] / "shared")) / "models"
TEST_TOKENIZER = Path(__file__).resolve().parent / "data" / "test_tokenizer"
SHARED_PRETRAINED = {"minishlab/potion-base-8m": "potion-base-8M"}

_HUB_MODEL = "a published model that is not in shared/ (a Hub download; no network here)"
LISTS = _harness.Lists(
    deselect={
        "test_persistence.py::test_silent_tqdm": "tests model2vec.persistence.utils.SilentTqdm, a model2vec helper: no staticst code runs",
        "test_persistence.py::test_maybe_get_cached_model_path": "tests model2vec.persistence.hf.maybe_get_cached_model_path, a model2vec helper: no staticst code runs",
        "test_pretrained_model_regression.py::test_mteb_sts_scores_match_baseline[*]": "MTEB STS task data comes from the Hub (no network here)",
        "test_pretrained_model_regression.py::*[minishlab/potion-base-32m]": _HUB_MODEL,
        "test_pretrained_model_regression.py::*[minishlab/potion-retrieval-32m]": _HUB_MODEL,
        "test_pretrained_model_regression.py::*[minishlab/potion-multilingual-128m]": _HUB_MODEL,
    },
    # not torch, but the same nature: the test patches a private function of model2vec's own module
    # (model2vec.persistence.persistence.maybe_get_cached_model_path) and counts its calls; staticst resolves the
    # Hub cache with huggingface_hub itself and never imports model2vec (the snapshot_download calls the test also
    # checks are made: it fails at the call count only)
    torch_only={
        "test_persistence.py::test_local_loading": "counts calls to model2vec's private maybe_get_cached_model_path",
    },
)  # fmt: skip


def _impl_of(item: pytest.Item) -> str:
    return IMPL


# The pretrained regression imports its MTEB helper from a module the sdist does not ship.
_distill = types.ModuleType("tests.integration.distill_metrics")
_distill.compute_mteb_sts_scores = lambda model: {}  # type: ignore[attr-defined]  # its test is deselected
sys.modules["tests.integration.distill_metrics"] = _distill
from tests.integration import pretrained_model_metrics  # noqa: E402


def _load_shared(model_name: str) -> Any:
    if model_name not in SHARED_PRETRAINED:
        raise FileNotFoundError(f"{model_name} is not in shared/ (only {list(SHARED_PRETRAINED)}); its tests are deselected.")
    folder = SHARED / SHARED_PRETRAINED[model_name]
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing: set STATICST_SHARED_DIR to the folder holding models/.")
    return StaticModel.from_pretrained(folder)


pretrained_model_metrics.load_static_model = _load_shared


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _harness.apply_lists(config, items, LISTS, _impl_of)


# ---- upstream's fixtures (model2vec 0.10.0 tests/conftest.py), unchanged but for the test tokenizer's path

_TOKENIZER_TYPES = ["wordpiece", "bpe", "unigram"]


@pytest.fixture(scope="session", params=_TOKENIZER_TYPES, ids=_TOKENIZER_TYPES)
def mock_tokenizer(request: pytest.FixtureRequest) -> Tokenizer:
    """Create a mock tokenizer."""
    vocab = ["[PAD]", "word1", "word2", "word3", "[UNK]"]
    unk_token = "[UNK]"
    tokenizer_type = request.param
    model: Any
    if tokenizer_type == "wordpiece":
        model = WordPiece(vocab={token: idx for idx, token in enumerate(vocab)}, unk_token=unk_token, max_input_chars_per_word=100)
    elif tokenizer_type == "bpe":
        model = BPE(vocab={token: idx for idx, token in enumerate(vocab)}, merges=[], unk_token=unk_token, fuse_unk=True, ignore_merges=True)
    elif tokenizer_type == "unigram":
        model = Unigram(vocab=[(token, 0.0) for token in vocab], unk_id=0, byte_fallback=False)
    else:
        raise ValueError(f"Unsupported tokenizer type: {tokenizer_type}")
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = Whitespace()  # type: ignore[assignment]
    return tokenizer


@pytest.fixture(scope="session")
def mock_vectors() -> np.ndarray:
    """Create mock vectors."""
    return np.array([[0.1, 0.2], [0.2, 0.3], [0.3, 0.4], [0.0, 0.0], [0.0, 0.0]])


@pytest.fixture
def mock_config() -> dict[str, Any]:
    """Create a mock config."""
    return {"some_config": "value"}


@pytest.fixture(scope="session")
def mock_static_model() -> Any:
    """A small static model to test saving/loading (``StaticModel`` is the implementation's)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(TEST_TOKENIZER)).backend_tokenizer
    generator = np.random.RandomState(42)
    vectors = generator.randn(len(tokenizer.get_vocab()), 12)
    return model2vec.model.StaticModel(vectors=vectors, tokenizer=tokenizer)


def _tokenizer() -> Tokenizer:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TEST_TOKENIZER)).backend_tokenizer


@pytest.fixture(scope="session")
def mock_inference_pipeline(mock_trained_pipeline: Any) -> Any:
    """Mock pipeline."""
    return mock_trained_pipeline.to_pipeline()


@pytest.fixture(
    params=[
        (False, "single_label", "str"),
        (False, "single_label", "int"),
        (True, "multilabel", "str"),
        (True, "multilabel", "int"),
    ],
    ids=lambda param: f"{param[1]}_{param[2]}",
    scope="session",
)
def mock_trained_pipeline(request: pytest.FixtureRequest) -> Any:
    """Mock StaticModelForClassification with different label formats."""
    import torch
    from model2vec.train import StaticModelForClassification

    tokenizer = _tokenizer()
    torch.random.manual_seed(42)
    vectors_torched = torch.randn(len(tokenizer.get_vocab()), 12)
    model = StaticModelForClassification(vectors=vectors_torched, tokenizer=tokenizer, hidden_dim=12).to("cpu")

    X = ["dog", "cat"]
    is_multilabel, label_type = request.param[0], request.param[2]

    if label_type == "str":
        y = [["a", "b"], ["a"]] if is_multilabel else ["a", "b"]
    else:
        y = [[0, 1], [0]] if is_multilabel else [0, 1]

    model.fit(X, y)

    return model


@pytest.fixture(scope="session")
def mock_trained_similarity_pipeline() -> Any:
    """Mock StaticModelForSimilarity."""
    import torch
    from model2vec.train import StaticModelForSimilarity

    tokenizer = _tokenizer()
    torch.random.manual_seed(42)
    vectors_torched = torch.randn(len(tokenizer.get_vocab()), 12)
    model = StaticModelForSimilarity(vectors=vectors_torched, tokenizer=tokenizer, hidden_dim=12).to("cpu")

    X = ["dog", "cat"]
    y = torch.randn(2, 32)
    model.fit(X, y)

    return model


@pytest.fixture(scope="session")
def mock_inference_pipeline_projector(mock_trained_similarity_pipeline: Any) -> Any:
    """Mock pipeline."""
    return mock_trained_similarity_pipeline.to_pipeline()
