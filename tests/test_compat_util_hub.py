"""The util functions and push_to_hub added for drop-in use, checked against sentence-transformers 6.2 itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from staticst import StaticSentenceTransformer, util


@pytest.fixture(scope="module")
def embeddings(shared_model: Any) -> np.ndarray:
    model = StaticSentenceTransformer(str(shared_model("potion-base-2M")))
    words = ["cat", "dog", "kitten", "puppy", "car", "truck", "bus", "apple", "pear", "banana", "red", "blue"]
    texts = [f"{a} and {b}" for a in words for b in words[:6]]
    return model.encode(texts, normalize_embeddings=True)


def test_community_detection_matches_st(embeddings: np.ndarray) -> None:
    from sentence_transformers import util as st_util

    for threshold, size in ((0.7, 3), (0.8, 2), (0.95, 5), (0.5, 10)):
        expected = st_util.community_detection(embeddings, threshold=threshold, min_community_size=size, batch_size=7)
        got = util.community_detection(embeddings, threshold=threshold, min_community_size=size, batch_size=7)
        # centres and members agree; members are listed by similarity, whose last float bits differ between
        # numpy's and torch's matrix products (documented in docs/compatibility.md)
        assert [(c[0], sorted(c)) for c in got] == [(c[0], sorted(c)) for c in expected], (threshold, size)
        assert any(len(c) > 2 for c in got) or threshold > 0.9
    assert util.community_detection(np.zeros((0, 4))) == st_util.community_detection(np.zeros((0, 4))) == []


def test_similarity_aliases_and_truncation_match_st(embeddings: np.ndarray) -> None:
    from sentence_transformers import util as st_util

    a, b = embeddings[:10], embeddings[10:20]
    np.testing.assert_allclose(util.pytorch_cos_sim(a, b), st_util.pytorch_cos_sim(a, b).numpy(), atol=1e-6)
    for x, y in ((a, b), (a[:, :63], b[:, :63])):  # even and odd dimensions
        np.testing.assert_allclose(util.pairwise_angle_sim(x, y), st_util.pairwise_angle_sim(x, y).numpy(), atol=1e-6)
    np.testing.assert_array_equal(util.truncate_embeddings(a, 8), st_util.truncate_embeddings(a, 8))
    _same_hits(util.information_retrieval(a, b, top_k=3), st_util.information_retrieval(a, b, top_k=3))


def _same_hits(got: list[list[dict[str, Any]]], expected: list[list[dict[str, Any]]]) -> None:
    assert [[h["corpus_id"] for h in q] for q in got] == [[h["corpus_id"] for h in q] for q in expected]
    np.testing.assert_allclose([[h["score"] for h in q] for q in got], [[h["score"] for h in q] for q in expected], rtol=1e-5)


@pytest.mark.parametrize(("search", "precisions"), [("faiss", ("float32", "uint8", "ubinary")), ("usearch", ("float32", "int8", "ubinary", "binary"))])
def test_index_searches_match_st(embeddings: np.ndarray, search: str, precisions: tuple[str, ...]) -> None:

    from sentence_transformers.util import quantization as st_quantization

    ours, theirs = getattr(util, f"semantic_search_{search}"), getattr(st_quantization, f"semantic_search_{search}")
    queries, corpus = embeddings[:5], embeddings[5:]
    for precision in precisions:
        quantized = util.quantize_embeddings(corpus, precision) if precision != "float32" else corpus
        kwargs = {"corpus_precision": precision, "top_k": 4, "calibration_embeddings": corpus}
        got, _ = ours(queries, corpus_embeddings=quantized, **kwargs)
        expected, _ = theirs(queries, corpus_embeddings=quantized, **kwargs)
        _same_hits(got, expected)
    with pytest.raises(ValueError, match="corpus_embeddings or corpus_index"):
        ours(queries)


# ---------------------------------------------------------------- push_to_hub through an intercepted HTTP layer


class _FakeHub:
    """Answers the Hub API calls push_to_hub makes, and records them (method, path, selected payload)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def __call__(self, request: Any) -> Any:
        import httpx

        path = request.url.path
        if path == "/api/agent-harnesses":
            return httpx.Response(200, json={})
        if path == "/api/repos/create":
            body = json.loads(request.content)
            self.calls.append(("POST", path, {k: body.get(k) for k in ("name", "organization", "private", "type")}))
            return httpx.Response(200, json={"url": "https://huggingface.co/me/repo", "name": "me/repo"})
        if path.endswith("/discussions"):
            self.calls.append(("POST", path, None))
            return httpx.Response(200, json={"num": 7, "url": "https://huggingface.co/me/repo/discussions/7", "pullRequest": True})
        if "/resolve/" in path:
            self.calls.append((request.method, path, None))
            return httpx.Response(404, headers={"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"}, request=request)
        if "/branch/" in path:
            self.calls.append((request.method, path, None))
            return httpx.Response(200, json={})
        if "/preupload/" in path:
            files = json.loads(request.content)["files"]
            self.calls.append(("POST", path, None))
            return httpx.Response(200, json={"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        if "/commit/" in path:
            lines = [json.loads(line) for line in request.content.decode().splitlines() if line.strip()]
            header = next(x["value"] for x in lines if x["key"] == "header")
            self.calls.append(("POST", path, {"summary": header.get("summary"), "pr": "create_pr=1" in str(request.url), "description": bool(header.get("description"))}))
            pr = "https://huggingface.co/me/repo/discussions/7" if "create_pr=1" in str(request.url) else None
            return httpx.Response(200, json={"commitUrl": "https://huggingface.co/me/repo/commit/" + "a" * 40, "commitOid": "a" * 40, "pullRequestUrl": pr})
        self.calls.append((request.method, path, "unexpected"))
        return httpx.Response(500, json={"error": f"unexpected {path}"})


@pytest.fixture
def fake_hub() -> Iterator[_FakeHub]:
    import httpx
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    hub = _FakeHub()
    set_client_factory(lambda: httpx.Client(transport=httpx.MockTransport(hub)))
    try:
        yield hub
    finally:
        set_client_factory(_http.default_client_factory)


@pytest.mark.parametrize("options", [{}, {"revision": "new-branch"}, {"commit_message": "hi", "private": True}])
def test_push_to_hub_makes_the_calls_st_makes(fake_hub: _FakeHub, shared_model: Any, options: dict[str, Any]) -> None:
    from sentence_transformers import SentenceTransformer

    folder = str(shared_model("potion-base-2M-sentence-transformers"))
    expected_url = SentenceTransformer(folder, device="cpu").push_to_hub("me/repo", token="hf_x", **options)
    expected = [c for c in fake_hub.calls]
    fake_hub.calls.clear()
    url = StaticSentenceTransformer(folder).push_to_hub("me/repo", token="hf_x", **options)
    assert url == expected_url
    assert url.endswith("/discussions/7") if options.get("create_pr") else "/commit/" in url

    def normalized(calls: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
        out = []
        for method, path, payload in calls:
            if isinstance(payload, dict) and payload.get("summary"):
                payload = {**payload, "summary": payload["summary"].replace("StaticSentenceTransformer", "SentenceTransformer")}
            out.append((method, path, payload))
        return out

    assert normalized(fake_hub.calls) == normalized(expected)


def test_save_to_hub_is_the_deprecated_alias(fake_hub: _FakeHub, shared_model: Any) -> None:
    from sentence_transformers import SentenceTransformer

    folder = str(shared_model("potion-base-2M-sentence-transformers"))
    expected_url = SentenceTransformer(folder, device="cpu").save_to_hub("repo", organization="me", token="hf_x", exist_ok=True)
    expected = list(fake_hub.calls)
    fake_hub.calls.clear()
    assert StaticSentenceTransformer(folder).save_to_hub("repo", organization="me", token="hf_x", exist_ok=True) == expected_url
    assert fake_hub.calls == expected  # save_to_hub's own default message, "Add new model.", is the same
    with pytest.raises(ValueError, match="organization"):
        StaticSentenceTransformer(folder).save_to_hub("other/repo", organization="me")


def test_local_model_path_uploads_that_folder(fake_hub: _FakeHub, tmp_path: Path, shared_model: Any) -> None:
    folder = str(shared_model("potion-base-2M-sentence-transformers"))
    StaticSentenceTransformer(folder).push_to_hub("me/repo", token="hf_x", local_model_path=folder)
    assert not any("/resolve/" in path for _, path, _ in fake_hub.calls)  # no README probe: nothing is saved


def test_create_pr_returns_the_pr_url_with_sts_arguments(fake_hub: _FakeHub, shared_model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """create_pr: the upload ST makes (opening a PR needs Hub discussion endpoints, so upload_folder is recorded)."""
    from huggingface_hub import CommitInfo, HfApi
    from sentence_transformers import SentenceTransformer

    uploads: list[dict[str, Any]] = []

    def upload_folder(self: Any, **kwargs: Any) -> CommitInfo:
        uploads.append({k: v for k, v in kwargs.items() if k != "folder_path"})
        return CommitInfo(
            commit_url="https://huggingface.co/me/repo/commit/" + "b" * 40, commit_message=kwargs["commit_message"],
            commit_description="", oid="b" * 40, pr_url="https://huggingface.co/me/repo/discussions/7",
        )  # fmt: skip

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    folder = str(shared_model("potion-base-2M-sentence-transformers"))
    expected = SentenceTransformer(folder, device="cpu").push_to_hub("me/repo", token="hf_x", create_pr=True)
    got = StaticSentenceTransformer(folder).push_to_hub("me/repo", token="hf_x", create_pr=True)
    assert got == expected == "https://huggingface.co/me/repo/discussions/7"
    ref, ours = uploads
    assert ref.keys() == ours.keys()
    assert ours["create_pr"] is ref["create_pr"] is True and ours["revision"] == ref["revision"]
    assert ours["commit_message"] == ref["commit_message"].replace("SentenceTransformer", "StaticSentenceTransformer")
    assert "automatically generated to add StaticSentenceTransformer compatibility" in ours["commit_description"]
    assert "## Full Model Architecture:" in ours["commit_description"] and "## Full Model Architecture:" in ref["commit_description"]
