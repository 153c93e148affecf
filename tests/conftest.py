"""Shared fixtures: the backend, the real models/data in ../shared, and tiny generated models for unit behaviour.

Backends: a test (or a whole module, ``pytestmark = pytest.mark.usefixtures("backend")``) whose result depends on
the backend requests the ``backend`` fixture; it then runs once per backend (ids ``native`` and ``numpy``) with
``STATICST_KERNEL`` set to it, so every model the test builds, in this process or a child, runs on that backend.
A module-scoped fixture that builds a model must request ``backend`` too (else it is built once and shared by
both). With ``STATICST_KERNEL`` set by the user (``STATICST_KERNEL=numpy python -m pytest``) the suite runs on
that backend only. Tests that do not depend on the backend (server, integrations, corpus, eval, notebooks) run
once, on the default backend.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from staticst import kernel as kernels

REPO = Path(__file__).resolve().parent.parent

WORDS = [
    "the", "a", "cat", "dog", "sat", "on", "mat", "bank", "river", "money", "man", "bit", "good", "bad",
    "not", "is", "was", "by", "hello", "world", "fast", "slow", "car", "red", "blue", "sky", "eats", "fish",
]  # fmt: skip


#: The backends a backend-dependent test runs on: the one STATICST_KERNEL names, else both.
BACKENDS = [os.environ[kernels.ENV_KERNEL]] if os.environ.get(kernels.ENV_KERNEL) else ["native", "numpy"]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Generator[str, None, None]:
    """The backend (``"native"`` or ``"numpy"``) this test runs on, set as STATICST_KERNEL while it runs.

    ``native`` sets ``STATICST_KERNEL=auto``, what users get: the compiled kernel for every model it runs, the
    numpy path (with its reason in ``model.info()``) for the few it does not, as the default run always did;
    ``numpy`` sets ``STATICST_KERNEL=numpy``. A test passing ``kernel=backend`` asks for that backend outright
    (``"native"`` refuses a model the kernel cannot run). The compiled kernel missing is a skip of the native run,
    except where ``STATICST_REQUIRE_KERNEL`` is set (CI): there the tests fail.
    """
    name: str = request.param
    if name == "native" and not kernels.available() and not os.environ.get("STATICST_REQUIRE_KERNEL"):
        pytest.skip("the compiled kernel is not built (CI sets STATICST_REQUIRE_KERNEL=1 and builds it)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(kernels.ENV_KERNEL, "auto" if name == "native" else name)
        yield name


SHARED_DEFAULT = REPO.parent / "shared"
NO_SHARED_REASON = (
    f"real models/data not available: no STATICST_SHARED_DIR and no shared/ folder beside the repository "
    f"({SHARED_DEFAULT})"
)


def _shared_root() -> Path:
    value = os.environ.get("STATICST_SHARED_DIR")
    if value:
        root = Path(value)
        if not root.is_dir():
            raise RuntimeError(f"STATICST_SHARED_DIR={value!r} is not a folder.")
        return root
    if SHARED_DEFAULT.is_dir():
        return SHARED_DEFAULT
    pytest.skip(NO_SHARED_REASON)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Generator[None, None, None]:
    """Say loudly, after pytest's short summary, how many tests did not run because shared/ is missing."""
    yield
    count = sum(_skip_reason(r) == NO_SHARED_REASON for r in terminalreporter.stats.get("skipped", []))
    if count:
        terminalreporter.write_sep(
            "!",
            f"NOT RUN: {count} test(s) that need the real models/data in shared/ (none at {SHARED_DEFAULT}, "
            "STATICST_SHARED_DIR unset)",
            red=True,
            bold=True,
        )


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared/ folder with real models and MTEB data (from STATICST_SHARED_DIR, else ../shared)."""
    return _shared_root()


@pytest.fixture(scope="session")
def shared_model() -> Callable[[str], Path]:
    """Path of a real model in shared/models; a missing model is an error, never a skip."""
    root = _shared_root()

    def get(name: str) -> Path:
        path = root / "models" / name
        if not path.is_dir():
            raise FileNotFoundError(f"shared model {path} is missing")
        return path

    return get


def execute_notebook(nb: Any, cwd: Path, timeout: float = 600) -> None:
    """Run ``nb`` (an nbformat notebook) top to bottom with nbclient, in place, so that Ctrl-C stops pytest.

    nbclient's ``NotebookClient``, run on the main thread, adds an asyncio SIGINT handler that only shuts the
    kernel down: the ``KeyboardInterrupt`` never reaches pytest, the test fails with ``DeadKernelError`` and
    the run goes on (the next notebook swallows the next Ctrl-C). Off the main thread nbclient adds no handler
    (``loop.add_signal_handler`` refuses there), so the main thread, waiting here, gets the interrupt.
    """
    from nbclient import NotebookClient

    failure: list[BaseException] = []

    def run() -> None:
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="notebook", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)  # short waits: a KeyboardInterrupt is raised here, between them
    if failure:
        raise failure[0]


def _vocab() -> dict[str, int]:
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = ["##s", "##ing", "##ed", "##er", ".", ",", "!", "?"]
    tokens = special + WORDS + pieces + list("abcdefghijklmnopqrstuvwxyz") + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    return {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}


def wordpiece_tokenizer() -> Tokenizer:
    """A tiny BERT-style WordPiece tokenizer (lowercasing normalizer, BertPreTokenizer)."""
    tok = Tokenizer(models.WordPiece(_vocab(), unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None, clean_text=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    return tok


def bpe_tokenizer() -> Tokenizer:
    """A tiny byte-less BPE with a Metaspace pre-tokenizer."""
    vocab = {"<unk>": 0, "▁": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
    merges: list[tuple[str, str]] = []
    for w in ["the", "cat", "dog"]:
        cur = w[0]
        for c in w[1:]:
            merges.append((cur, c))
            cur += c
            vocab.setdefault(cur, len(vocab))
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    return tok


def unigram_tokenizer() -> Tokenizer:
    """A tiny Unigram tokenizer with an unk id."""
    pieces = [("<unk>", 0.0), ("▁", -2.0)] + [(w, -1.0) for w in ["▁the", "▁cat", "▁dog", "▁sat"]]
    pieces += [(c, -3.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    tok = Tokenizer(models.Unigram(pieces, unk_id=0, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    return tok


def write_model2vec(
    folder: Path,
    tokenizer: Tokenizer,
    *,
    dim: int = 8,
    dtype: str = "float32",
    normalize: bool = True,
    seed: int = 0,
    quantized_rows: int | None = None,
    config_extra: dict[str, object] | None = None,
) -> np.ndarray:
    """Write a tiny model in the model2vec layout; returns the table."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    rows = quantized_rows or vocab_size
    if dtype == "int8":
        table = rng.integers(-127, 127, size=(rows, dim)).astype(np.int8)
    else:
        table = rng.standard_normal((rows, dim)).astype(dtype)
    tensors = {"embeddings": table}
    if quantized_rows is not None:
        tensors["mapping"] = rng.integers(0, rows, size=vocab_size).astype(np.int64)
        tensors["weights"] = rng.uniform(0.1, 2.0, size=vocab_size).astype(np.float32)
    save_file(tensors, str(folder / "model.safetensors"))
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {"model_type": "model2vec", "normalize": normalize, "hidden_dim": dim, **(config_extra or {})}
    (folder / "config.json").write_text(json.dumps(config))
    return table


