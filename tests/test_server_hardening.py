"""Hardening of the HTTP service: no crash, no silently wrong vector, no 500.

* Bad input of every JSON type and size in every field of every route is a 4xx in the route's error style,
  and the keep-alive connection stays usable (a property test over a real uvicorn server).
* ``usage`` of ``/v1/embeddings`` is counted by ``model.encode_with_usage``, in the call that embeds (in the
  worker thread for a large request), and equals the tokenizer's count.
* ``/info`` names the served model, never its path; a body without Content-Type is a 415 (as
  text-embeddings-inference answers); the ``charset`` of the Content-Type is honoured or refused by name.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the server extra is not installed: pip install 'staticst[server]'")
jsonschema = pytest.importorskip("jsonschema")

import httpx  # noqa: E402
from hypothesis import HealthCheck, event, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from staticst import StaticSentenceTransformer  # noqa: E402
from staticst.server import create_app  # noqa: E402
from staticst.server._errors import OPENAI_ERRORS, TEI_ERRORS  # noqa: E402
from staticst.server._routes import ROUTES  # noqa: E402
from staticst.server._spec import Field, Post  # noqa: E402
from tests._live import LiveServer, same_bits  # noqa: E402
from tests.test_server import TEXTS  # noqa: E402

MAX_BATCH = 16
MAX_INPUT_CHARS = 300
MAX_BODY_BYTES = 64 * 1024
TIMEOUT = 20.0
POSTS = [r for r in ROUTES if isinstance(r, Post)]
_SAMPLES: dict[str, Any] = {  # a valid value of each field kind
    "texts": "a",
    "text": "a",
    "sentences": ["b"],
    "bool": True,
    "dimension": 1,
    "prompt-name": "query",
    "string": "a",
    "token-ids": [1, 2],
}


def minimal(fields: tuple[Field, ...]) -> dict[str, Any]:
    """A valid body with the required fields only, built from the field kinds (so new routes are covered)."""
    out: dict[str, Any] = {}
    for f in fields:
        if f.required:
            out[f.name] = (
                minimal(f.fields) if f.kind == "object" else f.values[0] if f.kind == "enum" else _SAMPLES[f.kind]
            )
    return out


# (path, body name) -> a valid body of each route; routes sharing a path ("/") have one body each
MINIMAL: dict[tuple[str, str], dict[str, Any]] = {(r.path, r.body.name): minimal(r.body.fields) for r in POSTS}
STYLES = {r.path: r.errors for r in POSTS}


@pytest.fixture(scope="module", params=["uvicorn", "staticst-serve"])
def live(request: pytest.FixtureRequest, model: StaticSentenceTransformer) -> Iterator[Any]:
    """The app under plain uvicorn, and under the configuration ``staticst serve`` runs (its own protocol)."""
    app = create_app(model, max_batch=MAX_BATCH, max_input_chars=MAX_INPUT_CHARS, max_body_bytes=MAX_BODY_BYTES)
    if request.param == "uvicorn":
        with LiveServer(app) as server:
            yield server
    else:
        with LiveServer(app, configured=True) as configured:
            yield configured


def _field_paths(fields: tuple[Field, ...], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field of a body, nested object fields included, as key paths."""
    paths = []
    for f in fields:
        paths.append((*prefix, f.name))
        if f.kind == "object":
            paths += _field_paths(f.fields, (*prefix, f.name))
    return paths


# (route path, body name, key path in the body); () replaces the whole body, a path ending in "zz_unknown"
# adds a field; a nested optional object's fields are reached through an empty object
TARGETS = [(r.path, r.body.name, p) for r in POSTS for p in [(), *_field_paths(r.body.fields), ("zz_unknown",)]]
_HOLE = "\x00__value__\x00"


def body_with(path: str, name: str, keys: tuple[str, ...], fragment: str) -> bytes:
    """The route's minimal body with the JSON text ``fragment`` at ``keys`` (raw: it may nest 1100 deep)."""
    if not keys:
        return fragment.encode()
    body = json.loads(json.dumps(MINIMAL[(path, name)]))
    node = body
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = _HOLE
    return json.dumps(body).replace(json.dumps(_HOLE), fragment).encode()


