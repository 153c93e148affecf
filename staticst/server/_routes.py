"""The route table: every route of the service as one entry, with its body and its encode / render functions.

Adding a route is one entry in :data:`ROUTES` (its :class:`~staticst.server._spec.Body`, what it encodes,
how each format is rendered) plus those small functions; the app (:mod:`staticst.server._app`), the
validator and the OpenAPI document all read the table.

The conventions served: text-embeddings-inference (``/embed``, ``/similarity``, ``/tokenize``, ``/decode``,
``/metrics``, and ``POST /`` / ``/invocations``, which answer both an embed and a similarity payload, as the
Hugging Face inference API's ``feature_extraction`` and ``sentence_similarity`` post them) and OpenAI
(``/v1/embeddings``, ``/v1/models``).
"""

from __future__ import annotations

import base64
import dataclasses
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
from staticst.server._metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from staticst.server._openapi import build_openapi
from staticst.server._spec import (
    TRUNCATION,
    USAGE,
    Args,
    Body,
    EncodeCall,
    Field,
    Get,
    Post,
    Render,
    Route,
    Service,
    Truncation,
)
from staticst.server._tokens import DIRECTIONS, decode_run, tokenize_run

if TYPE_CHECKING:
    from staticst.model import StaticSentenceTransformer

__all__ = ["DECODE_BODY", "EMBED_BODY", "OPENAI_BODY", "ROUTES", "SIMILARITY_BODY", "TOKENIZE_BODY"]

_VECTOR = {"type": "array", "items": {"type": "number"}}
_MATRIX = {"type": "array", "items": _VECTOR}
_PROMPT_NAME = Field("prompt_name", "prompt-name", "Prepend the model's prompt of this name.")
_TRUNCATE = Field(
    "truncate",
    "bool",
    "Texts over the model's token limit (max_seq_length): true cuts them, false refuses them (413); "
    "absent: the service's --auto-truncate (on unless started with --no-auto-truncate).",
)
_DIRECTION = Field(
    "truncation_direction",
    "enum",
    "Which tokens truncation keeps: right (the first; default) or left (the last).",
    values=DIRECTIONS,
)


def _truncation(args: Args) -> Truncation:
    return Truncation(args["truncate"], args["truncation_direction"])


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
        Field("dimensions", "dimension", "text-embeddings-inference's name of truncate_dim (with both: the smaller)."),
        _PROMPT_NAME,
        _TRUNCATE,
        _DIRECTION,
    ),
    check_order=(
        "inputs",
        "truncate_dim",
        "dimensions",
        "truncate",
        "truncation_direction",
        "normalize",
        "prompt_name",
    ),
)


def _embed_encode(args: Args) -> EncodeCall:
    dims = [d for d in (args["truncate_dim"], args["dimensions"]) if d is not None]
    kwargs = {
        "normalize_embeddings": args["normalize"],
        "truncate_dim": min(dims) if dims else None,
        "prompt_name": args["prompt_name"],
        TRUNCATION: _truncation(args),
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
    return args["input"], {"normalize_embeddings": True, "truncate_dim": args["dimensions"], TRUNCATION: Truncation()}


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
        Field(
            "parameters",
            "object",
            "text-embeddings-inference's (and huggingface_hub's) place for the options; wins over the same "
            "top-level field.",
            fields=(_TRUNCATE, _DIRECTION, _PROMPT_NAME),
        ),
        _PROMPT_NAME,
        _TRUNCATE,
    ),
    check_order=("inputs", "parameters", "truncate", "prompt_name"),
)


def _similarity_encode(args: Args) -> EncodeCall:
    inputs, nested = args["inputs"], args["parameters"] or {}

    def option(name: str) -> Any:
        return nested[name] if nested.get(name) is not None else args.get(name)

    kwargs = {
        "prompt_name": option("prompt_name"),
        TRUNCATION: Truncation(option("truncate"), nested.get("truncation_direction")),
    }
    return [inputs["source_sentence"], *inputs["sentences"]], kwargs


def _similarity_param(i: int) -> str:
    return "inputs.source_sentence" if i == 0 else f"inputs.sentences[{i - 1}]"


def _similarity_scores(model: StaticSentenceTransformer, emb: np.ndarray) -> np.ndarray:
    return np.asarray(model.similarity(emb[:1], emb[1:]), dtype=np.float32).reshape(-1)


def _score_lines(service: Service, args: Args, result: np.ndarray) -> Response:
    return ndjson_response(b"".join(orjson.dumps(float(v)) + b"\n" for v in result.tolist()))


# ----------------------------------------------------------------------------- POST /tokenize, /decode
TOKENIZE_BODY = Body(
    "TokenizeRequest",
    (
        Field("inputs", "texts", "The texts to tokenize (no truncation).", required=True),
        Field(
            "add_special_tokens",
            "bool",
            "Add the tokenizer's special tokens (the model itself never pools them).",
            default=True,
        ),
        _PROMPT_NAME,
    ),
)


def _tokenize_encode(args: Args) -> EncodeCall:
    return args["inputs"], {"add_special_tokens": args["add_special_tokens"], "prompt_name": args["prompt_name"]}


DECODE_BODY = Body(
    "DecodeRequest",
    (
        Field("ids", "token-ids", "The token ids to turn back into text.", required=True),
        Field("skip_special_tokens", "bool", "Leave special tokens out of the text.", default=True),
    ),
)


