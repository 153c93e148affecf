"""The HTTP service, tested through a real uvicorn server on 127.0.0.1 (ephemeral ports only).

Every response is compared bit for bit with ``model.encode`` / ``model.similarity`` called directly.
Every request has a timeout; every loop is bounded in count.
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the server extra is not installed: pip install 'staticst[server]'")

import httpx  # noqa: E402

from staticst import StaticSentenceTransformer  # noqa: E402
from staticst.server import add_serve_arguments, create_app, negotiate  # noqa: E402
from staticst.server._validation import RequestError  # noqa: E402
from tests._live import LiveServer, free_port, same_bits, start_serve, stop  # noqa: E402

MAX_BATCH = 32
MAX_INPUT_CHARS = 400
MAX_BODY_BYTES = 32 * 1024
STREAM_CHUNK = 8
TIMEOUT = 20.0
OCTET = "application/octet-stream"
NDJSON = "application/x-ndjson"
TEXTS = [
    "A man is playing a guitar.",
    "The bank of the river was flooded.",
    "She deposited money at the bank.",
    "",
    "UPPER case and Ünïcödé text, with punctuation!?",
    "a " * 150,
    "🙂 emoji and 中文 characters",
]


@pytest.fixture(scope="module")
def live(model: StaticSentenceTransformer) -> Iterator[LiveServer]:
    app = create_app(
        model,
        max_batch=MAX_BATCH,
        max_input_chars=MAX_INPUT_CHARS,
        max_body_bytes=MAX_BODY_BYTES,
        stream_chunk=STREAM_CHUNK,
    )
    with LiveServer(app) as server:
        yield server


@pytest.fixture()
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=TIMEOUT) as c:
        yield c


def json_matrix(payload: Any) -> np.ndarray:
    return np.asarray(payload, dtype=np.float64).astype(np.float32)


# ----------------------------------------------------------------------------- routes and formats
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"normalize": False},
        {"normalize": True, "truncate_dim": 64},
        {"prompt_name": "query"},
        {"normalize": False, "truncate_dim": 32, "prompt_name": "passage"},
    ],
)
def test_embed_json_is_encode_bit_for_bit(
    client: httpx.Client, model: StaticSentenceTransformer, options: dict[str, Any]
) -> None:
    r = client.post("/embed", json={"inputs": TEXTS, **options})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    expected = model.encode(
        TEXTS,
        normalize_embeddings=options.get("normalize", True),
        truncate_dim=options.get("truncate_dim"),
        prompt_name=options.get("prompt_name"),
    )
    same_bits(json_matrix(r.json()), expected)


def test_embed_single_string_gives_one_row(client: httpx.Client, model: StaticSentenceTransformer) -> None:
    r = client.post("/embed", json={"inputs": TEXTS[0]})
    assert r.status_code == 200
    got = json_matrix(r.json())
    assert got.shape == (1, model.get_sentence_embedding_dimension())
    same_bits(got[0], model.encode(TEXTS[0], normalize_embeddings=True))
    same_bits(got, model.encode(TEXTS[:1], normalize_embeddings=True))


@pytest.mark.parametrize("truncate_dim", [None, 100])
def test_embed_binary_is_the_raw_float32_buffer(
    client: httpx.Client, model: StaticSentenceTransformer, truncate_dim: int | None
) -> None:
    r = client.post("/embed", json={"inputs": TEXTS, "truncate_dim": truncate_dim}, headers={"Accept": OCTET})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == OCTET
    expected = model.encode(TEXTS, normalize_embeddings=True, truncate_dim=truncate_dim)
    assert r.headers["x-embedding-shape"] == f"{expected.shape[0]},{expected.shape[1]}"
    assert r.headers["x-embedding-dtype"] == "<f4"
    assert r.content == expected.astype("<f4").tobytes()
    rows, dim = map(int, r.headers["x-embedding-shape"].split(","))
    same_bits(np.frombuffer(r.content, dtype="<f4").reshape(rows, dim).astype(np.float32), expected)


@pytest.mark.parametrize("count", [3, 3 * STREAM_CHUNK + 5])
def test_embed_json_lines_one_row_per_line(client: httpx.Client, model: StaticSentenceTransformer, count: int) -> None:
    texts = [f"{TEXTS[i % len(TEXTS)]} #{i}" for i in range(count)]
    with client.stream("POST", "/embed", json={"inputs": texts}, headers={"Accept": NDJSON}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == NDJSON
        streamed = "content-length" not in r.headers
        lines = [line for line in r.iter_lines() if line]
    assert streamed == (count > STREAM_CHUNK)  # large batches are streamed chunk by chunk
    assert len(lines) == count
    same_bits(json_matrix([json.loads(line) for line in lines]), model.encode(texts, normalize_embeddings=True))


def test_accept_with_q_values_picks_the_preferred_format(client: httpx.Client) -> None:
    r = client.post(
        "/embed", json={"inputs": "x"}, headers={"Accept": f"application/json;q=0.5, {OCTET};q=0.9, text/html"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == OCTET


def test_negotiate() -> None:
    assert negotiate(None) == "application/json"
    assert negotiate("*/*") == "application/json"
    assert negotiate(NDJSON) == NDJSON
    assert negotiate(f"text/html, {NDJSON};q=0.2") == NDJSON
    with pytest.raises(RequestError) as err:
        negotiate("text/csv")
    assert err.value.status == 406


@pytest.mark.parametrize("dimensions", [None, 128])
def test_openai_float(client: httpx.Client, model: StaticSentenceTransformer, dimensions: int | None) -> None:
    body: dict[str, Any] = {"input": TEXTS[:3], "model": "anything"}
    if dimensions:
        body["dimensions"] = dimensions
    r = client.post("/v1/embeddings", json=body)
    assert r.status_code == 200, r.text
    payload = r.json()
    assert payload["object"] == "list"
    assert payload["model"] == client.get("/info").json()["model"]
    assert [d["index"] for d in payload["data"]] == [0, 1, 2]
    assert all(d["object"] == "embedding" for d in payload["data"])
    assert payload["usage"]["prompt_tokens"] == payload["usage"]["total_tokens"] > 0
    expected = model.encode(TEXTS[:3], normalize_embeddings=True, truncate_dim=dimensions)
    same_bits(json_matrix([d["embedding"] for d in payload["data"]]), expected)
    norms = np.linalg.norm(expected, axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)  # OpenAI semantics: unit vectors even when shortened


def test_openai_base64_and_single_string(client: httpx.Client, model: StaticSentenceTransformer) -> None:
    r = client.post("/v1/embeddings", json={"input": TEXTS[1], "encoding_format": "base64"})
    assert r.status_code == 200, r.text
    [item] = r.json()["data"]
    got = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4").astype(np.float32)
    same_bits(got, model.encode(TEXTS[1], normalize_embeddings=True))


def test_openai_binary_and_json_lines(client: httpx.Client, model: StaticSentenceTransformer) -> None:
    expected = model.encode(TEXTS, normalize_embeddings=True)
    r = client.post("/v1/embeddings", json={"input": TEXTS}, headers={"Accept": OCTET})
    assert r.status_code == 200
    assert r.content == expected.astype("<f4").tobytes()
    r = client.post("/v1/embeddings", json={"input": TEXTS}, headers={"Accept": NDJSON})
    assert r.status_code == 200
    items = [json.loads(line) for line in r.text.splitlines()]
    assert [i["index"] for i in items] == list(range(len(TEXTS)))
    same_bits(json_matrix([i["embedding"] for i in items]), expected)


def test_similarity(client: httpx.Client, model: StaticSentenceTransformer) -> None:
    source, sentences = TEXTS[2], TEXTS[:2] + TEXTS[4:]
    expected = np.asarray(model.similarity(model.encode([source]), model.encode(sentences)), dtype=np.float32).reshape(
        -1
    )
    r = client.post("/similarity", json={"inputs": {"source_sentence": source, "sentences": sentences}})
    assert r.status_code == 200, r.text
    same_bits(json_matrix(r.json()), expected)
    r = client.post(
        "/similarity", json={"inputs": {"source_sentence": source, "sentences": sentences}}, headers={"Accept": OCTET}
    )
    assert r.headers["x-embedding-shape"] == str(len(sentences))
    assert r.content == expected.astype("<f4").tobytes()
    # the money sentence is closer to the other bank sentence than to the guitar one
    assert expected[1] > expected[0]


def test_health_info_openapi(client: httpx.Client, model: StaticSentenceTransformer) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["dim"] == model.get_sentence_embedding_dimension()
    assert info["layout"] == model.info()["layout"]
    assert info["limits"] == {
        "max_batch": MAX_BATCH,
        "max_input_chars": MAX_INPUT_CHARS,
        "max_body_bytes": MAX_BODY_BYTES,
        "max_tokenize_tokens": 262_144,
    }
    assert info["prompt_names"] == ["passage", "query"]
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/embed", "/v1/embeddings", "/similarity", "/health", "/info"} <= set(doc["paths"])
    inputs = doc["components"]["schemas"]["EmbedRequest"]["properties"]["inputs"]["oneOf"][1]
    assert inputs["maxItems"] == MAX_BATCH
    assert inputs["items"]["maxLength"] == MAX_INPUT_CHARS


# ----------------------------------------------------------------------------- bad input
def _post_raw(client: httpx.Client, path: str, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post(path, content=content, headers={"Content-Type": "application/json", **(headers or {})})


BAD_CASES: list[tuple[str, str, Any, int, str | None]] = [
    # (id, path, body (bytes: raw, else JSON), expected status, text the error must contain)
    ("malformed-json", "/embed", b'{"inputs": ["a",', 400, "not valid JSON"),
    ("empty-body", "/embed", b"", 400, "empty"),
    ("not-an-object", "/embed", ["a"], 422, "JSON object"),
    ("missing-inputs", "/embed", {"normalize": True}, 422, "'inputs' is required"),
    ("inputs-wrong-type", "/embed", {"inputs": 5}, 422, "got integer"),
    ("inputs-item-wrong-type", "/embed", {"inputs": ["a", None]}, 422, "inputs[1] must be a string"),
    ("empty-list", "/embed", {"inputs": []}, 422, "empty list"),
    ("normalize-wrong-type", "/embed", {"inputs": "a", "normalize": "yes"}, 422, "normalize"),
    ("truncate-dim-zero", "/embed", {"inputs": "a", "truncate_dim": 0}, 422, "1..256"),
    ("truncate-dim-too-big", "/embed", {"inputs": "a", "truncate_dim": 10_000}, 422, "1..256"),
    ("truncate-dim-fraction", "/embed", {"inputs": "a", "truncate_dim": 2.5}, 422, "integer"),
    ("unknown-prompt", "/embed", {"inputs": "a", "prompt_name": "nope"}, 422, "'passage', 'query'"),
    ("unknown-field", "/embed", {"inputs": "a", "input_text": "b"}, 422, "input_text"),
    ("too-many-inputs", "/embed", {"inputs": ["a"] * (MAX_BATCH + 1)}, 413, f"limit is {MAX_BATCH}"),
    ("text-too-long", "/embed", {"inputs": ["ok", "x" * (MAX_INPUT_CHARS + 1)]}, 413, f"limit is {MAX_INPUT_CHARS}"),
    ("openai-token-ids", "/v1/embeddings", {"input": [[1, 2, 3]]}, 422, "token-id"),
    ("openai-bad-format", "/v1/embeddings", {"input": "a", "encoding_format": "int8"}, 422, "encoding_format"),
    ("openai-empty", "/v1/embeddings", {"input": []}, 422, "empty list"),
    ("openai-too-long", "/v1/embeddings", {"input": "y" * (MAX_INPUT_CHARS + 1)}, 413, "--max-input-chars"),
    ("similarity-shape", "/similarity", {"inputs": ["a", "b"]}, 422, "source_sentence"),
    ("similarity-no-sentences", "/similarity", {"inputs": {"source_sentence": "a", "sentences": []}}, 422, "empty"),
    (
        "similarity-too-many",
        "/similarity",
        {"inputs": {"source_sentence": "a", "sentences": ["b"] * MAX_BATCH}},
        413,
        f"limit is {MAX_BATCH - 1}",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_input_is_a_json_4xx_naming_the_problem(
    client: httpx.Client, path: str, body: Any, status: int, needle: str
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = _post_raw(client, path, content)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    error = r.json()
    if path == "/v1/embeddings":  # OpenAI's error shape, so OpenAI clients show the message
        error = {"error_type": error["error"]["code"], **error["error"], "error": error["error"]["message"]}
        assert r.json()["error"]["type"] == "invalid_request_error"
    assert needle in error["error"]
    assert error["error_type"]
    if status == 413:
        assert isinstance(error["limit"], int) and error["value"] > error["limit"]


def test_oversize_body_is_413_with_and_without_content_length(client: httpx.Client) -> None:
    # fewer texts than max_batch, fewer characters each than max_input_chars, but \x01 is 6 bytes in JSON
    big = json.dumps({"inputs": ["\x01" * (MAX_INPUT_CHARS - 10)] * (MAX_BATCH - 2)}).encode()
    assert len(big) > MAX_BODY_BYTES
    r = _post_raw(client, "/embed", big)
    assert r.status_code == 413
    assert r.json()["limit"] == MAX_BODY_BYTES
    assert str(MAX_BODY_BYTES) in r.json()["error"]

    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to check up front
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    r = client.post("/embed", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["limit"] == MAX_BODY_BYTES


def test_other_protocol_errors(client: httpx.Client) -> None:
    r = client.post("/embed", json={"inputs": "a"}, headers={"Accept": "text/csv"})
    assert r.status_code == 406 and "text/csv" in r.json()["error"]
    r = client.post("/embed", content=b"inputs=a", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    r = client.get("/embed")
    assert r.status_code == 405 and r.json()["error_type"] == "http"
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error_type"] == "http"


def test_abandoned_request_does_not_hang_the_worker(live: LiveServer, client: httpx.Client) -> None:
    """A client that promises a body and vanishes, or sends garbage, leaves the server serving."""
    for payload in (
        b'POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"inp',
        b"NOT HTTP AT ALL\r\n\r\n",
    ):
        with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
            sock.sendall(payload)
    r = client.post("/embed", json={"inputs": "still alive"})
    assert r.status_code == 200
    assert client.get("/health").status_code == 200


# ----------------------------------------------------------------------------- concurrency
def test_concurrent_clients_get_their_own_results(live: LiveServer, model: StaticSentenceTransformer) -> None:
    """16 clients x 12 requests at once, mixed formats and sizes; every answer checked."""

    def worker(k: int) -> int:
        checked = 0
        with httpx.Client(base_url=live.url, timeout=TIMEOUT) as c:
            for j in range(12):
                texts = [
                    f"client {k} request {j} text {i} {TEXTS[(k + i) % len(TEXTS)]}" for i in range(1 + (k * j) % 20)
                ]
                expected = model.encode(texts, normalize_embeddings=True)
                if j % 2:
                    r = c.post("/embed", json={"inputs": texts}, headers={"Accept": OCTET})
                    assert r.status_code == 200
                    assert r.content == expected.astype("<f4").tobytes()
                else:
                    r = c.post("/embed", json={"inputs": texts})
                    assert r.status_code == 200
                    same_bits(json_matrix(r.json()), expected)
                checked += 1
        return checked

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(worker, range(16), timeout=120))
    assert sum(results) == 16 * 12


# ----------------------------------------------------------------------------- processes: serve(), workers, shutdown
def test_sigterm_finishes_the_in_flight_request(model: StaticSentenceTransformer) -> None:
    """SIGTERM while a request's body is half sent: the request still completes correctly, then exit 0."""
    port = free_port()
    proc = start_serve(port)
    try:
        body = json.dumps({"inputs": TEXTS}).encode()
        head = (
            f"POST /embed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Accept: {OCTET}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(head + body[:10])
            time.sleep(1.0)  # the request is now in flight
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # shutdown has begun: the server waits for us
            assert proc.poll() is None
            sock.sendall(body[10:])
            response = b""
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                response += data
        header, _, payload = response.partition(b"\r\n\r\n")
        assert header.startswith(b"HTTP/1.1 200"), header
        assert payload == model.encode(TEXTS, normalize_embeddings=True).astype("<f4").tobytes()
        assert proc.wait(timeout=30) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    finally:
        stop(proc)


def test_serve_with_two_workers(model: StaticSentenceTransformer) -> None:
    port = free_port()
    proc = start_serve(port, "--workers", "2")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT) as c:
            for i in range(20):  # spread over both workers; each answer checked
                r = c.post(
                    "/embed", json={"inputs": [f"text {i}", TEXTS[i % len(TEXTS)]]}, headers={"Connection": "close"}
                )
                assert r.status_code == 200
                same_bits(
                    json_matrix(r.json()), model.encode([f"text {i}", TEXTS[i % len(TEXTS)]], normalize_embeddings=True)
                )
    finally:
        assert stop(proc) == 0


