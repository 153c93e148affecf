"""text-embeddings-inference and Hugging Face inference API conventions, and OpenAI's ``/v1/models``.

Each test is a regression test for one item of "works where users already are": before it, ``POST /`` and
``/invocations`` were 404, ``dimensions`` / ``truncation_direction`` / ``parameters`` were 422, ``truncate``
was ignored, and ``/tokenize``, ``/decode``, ``/metrics``, ``/v1/models`` did not exist. Every vector is
compared bit for bit with ``model.encode`` / ``model.similarity``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the server extra is not installed: pip install 'staticst[server]'")

from starlette.testclient import TestClient  # noqa: E402

from staticst import StaticSentenceTransformer  # noqa: E402
from staticst.server import add_serve_arguments, create_app  # noqa: E402
from tests._live import same_bits  # noqa: E402
from tests.test_server import TEXTS  # noqa: E402

OCTET = "application/octet-stream"
NDJSON = "application/x-ndjson"


@pytest.fixture(scope="module")
def model() -> StaticSentenceTransformer:
    """The built-in model under model2vec's rules: its 512-token limit is what the truncation tests below need
    (under sentence-transformers' rules, the face's default, this folder has no token limit)."""
    built_in = StaticSentenceTransformer(family="model2vec")
    built_in.prompts = {"query": "query: ", "passage": "passage: "}
    return built_in


@pytest.fixture(scope="module")
def client(model: StaticSentenceTransformer) -> Iterator[TestClient]:
    with TestClient(create_app(model, model_name="my-embedder")) as c:
        yield c


@pytest.fixture(scope="module")
def words(model: StaticSentenceTransformer) -> list[str]:
    """600 short words that are one token each: token i of their join is word i."""
    tok = model.tokenizer
    vocab = sorted(w for w in tok.get_vocab() if w.isascii() and w.isalpha() and w.islower() and 2 <= len(w) <= 4)
    found = [w for w in vocab if len(tok.encode(w, add_special_tokens=False).ids) == 1][:600]
    assert len(found) == 600
    return found


def matrix(payload: Any) -> np.ndarray:
    return np.asarray(payload, dtype=np.float64).astype(np.float32)


# ----------------------------------------------------------------------------- POST / and /invocations
@pytest.mark.parametrize("path", ["/", "/invocations"])
def test_root_and_invocations_embed_like_embed(client: TestClient, model: StaticSentenceTransformer, path: str) -> None:
    """huggingface_hub's ``InferenceClient(base_url).feature_extraction`` posts to ``/`` (was a 404)."""
    r = client.post(path, json={"inputs": TEXTS})
    assert r.status_code == 200, r.text
    same_bits(matrix(r.json()), model.encode(TEXTS, normalize_embeddings=True))
    r = client.post(path, json={"inputs": TEXTS[0], "normalize": False, "dimensions": 32}, headers={"Accept": OCTET})
    assert r.status_code == 200 and r.headers["x-embedding-shape"] == "1,32"
    assert r.content == model.encode(TEXTS[:1], truncate_dim=32).astype("<f4").tobytes()


@pytest.mark.parametrize("path", ["/", "/invocations", "/similarity"])
def test_the_similarity_payload_with_parameters_is_answered(
    client: TestClient, model: StaticSentenceTransformer, path: str
) -> None:
    """``InferenceClient.sentence_similarity`` always sends ``"parameters": {}`` (was a 422 on /similarity)."""
    source, sentences = TEXTS[2], [TEXTS[0], TEXTS[1], TEXTS[4]]
    expected = np.asarray(model.similarity(model.encode([source]), model.encode(sentences)), dtype=np.float32)
    r = client.post(path, json={"inputs": {"source_sentence": source, "sentences": sentences}, "parameters": {}})
    assert r.status_code == 200, r.text
    same_bits(matrix(r.json()), expected.reshape(-1))
    body = {"inputs": {"source_sentence": source, "sentences": sentences}, "parameters": {"prompt_name": "query"}}
    r = client.post(path, json={**body, "prompt_name": "passage"})  # parameters win over the top-level field
    queried = model.similarity(
        model.encode([source], prompt_name="query"), model.encode(sentences, prompt_name="query")
    )
    same_bits(matrix(r.json()), np.asarray(queried, dtype=np.float32).reshape(-1))