def _decode_encode(args: Args) -> EncodeCall:
    return args["ids"], {"skip_special_tokens": args["skip_special_tokens"]}


def _list_json(service: Service, args: Args, result: list[Any]) -> Response:
    return json_response(result)


def _list_lines(service: Service, args: Args, result: list[Any]) -> Response:
    return ndjson_response(b"".join(orjson.dumps(item) + b"\n" for item in result))


def _parts_json(service: Service, args: Args, result: list[bytes]) -> Response:
    """One JSON array of items already rendered to JSON (``/tokenize``: no Python object per token)."""
    return Response(b"[" + b",".join(result) + b"]", media_type=JSON)


def _parts_lines(service: Service, args: Args, result: list[bytes]) -> Response:
    return ndjson_response(b"".join(part + b"\n" for part in result))


_SIMPLE_TOKEN = {
    "type": "object",
    "required": ["id", "text", "special", "start", "stop"],
    "properties": {
        "id": {"type": "integer"},
        "text": {"type": "string"},
        "special": {"type": "boolean"},
        "start": {"type": ["integer", "null"], "description": "Character offset in the (prompted) text."},
        "stop": {"type": ["integer", "null"], "description": "End (exclusive) character offset."},
    },
}
_TOKENS = {"type": "array", "items": {"$ref": "#/components/schemas/SimpleToken"}}


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


_MODELS = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {
        "object": {"const": "list"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "object", "created", "owned_by"],
                "properties": {
                    "id": {"type": "string"},
                    "object": {"const": "model"},
                    "created": {"type": "integer"},
                    "owned_by": {"type": "string"},
                },
            },
        },
    },
}


def _openapi(service: Service) -> dict[str, Any]:
    return build_openapi(service.routes, service.limits, service.model_name)


def _models(service: Service) -> dict[str, Any]:
    model = {"id": service.model_name, "object": "model", "created": service.created, "owned_by": "staticst"}
    return {"object": "list", "data": [model]}


def _formats(json: Render, ndjson: Render, octet: Render | None = _binary) -> dict[str, Render]:
    return {JSON: json, NDJSON: ndjson} if octet is None else {JSON: json, OCTET: octet, NDJSON: ndjson}


def _health(service: Service) -> dict[str, str]:
    return {"status": "ok"}


# ----------------------------------------------------------------------------- the table
EMBED = Post(
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
)
SIMILARITY = Post(
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
    text_param=_similarity_param,
)


def _also_at(path: str, *routes: Post) -> tuple[Post, ...]:
    """The same routes under another path (they share it: the body's ``inputs`` type picks one)."""
    return tuple(dataclasses.replace(route, path=path) for route in routes)


ROUTES: tuple[Route, ...] = (
    EMBED,
    *_also_at("/", EMBED, SIMILARITY),  # the Hugging Face inference API's path-less calls
    *_also_at("/invocations", EMBED, SIMILARITY),  # AWS SageMaker's
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
        text_param=lambda i: f"input[{i}]",
    ),
    SIMILARITY,
    Post(
        "/tokenize",
        "The model tokenizer's tokens of each text (text-embeddings-inference compatible; no truncation).",
        TOKENIZE_BODY,
        encode=_tokenize_encode,
        run=tokenize_run,
        formats=_formats(json=_parts_json, ndjson=_parts_lines, octet=None),
        errors=TEI_ERRORS,
        result="One list of tokens per input",
        json_schema={"type": "array", "items": _TOKENS},
        line_schema=_TOKENS,
        components={"SimpleToken": _SIMPLE_TOKEN},
    ),
    Post(
        "/decode",
        "The text of each sequence of token ids (text-embeddings-inference compatible).",
        DECODE_BODY,
        encode=_decode_encode,
        run=decode_run,
        formats=_formats(json=_list_json, ndjson=_list_lines, octet=None),
        errors=TEI_ERRORS,
        result="One text per sequence of ids",
        json_schema={"type": "array", "items": {"type": "string"}},
        line_schema={"type": "string"},
        text_param=lambda i: f"ids[{i}]",
    ),
    Get("/health", "Liveness.", payload=_health, result="The service is up.", schema=_HEALTH),
    Get(
        "/",
        "Liveness (text-embeddings-inference's path).",
        payload=_health,
        result="The service is up.",
        schema=_HEALTH,
    ),
    Get("/ping", "Liveness (AWS SageMaker's path).", payload=_health, result="The service is up.", schema=_HEALTH),
    Get(
        "/info",
        "The served model: name, dimensions, layout, limits.",
        payload=lambda service: service.info,
        result="Model and service facts.",
        schema=_INFO,
    ),
    Get(
        "/v1/models",
        "The served model (OpenAI compatible): its name is the `model` of every answer.",
        payload=_models,
        result="One model.",
        schema=_MODELS,
    ),
    Get(
        "/metrics",
        "Prometheus metrics: requests by route and status, latency and batch-size histograms, requests in flight.",
        payload=lambda service: service.metrics.render(),
        result="The Prometheus text exposition format (0.0.4).",
        schema={"type": "string"},
        media_type=METRICS_CONTENT_TYPE,
        live=True,
    ),
    Get("/openapi.json", "This document.", payload=_openapi),  # no schema: not listed in the document itself
)