def exchange(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    """POST ``body`` on a fresh connection, then GET /health on the same one: it must still be open."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        assert not response.will_close, f"{response.status}: the server closed the connection: {payload[:300]!r}"
        sock = conn.sock
        conn.request("GET", "/health")
        health = conn.getresponse()
        assert health.status == 200 and health.read() == b'{"status":"ok"}'
        assert conn.sock is sock, "the keep-alive connection was not reused"
        return response.status, payload
    finally:
        conn.close()


def check_answer(path: str, status: int, payload: bytes) -> Any:
    """A status below 500 with a JSON body; an error body in the route's documented style."""
    assert status < 500, (status, payload[:500])
    decoded = json.loads(payload)
    if status >= 400:
        style = STYLES[path]
        jsonschema.validate(decoded, style.schema)
        assert status in (400, 413, 415, 422), (status, decoded)
    return decoded


# ----------------------------------------------------------------------------- item 12: never a 500
HUGE = [
    ("dimensions-1e30", "/v1/embeddings", {"input": "a", "dimensions": 1e30}),
    ("dimensions-minus-1e30", "/v1/embeddings", {"input": "a", "dimensions": -1e30}),
    ("dimensions-2**70", "/v1/embeddings", {"input": "a", "dimensions": 2**70}),
    ("truncate-dim-2**70", "/embed", {"inputs": "a", "truncate_dim": 2**70}),
    ("truncate-dim-1e308", "/embed", {"inputs": "a", "truncate_dim": 1.7976931348623157e308}),
    ("truncate-dim-minus-2**64", "/embed", {"inputs": "a", "truncate_dim": -(2**64)}),
]


@pytest.mark.parametrize(("path", "body"), [c[1:] for c in HUGE], ids=[c[0] for c in HUGE])
def test_huge_numbers_are_a_422_on_a_kept_connection(live: Any, path: str, body: dict[str, Any]) -> None:
    status, payload = exchange(live.port, path, json.dumps(body).encode())
    error = check_answer(path, status, payload)
    assert status == 422
    message = error["error"]["message"] if path == "/v1/embeddings" else error["error"]
    assert "out of range" in message and "1..256" in message


def _checked_field(route: Post) -> str:
    """A field that refuses both a nested array and a long string (not a free-form string)."""
    return next(f.name for f in route.body.fields if f.kind in ("enum", "prompt-name", "bool", "dimension"))


@pytest.mark.parametrize("route", POSTS, ids=[f"{r.path}:{r.body.name}" for r in POSTS])
def test_deep_and_long_values_are_summarised_not_echoed(live: Any, route: Post) -> None:
    """An array nested 1000 deep or a 20,000-character string in a checked field: a short 4xx message."""
    path, name, field = route.path, route.body.name, _checked_field(route)
    for fragment in (
        "[" * 1000 + "]" * 1000,
        json.dumps("é" * 20_000, ensure_ascii=False),
        '{"k": ' * 900 + "1" + "}" * 900,
    ):
        status, payload = exchange(live.port, path, body_with(path, name, (field,), fragment))
        error = check_answer(path, status, payload)
        message = error["error"]["message"] if path == "/v1/embeddings" else error["error"]
        assert status == 422 and len(message) < 400, message
    key = "k" * 50_000  # an unknown field with a huge name
    status, payload = exchange(live.port, path, json.dumps({**MINIMAL[(path, name)], key: 1}).encode())
    assert status == 422 and len(payload) < 1000


def test_error_bodies_always_serialise() -> None:
    """Whatever a check puts in ``value``, both error styles write it (or drop it), never raise."""
    from staticst.server._errors import RequestError
    from staticst.server._media import error_response

    deep: Any = []
    for _ in range(2000):
        deep = [deep]
    for value in (2**70, -(2**64), float("inf"), float("nan"), deep, {"k": deep}, "x" * 100_000, "\ud800"):
        for style in (TEI_ERRORS, OPENAI_ERRORS):
            message = "bad \ud800" if value == "\ud800" else f"bad {type(value).__name__}"  # a surrogate too
            response = error_response(RequestError(422, message, param="p", value=value), style)
            body = json.loads(response.body)
            jsonschema.validate(body, style.schema)
            assert len(response.body) < 1000


def _nested(depth: int, brackets: str) -> str:
    return brackets[0] * depth + ("1" if brackets == "{}" else "") + brackets[1] * depth


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, -1, 1, 64, 256, 257, 64.0, 2**63, 2**64, 2**70, 1e30, -1e30, 1e308, -0.0, 1e-300])
    | st.text()
    | st.sampled_from(["", "query", "passage", "float", "base64", "\x00", "🙂", "中文", "\u202e", " "])
    | st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "🙂", "\x00", "\n"]), st.integers(0, 40_000))
)
_VALUES = st.recursive(
    _LEAVES,
    lambda kids: st.lists(kids, max_size=6) | st.dictionaries(st.text(max_size=8), kids, max_size=6),
    max_leaves=24,
)
FRAGMENTS = (
    _VALUES.map(json.dumps)
    | st.builds(_nested, st.integers(1, 1100), st.sampled_from(["[]", "{}"]))
    | st.sampled_from(['"\\ud800"', "1e400", "-1e400", "NaN", "[1,]", '"a', "18446744073709551616", "1" * 5000])
)