def test_a_shared_path_routes_by_the_type_of_inputs(client: TestClient) -> None:
    r = client.post("/", json={"inputs": {"source_sentence": "a"}})
    assert r.status_code == 422 and "inputs.sentences" in r.json()["error"]
    r = client.post("/", json={"inputs": 5})  # neither: the first body (embed) names the problem
    assert r.status_code == 422 and "a string or a list of strings" in r.json()["error"]
    r = client.post("/", json={"inputs": "a", "parameters": {}})  # a similarity field on an embed body
    assert r.status_code == 422 and r.json()["param"] == "parameters"
    r = client.post("/", json=["a"])
    assert r.status_code == 422 and "JSON object" in r.json()["error"]


def test_get_root_and_ping_are_health(client: TestClient) -> None:
    assert client.get("/").json() == client.get("/ping").json() == {"status": "ok"}


# ----------------------------------------------------------------------------- dimensions, truncate, direction
def test_embed_accepts_dimensions(client: TestClient, model: StaticSentenceTransformer) -> None:
    """text-embeddings-inference's ``dimensions`` on /embed (was a 422): truncate_dim by its TEI name."""
    r = client.post("/embed", json={"inputs": TEXTS, "dimensions": 64})
    assert r.status_code == 200, r.text
    same_bits(matrix(r.json()), model.encode(TEXTS, normalize_embeddings=True, truncate_dim=64))
    r = client.post("/embed", json={"inputs": TEXTS, "dimensions": 64, "truncate_dim": 16})  # both: the smaller
    same_bits(matrix(r.json()), model.encode(TEXTS, normalize_embeddings=True, truncate_dim=16))
    r = client.post("/embed", json={"inputs": "a", "dimensions": 257})
    assert r.status_code == 422 and "1..256" in r.json()["error"]


def test_truncate_false_refuses_texts_over_max_seq_length_as_tei(
    client: TestClient, model: StaticSentenceTransformer, words: list[str]
) -> None:
    """``truncate: false`` was ignored; now a text over the model's 512 tokens is a 413, as in TEI."""
    assert model.max_seq_length == 512
    long_text, short_text = " ".join(words), " ".join(words[:512])
    r = client.post("/embed", json={"inputs": [short_text, long_text], "truncate": False})
    assert r.status_code == 413, r.text
    error = r.json()
    assert (error["param"], error["limit"], error["value"], error["error_type"]) == (
        "inputs[1]",
        512,
        600,
        "input_too_long",
    )
    assert "max_seq_length" in error["error"] and "truncate: true" in error["error"]
    r = client.post("/embed", json={"inputs": [short_text], "truncate": False})  # at the limit: accepted, uncut
    same_bits(matrix(r.json()), model.encode([short_text], normalize_embeddings=True))
    r = client.post("/embed", json={"inputs": [short_text], "truncate": False, "prompt_name": "query"})
    assert r.status_code == 413 and "with its prompt" in r.json()["error"] and r.json()["value"] == 514
    for truncate in (True, None):  # true, or absent with the default --auto-truncate: the model's own rule
        r = client.post("/embed", json={"inputs": [long_text], "truncate": truncate})
        same_bits(matrix(r.json()), model.encode([long_text], normalize_embeddings=True))
    body = {"inputs": {"source_sentence": "a", "sentences": ["b", long_text]}, "parameters": {"truncate": False}}
    r = client.post("/similarity", json=body)
    assert r.status_code == 413 and r.json()["param"] == "inputs.sentences[1]"


def test_a_streamed_answer_refuses_before_its_200(model: StaticSentenceTransformer, words: list[str]) -> None:
    """JSON Lines answers of large batches are streamed: the token check runs before the status is sent."""
    texts = [f"text {i}" for i in range(10)] + [" ".join(words)]
    with TestClient(create_app(model, stream_chunk=4)) as c:
        r = c.post("/embed", json={"inputs": texts, "truncate": False}, headers={"Accept": NDJSON})
        assert r.status_code == 413 and r.json()["param"] == "inputs[10]"
        r = c.post("/embed", json={"inputs": texts[:10], "truncate": False}, headers={"Accept": NDJSON})
        assert r.status_code == 200 and "content-length" not in r.headers  # streamed
        lines = [json.loads(line) for line in r.text.splitlines()]
        same_bits(matrix(lines), model.encode(texts[:10], normalize_embeddings=True))