def write_st_root(folder: Path, tokenizer: Tokenizer, *, dim: int = 8, normalize: bool = True, seed: int = 1) -> np.ndarray:
    """Write a tiny model in the sentence-transformers root layout (as ST 6.2 saves StaticEmbedding)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = np.random.default_rng(seed).standard_normal((tokenizer.get_vocab_size(), dim)).astype(np.float32)
    save_file({"embedding.weight": table}, str(folder / "model.safetensors"))
    tokenizer.save(str(folder / "tokenizer.json"))
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.StaticEmbedding"}]
    if normalize:
        modules.append({"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"})
        (folder / "1_Normalize").mkdir()
        (folder / "1_Normalize" / "config.json").write_text("{}")
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "document": ""}, "default_prompt_name": None, "similarity_fn_name": "cosine"})
    )
    return table


@pytest.fixture(scope="module")
def model(request: pytest.FixtureRequest) -> Any:
    """The model a test module works with, loaded once per module.

    The module's ``MODEL`` (a folder name in shared/models, e.g. ``MODEL = "potion-base-8M"``) if it has one, else
    the built-in model with the prompts ``query`` and ``passage`` (what the server tests serve).
    """
    from staticst import StaticSentenceTransformer

    name = getattr(request.module, "MODEL", None)
    if name is not None:
        return StaticSentenceTransformer(request.getfixturevalue("shared_model")(name))
    built_in = StaticSentenceTransformer()
    built_in.prompts = {"query": "query: ", "passage": "passage: "}
    return built_in


@pytest.fixture
def tiny_model2vec(tmp_path: Path) -> Path:
    """A tiny model2vec-layout WordPiece model."""
    write_model2vec(tmp_path / "m2v", wordpiece_tokenizer())
    return tmp_path / "m2v"


@pytest.fixture
def tiny_st(tmp_path: Path) -> Path:
    """A tiny sentence-transformers-root-layout WordPiece model."""
    write_st_root(tmp_path / "st", wordpiece_tokenizer())
    return tmp_path / "st"
