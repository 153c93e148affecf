"""The route table: every route of the service as one entry, with its body and its encode / render functions.

Adding a route is one entry in :data:`ROUTES` (its :class:`~staticst.server._spec.Body`, what it encodes,
how each format is rendered) plus those small functions; the app (:mod:`staticst.server._app`), the
validator and the OpenAPI document all read the table.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from starlette.responses import Response

from staticst.server._errors import OPENAI_ERRORS, TEI_ERRORS
from staticst.server._media import (
    JSON,
    NDJSON,
    NUMPY,
    OCTET,
    binary_response,
    json_response,
    ndjson_response,
)
from staticst.server._openapi import build_openapi
from staticst.server._spec import USAGE, Args, Body, EncodeCall, Field, Get, Post, Render, Route, Service

if TYPE_CHECKING:
    from staticst.model import StaticSentenceTransformer

__all__ = ["EMBED_BODY", "OPENAI_BODY", "ROUTES", "SIMILARITY_BODY"]

_VECTOR = {"type": "array", "items": {"type": "number"}}
_MATRIX = {"type": "array", "items": _VECTOR}
_PROMPT_NAME = Field("prompt_name", "prompt-name", "Prepend the model's prompt of this name.")
_TRUNCATE = Field(
    "truncate", "bool", "Accepted for compatibility; no effect (static models pool any number of tokens).", default=True
)


# ----------------------------------------------------------------------------- shared renderers
def _json(service: Service, args: Args, result: np.ndarray) -> Response:
    return json_response(result)


def _binary(service: Service, args: Args, result: np.ndarray) -> Response:
    return binary_response(result)


def _row_line(args: Args, i: int, row: np.ndarray) -> bytes:
    return orjson.dumps(row, option=NUMPY) + b"\n"


def _rows(service: Service, args: Args, result: np.ndarray) -> Response:
    return ndjson_response(b"".join(orjson.dumps(row, option=NUMPY) + b"\n" for row in result))


# ----------------------------------------------------------------------------- POST /embed
EMBED_BODY = Body(
    "EmbedRequest",
    (
        Field("inputs", "texts", "The texts to embed.", required=True),
        Field("normalize", "bool", "L2-normalise the embeddings (after truncate_dim).", default=True),
        Field("truncate_dim", "dimension", "Keep the first N dimensions (Matryoshka truncation)."),
        _PROMPT_NAME,
        _TRUNCATE,
    ),
    check_order=("inputs", "truncate_dim", "truncate", "normalize", "prompt_name"),
)


def _embed_encode(args: Args) -> EncodeCall:
    kwargs = {
        "normalize_embeddings": args["normalize"],
        "truncate_dim": args["truncate_dim"],
        "prompt_name": args["prompt_name"],
    }
    return args["inputs"], kwargs


# ----------------------------------------------------------------------------- POST /v1/embeddings
OPENAI_BODY = Body(
    "OpenAIEmbeddingsRequest",
    (
        Field("input", "texts", "The texts to embed (token-id inputs are refused).", required=True, token_ids=True),
        Field("model", "string", "Any name; the served model answers and is named in the response."),
        Field("dimensions", "dimension", "Keep the first N dimensions, then L2-normalise."),
        Field(
            "encoding_format",
            "enum",
            "float: JSON numbers; base64: the little-endian float32 bytes of each vector.",
            default="float",
            values=("float", "base64"),
        ),
        Field("user", "string", "Accepted for compatibility; ignored."),
    ),
    check_order=("input", "model", "user", "encoding_format", "dimensions"),
)


def _openai_encode(args: Args) -> EncodeCall:
    return args["input"], {"normalize_embeddings": True, "truncate_dim": args["dimensions"]}


def _openai_item(args: Args, i: int, row: np.ndarray) -> dict[str, Any]:
    vec: Any = row
    if args["encoding_format"] == "base64":
        vec = base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode()
    return {"object": "embedding", "index": i, "embedding": vec}


def _openai_line(args: Args, i: int, row: np.ndarray) -> bytes:
    return orjson.dumps(_openai_item(args, i, row), option=NUMPY) + b"\n"


def _openai_lines(service: Service, args: Args, result: np.ndarray) -> Response:
    return ndjson_response(b"".join(_openai_line(args, i, row) for i, row in enumerate(result)))


def _openai_json(service: Service, args: Args, result: np.ndarray) -> Response:
    tokens = args[USAGE]  # counted by model.encode_with_usage in the call that embedded (usage=(JSON,))
    return json_response(
        {
            "object": "list",
            "data": [_openai_item(args, i, row) for i, row in enumerate(result)],
            "model": service.model_name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


_OPENAI_EMBEDDING = {
    "type": "object",
    "required": ["object", "index", "embedding"],
    "properties": {
        "object": {"const": "embedding"},
        "index": {"type": "integer"},
        "embedding": {"oneOf": [_VECTOR, {"type": "string", "contentEncoding": "base64"}]},
    },
}
_OPENAI_RESPONSE = {
    "type": "object",
    "required": ["object", "data", "model", "usage"],
    "properties": {
        "object": {"const": "list"},
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/OpenAIEmbedding"}},
        "model": {"type": "string"},
        "usage": {
            "type": "object",
            "properties": {"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}},
        },
    },
}


# ----------------------------------------------------------------------------- POST /similarity
SIMILARITY_BODY = Body(
    "SimilarityRequest",
    (
        Field(
            "inputs",
            "object",
            "The source sentence and the sentences to compare it with.",
            required=True,
            fields=(
                Field("source_sentence", "text", "The sentence the others are compared with.", required=True),
                Field("sentences", "sentences", "The sentences to score.", required=True),
            ),
        ),
        _PROMPT_NAME,
        _TRUNCATE,
    ),
    check_order=("inputs", "truncate", "prompt_name"),
)


def _similarity_encode(args: Args) -> EncodeCall:
    inputs = args["inputs"]
    return [inputs["source_sentence"], *inputs["sentences"]], {"prompt_name": args["prompt_name"]}


def _similarity_scores(model: StaticSentenceTransformer, emb: np.ndarray) -> np.ndarray:
    return np.asarray(model.similarity(emb[:1], emb[1:]), dtype=np.float32).reshape(-1)


def _score_lines(service: Service, args: Args, result: np.ndarray) -> Response:
    return ndjson_response(b"".join(orjson.dumps(float(v)) + b"\n" for v in result.tolist()))


# ----------------------------------------------------------------------------- GET routes
_HEALTH = {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}
_INFO = {
    "type": "object",
    "required": ["model", "dim", "layout", "limits"],
    "properties": {
        "model": {"type": "string"},
        "dim": {"type": "integer"},
        "layout": {"type": "string"},
        "limits": {"type": "object"},
    },
}


def _openapi(service: Service) -> dict[str, Any]:
    return build_openapi(service.routes, service.limits, service.model_name)


def _formats(json: Render, ndjson: Render, octet: Render = _binary) -> dict[str, Render]:
    return {JSON: json, OCTET: octet, NDJSON: ndjson}


# ----------------------------------------------------------------------------- the table
ROUTES: tuple[Route, ...] = (
    Post(
        "/embed",
        "Embed texts (text-embeddings-inference compatible); always a matrix, one row per input.",
        EMBED_BODY,
        encode=_embed_encode,
        formats=_formats(json=_json, ndjson=_rows),
        stream=_row_line,
        errors=TEI_ERRORS,
        result="The embeddings, one row per input",
        json_schema=_MATRIX,
        line_schema=_VECTOR,
    ),
    Post(
        "/v1/embeddings",
        "Embed texts (OpenAI compatible); L2-normalised, truncated to `dimensions` first.",
        OPENAI_BODY,
        encode=_openai_encode,
        formats=_formats(json=_openai_json, ndjson=_openai_lines),
        stream=_openai_line,
        errors=OPENAI_ERRORS,
        result="The embeddings",
        json_schema={"$ref": "#/components/schemas/OpenAIEmbeddingsResponse"},
        line_schema={"$ref": "#/components/schemas/OpenAIEmbedding"},
        components={"OpenAIEmbeddingsResponse": _OPENAI_RESPONSE, "OpenAIEmbedding": _OPENAI_EMBEDDING},
        usage=(JSON,),
    ),
    Post(
        "/similarity",
        "Similarity of the source sentence to each sentence (model.similarity).",
        SIMILARITY_BODY,
        encode=_similarity_encode,
        then=_similarity_scores,
        formats=_formats(json=_json, ndjson=_score_lines),
        errors=TEI_ERRORS,
        result="One score per sentence",
        json_schema=_VECTOR,
        line_schema={"type": "number"},
    ),
    Get("/health", "Liveness.", payload=lambda service: {"status": "ok"}, result="The service is up.", schema=_HEALTH),
    Get(
        "/info",
        "The served model: name, dimensions, layout, limits.",
        payload=lambda service: service.info,
        result="Model and service facts.",
        schema=_INFO,
    ),
    Get("/openapi.json", "This document.", payload=_openapi),  # no schema: not listed in the document itself
)