def test_add_serve_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args([])
    assert (args.model, args.host, args.port, args.workers) == (None, "127.0.0.1", 8080, 1)
    args = parser.parse_args(
        ["some/model", "--port", "0", "--workers", "2", "--max-batch", "10", "--max-input-chars", "99"]
    )
    assert (args.model, args.port, args.workers, args.max_batch, args.max_input_chars) == ("some/model", 0, 2, 10, 99)
    for bad in (["--workers", "0"], ["--port", "70000"], ["--max-batch", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_create_app_rejects_bad_limits(model: StaticSentenceTransformer) -> None:
    for kwargs in ({"max_batch": 0}, {"max_input_chars": -5}, {"max_body_bytes": 1.5}, {"max_batch": 1}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            create_app(model, **kwargs)  # type: ignore[arg-type]


def test_import_staticst_does_not_import_the_server_stack() -> None:
    code = (
        "import sys, staticst; staticst.StaticSentenceTransformer().encode(['a']); "
        "print(sorted(m for m in ('starlette', 'uvicorn', 'orjson', 'fastapi', 'staticst.server') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- schemathesis
def test_openapi_contract_with_schemathesis(live: LiveServer) -> None:
    """A bounded schemathesis run: positive and negative cases for every operation, validated against the doc."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.config import SchemathesisConfig
    from schemathesis.generation.modes import GenerationMode

    doc = httpx.get(f"{live.url}/openapi.json", timeout=TIMEOUT).json()
    # The issue allows 413 for limits (schemathesis' default list of "rejections" lacks it).
    config = SchemathesisConfig.from_dict(
        {
            "checks": {
                "negative_data_rejection": {"expected-statuses": ["400", "404", "405", "406", "413", "415", "422"]}
            }
        }
    )
    schema = schemathesis.openapi.from_dict(doc, config=config)
    ran = []
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if operation.method.upper() == "POST":
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=20,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                case.call_and_validate(base_url=live.url, timeout=TIMEOUT)

            check()
            ran.append((operation.label, str(mode)))
    from staticst.server._routes import ROUTES  # every operation of the table ran (POSTs also negative)
    from staticst.server._spec import Post

    ops = {f"{'POST' if isinstance(r, Post) else 'GET'} {r.path}" for r in ROUTES if r.path != "/openapi.json"}
    assert sorted(ran) == sorted([(op, "positive") for op in ops] + [(op, "negative") for op in ops if "POST" in op])
    assert {"POST /", "POST /invocations", "POST /tokenize", "GET /v1/models", "GET /metrics"} <= ops