@settings(
    max_examples=800,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(target=st.sampled_from(TARGETS), fragment=FRAGMENTS)
@example(target=("/v1/embeddings", "OpenAIEmbeddingsRequest", ("dimensions",)), fragment="1e30")
@example(target=("/embed", "EmbedRequest", ("truncate_dim",)), fragment=str(2**70))
@example(target=("/v1/embeddings", "OpenAIEmbeddingsRequest", ("encoding_format",)), fragment="[" * 1000 + "]" * 1000)
@example(target=("/embed", "EmbedRequest", ("prompt_name",)), fragment="[" * 1000 + "]" * 1000)
@example(target=("/", "EmbedRequest", ("dimensions",)), fragment="1e30")
@example(target=("/", "SimilarityRequest", ("inputs",)), fragment='"a string: routed to the embed body"')
@example(target=("/", "SimilarityRequest", ("parameters", "truncation_direction")), fragment="[" * 1000 + "]" * 1000)
@example(target=("/decode", "DecodeRequest", ("ids",)), fragment=str([2**70, -1]))
@example(target=("/decode", "DecodeRequest", ("ids",)), fragment="[[1], [" + "1," * 400 + "1]]")
@example(target=("/tokenize", "TokenizeRequest", ("inputs",)), fragment=json.dumps(["🙂" * 300, "\x00"]))
def test_property_any_value_in_any_field_is_below_500_and_keeps_the_connection(
    live: Any, target: tuple[str, str, tuple[str, ...]], fragment: str
) -> None:
    path, name, keys = target
    status, payload = exchange(live.port, path, body_with(path, name, keys, fragment))
    check_answer(path, status, payload)
    event(f"status {status}")


def test_the_property_test_covers_every_post_route_and_field() -> None:
    """New routes and fields enter the property test through the table: nothing to list by hand."""
    covered = {(path, name) for path, name, _ in TARGETS}
    assert covered == {(r.path, r.body.name) for r in POSTS}
    assert {"/", "/invocations", "/tokenize", "/decode"} <= {path for path, _ in covered}
    keys = {keys for path, name, keys in TARGETS if path == "/similarity"}
    assert {("parameters", "truncate"), ("parameters", "truncation_direction"), ("parameters", "prompt_name")} <= keys


# ----------------------------------------------------------------------------- item 13: usage off the loop
def test_openai_usage_is_the_tokenizer_count(live: Any, model: StaticSentenceTransformer) -> None:
    with httpx.Client(base_url=live.url, timeout=TIMEOUT) as client:
        for texts in (TEXTS, TEXTS[:1], ["🙂 emoji", ""]):
            r = client.post("/v1/embeddings", json={"input": texts, "dimensions": 32})
            assert r.status_code == 200, r.text
            assert r.json()["usage"] == {"prompt_tokens": len(model.tokenize(texts)["input_ids"])} | {
                "total_tokens": len(model.tokenize(texts)["input_ids"])
            }
            same_bits(
                np.asarray([d["embedding"] for d in r.json()["data"]], dtype=np.float32),
                model.encode(texts, normalize_embeddings=True, truncate_dim=32),
            )


def test_openai_usage_counts_the_default_prompt() -> None:
    m = StaticSentenceTransformer()
    m.prompts = {"query": "query: "}
    m.default_prompt_name = "query"
    with TestClient(create_app(m)) as client:
        r = client.post("/v1/embeddings", json={"input": TEXTS})
    assert r.status_code == 200
    expected = len(m.tokenize(["query: " + t for t in TEXTS])["input_ids"])
    assert r.json()["usage"]["prompt_tokens"] == expected > len(m.tokenize(TEXTS)["input_ids"])


def test_openai_usage_is_counted_in_the_encoding_call_in_the_worker_thread() -> None:
    """A large request: one model call, ``encode_with_usage``, in a worker thread; nothing tokenizes on the loop."""
    m = StaticSentenceTransformer()
    calls: list[tuple[str, int]] = []

    def recorded(name: str) -> Any:
        original = getattr(m, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, threading.get_ident()))
            return original(*args, **kwargs)

        return call

    tokenize = m.tokenize
    for name in ("encode", "encode_with_usage", "tokenize"):
        setattr(m, name, recorded(name))
    texts = [f"text number {i}: " + TEXTS[i % len(TEXTS)] * 4 for i in range(300)]  # > 64 texts: off the loop
    with LiveServer(create_app(m)) as live, httpx.Client(base_url=live.url, timeout=TIMEOUT) as client:
        r = client.post("/v1/embeddings", json={"input": texts})
        loop_thread = live.thread.ident
    assert r.status_code == 200
    assert [name for name, _ in calls] == ["encode_with_usage"]
    assert calls[0][1] != loop_thread
    assert r.json()["usage"]["prompt_tokens"] == len(tokenize(texts)["input_ids"])


