"""The real clients users already have, against ``staticst serve`` on a loopback port.

``openai`` (float, base64, ``dimensions``, ``models.list``, errors), ``huggingface_hub.InferenceClient``
with only a ``base_url`` (``feature_extraction`` and ``sentence_similarity``, which post to ``/``) and
``langchain_openai.OpenAIEmbeddings``. No network: every base URL is the local server, every key a fake. Each
vector is compared bit for bit with ``model.encode`` (normalised as the route defines) in this process.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the server extra is not installed: pip install 'staticst[server]'")

import openai  # noqa: E402
from huggingface_hub import InferenceClient  # noqa: E402
from langchain_openai import OpenAIEmbeddings  # noqa: E402

from staticst import StaticSentenceTransformer  # noqa: E402
from tests._live import free_port, same_bits, start_serve, stop  # noqa: E402
from tests.test_server import TEXTS  # noqa: E402

NAME = "potion-test"
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """``staticst serve`` (the CLI, built-in model) on 127.0.0.1, for the whole module."""
    port = free_port()
    proc = start_serve(port, "--served-model-name", NAME)
    base = f"http://127.0.0.1:{port}"
    try:
        yield base
    finally:
        assert stop(proc) == 0


def rows(values: object) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def vectors(items: list[Any]) -> np.ndarray:
    """OpenAI embeddings as rows: lists of floats, or base64 strings of little-endian float32."""
    if items and isinstance(items[0], str):
        return np.stack([np.frombuffer(base64.b64decode(item), dtype="<f4").astype(np.float32) for item in items])
    return rows(items)


# ----------------------------------------------------------------------------- openai
@pytest.fixture(scope="module")
def oai(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="not-a-key", timeout=TIMEOUT, max_retries=0)


@pytest.mark.parametrize("encoding_format", [None, "float", "base64"])
@pytest.mark.parametrize("dimensions", [None, 64])
def test_openai_client_embeddings(
    oai: openai.OpenAI, model: StaticSentenceTransformer, encoding_format: str | None, dimensions: int | None
) -> None:
    """The client's default asks for base64 and decodes it itself; an explicit base64 is handed over as the
    string; float is JSON numbers. All are encode's bits."""
    kwargs: dict[str, object] = {}
    if encoding_format is not None:
        kwargs["encoding_format"] = encoding_format
    if dimensions is not None:
        kwargs["dimensions"] = dimensions
    response = oai.embeddings.create(input=TEXTS, model="anything", **kwargs)  # type: ignore[arg-type]
    assert response.model == NAME
    assert [d.index for d in response.data] == list(range(len(TEXTS)))
    assert response.usage.prompt_tokens == response.usage.total_tokens > 0
    expected = model.encode(TEXTS, normalize_embeddings=True, truncate_dim=dimensions)
    same_bits(vectors([d.embedding for d in response.data]), expected)
    one = oai.embeddings.create(input=TEXTS[0], model=NAME, **kwargs)  # type: ignore[arg-type]
    same_bits(vectors([one.data[0].embedding])[0], expected[0])


def test_openai_client_lists_the_model_and_shows_errors(oai: openai.OpenAI) -> None:
    assert [m.id for m in oai.models.list()] == [NAME]
    with pytest.raises(openai.UnprocessableEntityError, match="empty list"):
        oai.embeddings.create(input=[], model=NAME)
    with pytest.raises(openai.UnprocessableEntityError, match="1..256"):
        oai.embeddings.create(input="a", model=NAME, dimensions=1000)


# ----------------------------------------------------------------------------- huggingface_hub
@pytest.fixture(scope="module")
def hf(url: str) -> InferenceClient:
    return InferenceClient(base_url=url, api_key="hf_not_a_token", timeout=TIMEOUT)


def test_huggingface_feature_extraction_posts_to_the_root(
    hf: InferenceClient, model: StaticSentenceTransformer
) -> None:
    got = hf.feature_extraction(TEXTS)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 256)
    same_bits(got, model.encode(TEXTS, normalize_embeddings=True))  # TEI's default: normalize true
    one = hf.feature_extraction(TEXTS[1])
    same_bits(one, model.encode(TEXTS[1:2], normalize_embeddings=True))
    options = hf.feature_extraction(TEXTS, normalize=False, dimensions=32, truncate=True, truncation_direction="left")
    same_bits(options, model.encode(TEXTS, truncate_dim=32))  # the texts are short: no truncation happens


def test_huggingface_sentence_similarity_posts_to_the_root(
    hf: InferenceClient, model: StaticSentenceTransformer
) -> None:
    source, others = TEXTS[2], [TEXTS[0], TEXTS[1], TEXTS[4]]
    scores = hf.sentence_similarity(source, other_sentences=others)
    expected = np.asarray(model.similarity(model.encode([source]), model.encode(others)), dtype=np.float32).reshape(-1)
    same_bits(rows(scores), expected)
    assert scores[1] > scores[0]  # the money sentence is closer to the other bank sentence than to the guitar


# ----------------------------------------------------------------------------- langchain
@pytest.mark.parametrize("dimensions", [None, 128])
def test_langchain_openai_embeddings(url: str, model: StaticSentenceTransformer, dimensions: int | None) -> None:
    embedder = OpenAIEmbeddings(
        model=NAME,
        base_url=f"{url}/v1",
        api_key="not-a-key",  # type: ignore[arg-type]
        check_embedding_ctx_length=False,  # send the texts themselves, not tiktoken ids
        dimensions=dimensions,
        max_retries=0,
        timeout=TIMEOUT,
    )
    expected = model.encode(TEXTS, normalize_embeddings=True, truncate_dim=dimensions)
    same_bits(rows(embedder.embed_documents(TEXTS)), expected)
    same_bits(rows(embedder.embed_query(TEXTS[3])), expected[3])
