"""Models built in memory (``StaticModel(vectors, tokenizer)``, ``StaticEmbedding(tokenizer, embedding_weights=...)``)
get exactly the parts a saved folder gives, with the same checks, and touch no disk."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer

from staticst.errors import InvalidConfigError, NonFiniteEmbeddingError, VocabularyMismatchError
from staticst.persistence.load import ModelParts, parts_in_memory, read_model
from staticst.persistence.save import SavedModel, write_model
from tests.conftest import unigram_tokenizer, wordpiece_tokenizer

REPO = Path(__file__).resolve().parent.parent


def _model(tokenizer: Tokenizer, **changes: Any) -> SavedModel:
    rng = np.random.default_rng(0)
    fields: dict[str, Any] = {
        "layout": "model2vec",
        "table": rng.standard_normal((tokenizer.get_vocab_size(with_added_tokens=True), 6)).astype(np.float32),
        "mapping": None,
        "weights": None,
        "tokenizer": tokenizer,
        "normalize": True,
        "max_length": 512,
        "truncation_side": "right",
        "config": {},
        "st_config": {},
    }
    fields.update(changes)
    return SavedModel(**fields)


def _same(memory: ModelParts, disk: ModelParts) -> None:
    assert memory.resolved.layout == disk.resolved.layout
    assert memory.resolved.config == disk.resolved.config and memory.resolved.st_config == disk.resolved.st_config
    assert memory.resolved.normalize_module == disk.resolved.normalize_module
    assert memory.resolved.modules_normalize == disk.resolved.modules_normalize
    for name in ("table", "mapping", "weights"):
        a, b = getattr(memory, name), getattr(disk, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name
            assert not a.flags.writeable
    assert json.loads(memory.tokenizer.to_str()) == json.loads(disk.tokenizer.to_str())
    assert memory.padding == disk.padding and memory.truncation == disk.truncation


CASES: list[tuple[str, Callable[[], SavedModel]]] = [
    ("model2vec", lambda: _model(wordpiece_tokenizer())),
    (
        "model2vec-plain",
        lambda: _model(unigram_tokenizer(), normalize=False, max_length=None, config={"hidden_dim": 6}),
    ),
    ("model2vec-float16", lambda: _model(unigram_tokenizer(), table=np.ones((32, 4), np.float16))),
    (
        "model2vec-quantized",
        lambda: _model(
            wordpiece_tokenizer(),
            table=np.arange(12, dtype=np.int8).reshape(3, 4),
            mapping=np.arange(wordpiece_tokenizer().get_vocab_size(), dtype=np.int64) % 3,
            weights=np.linspace(0.5, 2, wordpiece_tokenizer().get_vocab_size()),
        ),
    ),
    (
        "sentence-transformers",
        lambda: _model(wordpiece_tokenizer(), layout="sentence-transformers", st_config={"prompts": {"q": "query: "}}),
    ),
    (
        "sentence-transformers-left",
        lambda: _model(
            unigram_tokenizer(), layout="sentence-transformers", max_length=3, truncation_side="left", normalize=False
        ),
    ),
    (
        "sentence-transformers-weights",
        lambda: _model(
            wordpiece_tokenizer(),
            layout="sentence-transformers",
            weights=np.full(wordpiece_tokenizer().get_vocab_size(), 0.5),
        ),
    ),
]


@pytest.mark.parametrize("make", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_parts_in_memory_are_the_parts_of_the_saved_folder(make: Callable[[], SavedModel], tmp_path: Path) -> None:
    model = make()
    write_model(tmp_path, model, None)
    _same(parts_in_memory(model), read_model(tmp_path))


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        (
            {"table": np.zeros((3, 6), np.float32)},
            VocabularyMismatchError,
            r"<in memory>/model.safetensors: the table has 3 rows",
        ),
        ({"table": np.full((32, 4), np.nan, np.float32)}, NonFiniteEmbeddingError, "NaN"),
        (
            {"st_config": {"similarity_fn_name": "cosinus"}},
            InvalidConfigError,
            r"<in memory>/config_sentence_transformers.json",
        ),
    ],
    ids=["rows", "nan", "st_config"],
)
def test_in_memory_checks_are_the_folder_checks(
    changes: dict[str, Any], error: type, message: str, tmp_path: Path
) -> None:
    model = _model(unigram_tokenizer(), **changes)
    with pytest.raises(error, match=message):
        parts_in_memory(model)
    write_model(tmp_path, model, None)
    with pytest.raises(error):  # the same error from the folder
        read_model(tmp_path)


def test_building_in_memory_touches_no_disk(shared_model: Callable[[str], Path]) -> None:
    """An audit hook sees every file opened for writing and every folder made while the models are built."""
    folder = shared_model("potion-base-2M")
    code = f"""
import sys
import numpy as np
from tokenizers import Tokenizer
import staticst
from staticst import StaticEmbedding, StaticModel, StaticSentenceTransformer
tokenizer = Tokenizer.from_file({str(folder / "tokenizer.json")!r})
table = np.random.default_rng(0).standard_normal((tokenizer.get_vocab_size(), 16)).astype(np.float32)
# a first build imports every module it needs (an import may write a .pyc): the watched build below is the second
StaticModel(table, tokenizer).encode(["a"])
StaticSentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=table)]).encode(["a"])
events = []
watch = True
def hook(event, args):
    if not watch:
        return
    if event == "open" and len(args) > 1 and isinstance(args[1], str) and any(c in args[1] for c in "wax+"):
        events.append((event, str(args[0])))
    elif event in ("os.mkdir", "os.rename", "os.remove", "shutil.rmtree", "tempfile.mkdtemp", "tempfile.mkstemp"):
        events.append((event, str(args[0])))
sys.addaudithook(hook)
m2v = StaticModel(table, tokenizer, normalize=True)
st = StaticSentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=table)])
vectors = (m2v.encode(["a cat"]), st.encode(["a cat"]))
watch = False
print(events)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