# ----------------------------------------------------------------------------- item 15: /info, Content-Type, charset
def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_info_names_the_served_model_never_its_path(shared_model: Any) -> None:
    folder: Path = shared_model("potion-base-2M")
    m = StaticSentenceTransformer(str(folder))
    with TestClient(create_app(m)) as client:
        info = client.get("/info").json()
        openai = client.post("/v1/embeddings", json={"input": "a"}).json()
    assert info["model"] == openai["model"] == "potion-base-2M"
    assert "path" not in info
    assert not [s for s in _strings(info) if s.startswith("/") or str(folder) in s]
    with TestClient(create_app(m, model_name="my-embedder")) as client:
        assert client.get("/info").json()["model"] == "my-embedder"
        assert client.post("/v1/embeddings", json={"input": "a"}).json()["model"] == "my-embedder"
    with TestClient(create_app(StaticSentenceTransformer())) as client:  # the built-in model: its Hub id
        assert client.get("/info").json()["model"] == "minishlab/potion-base-8M"


@pytest.mark.parametrize(("path", "name"), list(MINIMAL), ids=[f"{p}:{n}" for p, n in MINIMAL])
def test_a_body_without_content_type_is_415_as_in_tei(live: Any, path: str, name: str) -> None:
    with httpx.Client(base_url=live.url, timeout=TIMEOUT) as client:
        r = client.post(path, content=json.dumps(MINIMAL[(path, name)]).encode())
    assert "content-type" not in r.request.headers
    assert r.status_code == 415, r.text
    error = r.json()
    jsonschema.validate(error, STYLES[path].schema)
    message = error["error"]["message"] if path == "/v1/embeddings" else error["error"]
    assert message == "Expected request with `Content-Type: application/json`"


@pytest.mark.parametrize(
    ("charset", "encoding"),
    [("latin-1", "latin-1"), ("ISO-8859-1", "latin-1"), ("windows-1252", "cp1252"), ("utf-16", "utf-16"),
     ("UTF-8", "utf-8"), ('"utf-8"', "utf-8")],
)  # fmt: skip
def test_a_declared_charset_is_honoured(
    live: Any, model: StaticSentenceTransformer, charset: str, encoding: str
) -> None:
    texts = ["café crème", "naïve façade", "plain"]
    body = json.dumps({"inputs": texts}, ensure_ascii=False).encode(encoding)
    with httpx.Client(base_url=live.url, timeout=TIMEOUT) as client:
        r = client.post("/embed", content=body, headers={"Content-Type": f"application/json; charset={charset}"})
    assert r.status_code == 200, r.text
    same_bits(np.asarray(r.json(), dtype=np.float32), model.encode(texts, normalize_embeddings=True))


def test_charset_errors_name_the_charset_and_the_fix(live: Any) -> None:
    latin1 = json.dumps({"inputs": ["café"]}, ensure_ascii=False).encode("latin-1")
    with httpx.Client(base_url=live.url, timeout=TIMEOUT) as client:
        r = client.post("/embed", content=latin1, headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        assert "not valid UTF-8" in r.json()["error"] and "charset=latin-1" in r.json()["error"]
        assert "surrogates" not in r.json()["error"]
        for charset in ("ebcdic-cp-be", "rot13", "no-such-charset", "x" * 5000):
            r = client.post(
                "/embed", content=b'{"inputs": "a"}', headers={"Content-Type": f"application/json; charset={charset}"}
            )
            assert r.status_code == 415, (charset, r.text)
            assert charset[:40] in r.json()["error"] and "UTF-8" in r.json()["error"]
            assert r.json()["error_type"] == "unsupported_charset"
        r = client.post("/embed", content=latin1, headers={"Content-Type": "application/json; charset=us-ascii"})
        assert r.status_code == 400 and "ascii" in r.json()["error"]
