"""Hub resolution through huggingface_hub's offline/cache paths, the built-in model, and push_to_hub.

No test touches the network: caches are built in ``tmp_path`` in huggingface_hub's own layout
(``models--org--name/refs/main`` + ``snapshots/<commit>/``) and read with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from staticst import BUILTIN_MODEL_ID, ModelNotFoundError, StaticSentenceTransformer
from staticst.persistence.hub import BUILTIN_MODEL_PATH, BUILTIN_REVISION
from tests.conftest import wordpiece_tokenizer, write_model2vec

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _populate_cache(cache: Path, repo_id: str, source: Path, commit: str = COMMIT) -> Path:
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(source, snapshot)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_hub_id_from_prepopulated_cache(tmp_path: Path, offline: None) -> None:
    write_model2vec(tmp_path / "src", wordpiece_tokenizer(), seed=7)
    _populate_cache(tmp_path / "cache", "someone/tiny-static", tmp_path / "src")
    from_hub = StaticSentenceTransformer("someone/tiny-static", cache_folder=tmp_path / "cache")
    local = StaticSentenceTransformer(tmp_path / "src")
    assert from_hub.model_id == "someone/tiny-static"
    texts = ["the cat sat", "hello world"]
    np.testing.assert_array_equal(from_hub.encode(texts), local.encode(texts))


def test_hub_id_revision_from_cache(tmp_path: Path) -> None:
    write_model2vec(tmp_path / "src", wordpiece_tokenizer(), seed=3)
    _populate_cache(tmp_path / "cache", "someone/tiny-static", tmp_path / "src")
    model = StaticSentenceTransformer(
        "someone/tiny-static", cache_folder=tmp_path / "cache", revision=COMMIT, local_files_only=True
    )
    assert model.revision == COMMIT


def test_uncached_id_offline_is_a_clear_error(tmp_path: Path, offline: None) -> None:
    with pytest.raises(ModelNotFoundError, match=r"'someone/absent'.*not in the local cache and HF_HUB_OFFLINE is set"):
        StaticSentenceTransformer("someone/absent", cache_folder=tmp_path / "empty")


def test_local_files_only_is_honoured(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="local_files_only=True"):
        StaticSentenceTransformer("someone/absent", cache_folder=tmp_path / "empty", local_files_only=True)


def test_builtin_model_needs_no_network_and_no_cache(tmp_path: Path, offline: None) -> None:
    for model in (
        StaticSentenceTransformer(cache_folder=tmp_path / "empty"),
        StaticSentenceTransformer(BUILTIN_MODEL_ID, cache_folder=tmp_path / "empty"),
    ):
        assert model.model_path == BUILTIN_MODEL_PATH
        assert model.revision == BUILTIN_REVISION
        assert model.encode("hello").shape == (256,)


def test_builtin_matches_shared_copy(shared_model) -> None:  # type: ignore[no-untyped-def]
    shared = shared_model("potion-base-8M")
    assert (BUILTIN_MODEL_PATH / "model.safetensors").read_bytes() == (shared / "model.safetensors").read_bytes()
    assert (BUILTIN_MODEL_PATH / "LICENSE").read_text().startswith("MIT License")


def test_builtin_id_prefers_a_cached_copy(tmp_path: Path, offline: None) -> None:
    write_model2vec(tmp_path / "src", wordpiece_tokenizer(), dim=8)
    snapshot = _populate_cache(tmp_path / "cache", BUILTIN_MODEL_ID, tmp_path / "src")
    model = StaticSentenceTransformer(BUILTIN_MODEL_ID, cache_folder=tmp_path / "cache")
    assert model.model_path == snapshot and model.get_sentence_embedding_dimension() == 8


def test_other_revision_of_builtin_goes_to_the_hub(tmp_path: Path, offline: None) -> None:
    with pytest.raises(ModelNotFoundError, match="revision v999"):
        StaticSentenceTransformer(BUILTIN_MODEL_ID, revision="v999", cache_folder=tmp_path / "empty")


def test_env_offline_subprocess(tmp_path: Path) -> None:
    """HF_HUB_OFFLINE=1 set before huggingface_hub is imported (the usual way users set it)."""
    write_model2vec(tmp_path / "src", wordpiece_tokenizer())
    _populate_cache(tmp_path / "cache", "org/model", tmp_path / "src")
    code = (
        "from staticst import StaticSentenceTransformer as S;"
        f"print(S('org/model', cache_folder={str(tmp_path / 'cache')!r}).encode('the cat').shape)"
    )
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(8,)"


def test_push_to_hub_up_to_the_upload_call(tiny_model2vec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    calls: dict[str, object] = {}

    class FakeRepoUrl(str):
        repo_id = "me/pushed"

    def fake_create_repo(self, repo_id: str, **kwargs: object) -> FakeRepoUrl:  # type: ignore[no-untyped-def]
        calls["create_repo"] = (repo_id, kwargs)
        return FakeRepoUrl("https://example.invalid/me/pushed")

    def fake_upload_folder(self, repo_id: str, folder_path: str, **kwargs: object) -> str:  # type: ignore[no-untyped-def]
        calls["files"] = sorted(p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file())
        reloaded = StaticSentenceTransformer(folder_path)
        calls["vec"] = reloaded.encode("the cat sat")
        calls["upload"] = (repo_id, kwargs)
        return "https://example.invalid/commit/1"

    def no_readme_yet(*args: object, **kwargs: object) -> str:  # the README probe ST makes: none on the Hub yet
        raise huggingface_hub.errors.EntryNotFoundError("README.md")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", fake_upload_folder)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_readme_yet)
    model = StaticSentenceTransformer(tiny_model2vec)
    url = model.push_to_hub("me/pushed", private=True, commit_message="hi")
    assert url == "https://example.invalid/commit/1"
    assert calls["create_repo"][0] == "me/pushed" and calls["create_repo"][1]["private"] is True  # type: ignore[index]
    assert {"config_sentence_transformers.json", "model.safetensors", "tokenizer.json", "modules.json", "README.md"} <= set(calls["files"])  # type: ignore[arg-type]
    np.testing.assert_array_equal(calls["vec"], model.encode("the cat sat"))
    assert calls["upload"][1]["commit_message"] == "hi"  # type: ignore[index]
    with pytest.raises(ValueError, match="repo_id must look like"):
        model.push_to_hub("a/b/c")
