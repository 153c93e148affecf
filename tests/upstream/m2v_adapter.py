"""Adapter conftest for model2vec 0.10's own tests (copied as ``tests/conftest.py``; see run.py).

model2vec's conftest builds fixtures for its whole suite (distillation, training, ONNX: torch and
transformers models). This one provides, unchanged, the fixtures that ``test_model.py``,
``test_persistence.py`` and the pretrained regression use (``mock_tokenizer``, ``mock_vectors``,
``mock_config``, ``mock_static_model``), and swaps ``model2vec.StaticModel`` for ``staticst.StaticModel``
before the test modules import it, so every model the tests build or load is staticst's
(``mock_static_model`` included, built by staticst's constructor as upstream builds it).

The pretrained regression loads its model through ``pretrained_model_metrics.load_static_model`` (a Hub
download); here that helper returns the shared copy of ``minishlab/potion-base-8M``. Its MTEB STS metric
needs datasets from the Hub, so ``distill_metrics`` (not shipped in the sdist either) is replaced by a stub
and the STS test is deselected. The other published models are not in shared/ and are deselected by name.

What is deselected or expected to fail, and why: :data:`DESELECT` and :data:`XFAIL` (applied and checked by
``_harness``; also in docs/compatibility.md).
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

model2vec.StaticModel = staticst.StaticModel  # type: ignore[misc]
model2vec.model.StaticModel = staticst.StaticModel  # type: ignore[misc]

SHARED = Path(os.environ.get("STATICST_SHARED_DIR", Path(__file__).resolve().parents[4] / "shared")) / "models"
TEST_TOKENIZER = Path(__file__).resolve().parent / "data" / "test_tokenizer"
SHARED_PRETRAINED = {"minishlab/potion-base-8m": "potion-base-8M"}

_HUB_MODEL = "a published model that is not in shared/ (a Hub download; no network here)"
DESELECT: dict[str, str] = {
    "test_persistence.py::test_silent_tqdm": "tests model2vec.persistence.utils.SilentTqdm, a model2vec helper: no staticst code runs",
    "test_persistence.py::test_maybe_get_cached_model_path": "tests model2vec.persistence.hf.maybe_get_cached_model_path, a model2vec helper: no staticst code runs",
    "test_pretrained_model_regression.py::test_mteb_sts_scores_match_baseline[*]": "MTEB STS task data comes from the Hub (no network here)",
    "test_pretrained_model_regression.py::*[minishlab/potion-base-32m]": _HUB_MODEL,
    "test_pretrained_model_regression.py::*[minishlab/potion-retrieval-32m]": _HUB_MODEL,
    "test_pretrained_model_regression.py::*[minishlab/potion-multilingual-128m]": _HUB_MODEL,
}  # fmt: skip
XFAIL: dict[str, str] = {
    "test_persistence.py::test_local_loading": (
        "counts the calls to model2vec's internal persistence.maybe_get_cached_model_path, which staticst (its own Hub "
        "code, no model2vec import) never calls; the snapshot_download calls it also checks are made"
    ),
}

# The pretrained regression imports its MTEB helper from a module the sdist does not ship.
_distill = types.ModuleType("tests.integration.distill_metrics")
_distill.compute_mteb_sts_scores = lambda model: {}  # type: ignore[attr-defined]  # its test is deselected
sys.modules["tests.integration.distill_metrics"] = _distill
from tests.integration import pretrained_model_metrics  # noqa: E402


def _load_shared(model_name: str) -> staticst.StaticModel:
    if model_name not in SHARED_PRETRAINED:
        raise FileNotFoundError(f"{model_name} is not in shared/ (only {list(SHARED_PRETRAINED)}); its tests are deselected.")
    folder = SHARED / SHARED_PRETRAINED[model_name]
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing: set STATICST_SHARED_DIR to the folder holding models/.")
    return staticst.StaticModel.from_pretrained(folder)


pretrained_model_metrics.load_static_model = _load_shared


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _harness.apply_lists(config, items, DESELECT, XFAIL)


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
def mock_static_model() -> staticst.StaticModel:
    """A small static model to test saving/loading (``StaticModel`` is staticst's here)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(TEST_TOKENIZER)).backend_tokenizer
    generator = np.random.RandomState(42)
    vectors = generator.randn(len(tokenizer.get_vocab()), 12)
    return model2vec.model.StaticModel(vectors=vectors, tokenizer=tokenizer)
