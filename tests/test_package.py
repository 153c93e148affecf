"""Package-level guarantees: the public API, no torch on import or encode, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import staticst
from staticst.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_public_api_is_pinned() -> None:
    assert staticst.__all__ == [
        "BUILTIN_MODEL_ID",
        "CorpusError",
        "CorpusInputError",
        "CorpusOutputError",
        "CorruptModelError",
        "EmbeddingShapeError",
        "InvalidConfigError",
        "MissingDependencyError",
        "ModelCardData",
        "ModelLoadError",
        "ModelNotFoundError",
        "NonFiniteEmbeddingError",
        "Normalize",
        "PoolingConfig",
        "PoolingOverflowError",
        "StaticEmbedding",
        "StaticModel",
        "StaticSTError",
        "StaticSentenceTransformer",
        "TaskDataError",
        "TokenizerError",
        "TokenizerSettings",
        "UnknownLayoutError",
        "VocabularyMismatchError",
        "__version__",
        "distill",
        "embed_corpus",
        "encode_iter",
        "util",
    ]
    for name in staticst.__all__:
        assert hasattr(staticst, name), name


def test_every_error_is_exported_from_the_package() -> None:
    from staticst import errors

    missing = sorted(set(errors.__all__) - set(staticst.__all__))
    assert not missing, f"errors missing from staticst.__all__: {missing}"
    for name in errors.__all__:
        assert getattr(staticst, name) is getattr(errors, name)


def test_error_tree() -> None:
    from staticst import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.StaticSTError)
        assert name in errors.__doc__  # the tree in the module docstring names every error
    assert issubclass(errors.ModelNotFoundError, FileNotFoundError)
    assert issubclass(errors.MissingDependencyError, ImportError)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_import_and_encode_never_import_torch() -> None:
    code = (
        "import sys\n"
        "import staticst\n"
        "assert 'torch' not in sys.modules, 'import'\n"
        "m = staticst.StaticSentenceTransformer()\n"
        "m.encode('hi'); m.encode(['a b', 'c'] * 50, precision='int8'); m.similarity(m.encode(['x']), m.encode(['y']))\n"
        "m.encode_query(['q']); m.encode_document(['d'])\n"
        "heavy = sorted(k for k in ('torch', 'sentence_transformers', 'mteb', 'fastapi', 'uvicorn', 'transformers', 'onnxruntime', 'sklearn') if k in sys.modules)\n"
        "print(heavy)\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_convert_to_tensor_without_torch_is_a_clear_import_error() -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # simulate an environment without torch\n"
        "import staticst\n"
        "m = staticst.StaticSentenceTransformer()\n"
        "try:\n"
        "    m.encode(['a'], convert_to_tensor=True)\n"
        "except ImportError as e:\n"
        "    print(type(e).__name__, 'torch is not installed' in str(e))\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "MissingDependencyError True"


def test_cli_encode_args_jsonl(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["encode", "hello world", "second text", "--truncate-dim", "16"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = staticst.StaticSentenceTransformer().encode(["hello world", "second text"], truncate_dim=16)
    assert [r["index"] for r in rows] == [0, 1]
    assert np.abs(np.array([r["embedding"] for r in rows]) - expected).max() <= 1e-6


def test_cli_encode_stdin_to_npy(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "staticst.cli", "encode", "--output", str(tmp_path / "e.npy"), "--normalize"],
        input="first line\nsecond line\n\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    arr = np.load(tmp_path / "e.npy")
    expected = staticst.StaticSentenceTransformer().encode(["first line", "second line", ""], normalize_embeddings=True)
    assert arr.shape == (3, 256) and np.abs(arr - expected).max() <= 1e-6


def test_cli_info(capsys, shared_model) -> None:  # type: ignore[no-untyped-def]
    assert main(["info", str(shared_model("wordllama-l2-supercat-256")), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "model2vec" and info["dtype"] == "float16" and info["vocab_size"] == 32000
    # the sentence-transformers face: no token limit (model2vec's 512 applies under family="model2vec" only)
    assert info["normalize"] is True and info["max_length"] is None and info["family"] == "sentence-transformers"


def test_cli_errors_are_messages_not_tracebacks(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["info", str(tmp_path / "missing" / "x")]) == 1
    assert "error:" in capsys.readouterr().err


def test_every_third_party_import_is_a_declared_dependency() -> None:
    """A module the library imports must be a declared dependency (tqdm once arrived only through huggingface-hub)."""
    import ast
    import importlib.metadata as md

    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(requirements: list[str]) -> set[str]:
        import re

        return {re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower().replace("_", "-") for req in requirements}

    core = names(project["dependencies"])
    extras = {extra: names(reqs) for extra, reqs in project["optional-dependencies"].items()}
    optional = {"torch"}  # imported only for convert_to_tensor, behind MissingDependencyError
    distributions = md.packages_distributions()
    stdlib = sys.stdlib_module_names
    problems = []
    for path in sorted((REPO / "staticst").rglob("*.py")):
        rel = path.relative_to(REPO / "staticst").parts
        # an optional subpackage may import its own extra: server, corpus, and each integration's library
        own = {
            "server": extras["server"],
            "corpus": extras.get("corpus", set()),
            "distill": extras["distill"],
            "static_model.py": extras.get("quantize", set()),
            "evaluation.py": extras["distill"],  # SciPy's correlations: distil and evaluate with one extra
        }.get(rel[0], set())
        if rel[0] == "integrations":
            own = set().union(*extras.values())
        allowed = core | own
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in stdlib or top == "staticst" or top in optional:
                    continue
                dists = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
                if not dists & allowed:
                    problems.append(f"{'/'.join(rel)} imports {top} (distribution {sorted(dists)}), not declared")
    assert not problems, problems