@pytest.mark.parametrize("direction", ["left", "Left"])
def test_truncation_direction_left_pools_the_last_tokens(
    client: TestClient, model: StaticSentenceTransformer, words: list[str], direction: str
) -> None:
    """``truncation_direction`` was a 422; ``left`` keeps the last max_seq_length tokens of the text."""
    text = " ".join(words)
    r = client.post("/embed", json={"inputs": [text, "short"], "truncation_direction": direction})
    assert r.status_code == 200, r.text
    last = " ".join(words[-512:])
    same_bits(matrix(r.json()), model.encode([last, "short"], normalize_embeddings=True))
    assert not np.array_equal(matrix(r.json())[0], model.encode(text, normalize_embeddings=True))
    r = client.post("/embed", json={"inputs": [text], "truncation_direction": "right"})  # the model's own side
    same_bits(matrix(r.json()), model.encode([text], normalize_embeddings=True))
    r = client.post("/embed", json={"inputs": [text], "truncation_direction": "up"})
    assert r.status_code == 422 and "truncation_direction" in r.json()["error"]
    assert model.tokenizer_settings.truncation_side == "right"  # the served model itself is unchanged


def test_no_auto_truncate_refuses_by_default_on_every_route(model: StaticSentenceTransformer, words: list[str]) -> None:
    long_text = " ".join(words)
    with TestClient(create_app(model, auto_truncate=False)) as c:
        r = c.post("/embed", json={"inputs": long_text})
        assert r.status_code == 413 and r.json()["param"] == "inputs[0]"
        r = c.post("/v1/embeddings", json={"input": ["ok", long_text]})
        assert r.status_code == 413 and r.json()["error"]["param"] == "input[1]"
        assert r.json()["error"]["code"] == "input_too_long"
        r = c.post("/embed", json={"inputs": long_text, "truncate": True})
        same_bits(matrix(r.json())[0], model.encode(long_text, normalize_embeddings=True))
        assert c.get("/info").json()["auto_truncate"] is False
    with pytest.raises(ValueError, match="auto_truncate"):
        create_app(model, auto_truncate="no")  # type: ignore[arg-type]
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    assert parser.parse_args([]).auto_truncate is True
    assert parser.parse_args(["--no-auto-truncate"]).auto_truncate is False


# ----------------------------------------------------------------------------- /tokenize, /decode
def test_tokenize_lists_each_texts_tokens_as_tei(client: TestClient, model: StaticSentenceTransformer) -> None:
    texts = ["Hello, wörld! unbelievable", "🙂 bank"]
    r = client.post("/tokenize", json={"inputs": texts})
    assert r.status_code == 200, r.text
    result = r.json()
    assert len(result) == 2
    for text, tokens in zip(texts, result, strict=True):
        encoding = model.tokenizer.encode(text, add_special_tokens=True)
        assert [t["id"] for t in tokens] == encoding.ids
        assert set(tokens[0]) == {"id", "text", "special", "start", "stop"}
        assert tokens[0]["special"] and tokens[0]["start"] is None and tokens[-1]["special"]
        for token in tokens[1:-1]:
            assert not token["special"] and token["text"] == text[token["start"] : token["stop"]]
    r = client.post("/tokenize", json={"inputs": "money bank", "add_special_tokens": False})
    [tokens] = r.json()
    assert np.array_equal([t["id"] for t in tokens], model.tokenize(["money bank"])["input_ids"])  # what is pooled
    r = client.post("/tokenize", json={"inputs": "bank", "add_special_tokens": False, "prompt_name": "query"})
    [tokens] = r.json()
    assert "".join(t["text"] for t in tokens) == "query:bank" and tokens[-1]["start"] == len("query: ")
    r = client.post("/tokenize", json={"inputs": ["a", "b c"]}, headers={"Accept": NDJSON})
    assert [len(json.loads(line)) for line in r.text.splitlines()] == [3, 4]
    r = client.post("/tokenize", json={"inputs": "a"}, headers={"Accept": OCTET})
    assert r.status_code == 406 and "application/json" in r.json()["error"]


def test_decode_turns_ids_back_into_text(client: TestClient, model: StaticSentenceTransformer) -> None:
    ids = model.tokenizer.encode("money bank", add_special_tokens=False).ids
    r = client.post("/decode", json={"ids": ids})
    assert r.status_code == 200 and r.json() == ["money bank"]
    added = sorted(model.tokenizer.get_added_tokens_decoder())[:1]  # e.g. [PAD]: a special token
    r = client.post("/decode", json={"ids": [added + ids, ids[1:2]], "skip_special_tokens": False})
    assert r.json() == [model.tokenizer.decode(added + ids, skip_special_tokens=False), "bank"]
    r = client.post("/decode", json={"ids": [added + ids]})
    assert r.json() == [model.tokenizer.decode(added + ids, skip_special_tokens=True)]
    vocab = model.tokenizer.get_vocab_size(with_added_tokens=True)
    for bad, needle in (([vocab], f"0..{vocab - 1}"), ([-1], "not a token id"), ([], "empty"), ([[1], 2], "ids[1]")):
        r = client.post("/decode", json={"ids": bad})
        assert r.status_code == 422 and needle in r.json()["error"], (bad, r.text)


# ----------------------------------------------------------------------------- /v1/models, /metrics
def test_v1_models_lists_the_served_name(client: TestClient) -> None:
    """OpenAI-compatible tools probe ``GET /v1/models`` (was a 404)."""
    r = client.get("/v1/models")
    assert r.status_code == 200
    [entry] = r.json()["data"]
    assert r.json()["object"] == "list" and entry["id"] == "my-embedder" and entry["object"] == "model"
    assert isinstance(entry["created"], int) and entry["owned_by"] == "staticst"
    assert client.post("/v1/embeddings", json={"input": "a"}).json()["model"] == "my-embedder"


def test_metrics_are_prometheus_text_by_route_and_status(model: StaticSentenceTransformer) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    with TestClient(create_app(model)) as c:
        for _ in range(3):
            assert c.post("/embed", json={"inputs": ["a", "b", "c"]}).status_code == 200
        assert c.post("/embed", json={"inputs": 5}).status_code == 422
        assert c.post("/", json={"inputs": {"source_sentence": "a", "sentences": ["b"]}}).status_code == 200
        for i in range(50):  # unknown paths share one label: a client cannot grow the label set
            assert c.get(f"/no/such/path/{i}").status_code == 404
        assert c.get("/embed").status_code == 405
        for i in range(5):  # nor can made-up methods on a known path
            assert c.request(f"X{i}", "/embed").status_code == 405
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in parser.text_string_to_metric_families(r.text)}
    counts = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in families["staticst_requests"].samples
    }
    assert counts[("/embed", "POST", "200")] == 3 and counts[("/embed", "POST", "422")] == 1
    assert counts[("/", "POST", "200")] == 1 and counts[("unmatched", "any", "404")] == 50
    assert counts[("/embed", "GET", "405")] == 1 and counts[("/embed", "other", "405")] == 5
    timed = {s.labels["route"] for s in families["staticst_request_duration_seconds"].samples}
    assert "unmatched" not in timed  # answered by Starlette, not by a route handler: counted, not timed
    assert not [s for s in families["staticst_request_duration_seconds"].samples if s.labels["method"] != "POST"][:0]
    latency = [
        s
        for s in families["staticst_request_duration_seconds"].samples
        if s.labels.get("route") == "/embed" and s.labels.get("method") == "POST"
    ]
    buckets = [s.value for s in latency if s.name.endswith("_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == 4  # cumulative, +Inf holds every request
    inputs = {s.name: s.value for s in families["staticst_request_inputs"].samples if s.labels.get("route") == "/embed"}
    assert inputs["staticst_request_inputs_count"] == 3 and inputs["staticst_request_inputs_sum"] == 9
    [in_flight] = families["staticst_requests_in_flight"].samples
    assert in_flight.value == 0  # /metrics itself is answered outside the counted POST handlers
    [info] = families["staticst_model_info"].samples
    assert info.labels == {"model": "minishlab/potion-base-8M", "dim": "256"}
