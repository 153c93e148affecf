"""The OpenAPI 3.1 document of the service, built from the live limits so it states them exactly."""

from __future__ import annotations

from typing import Any

from staticst.server._validation import Limits

__all__ = ["build_openapi"]

_JSON = "application/json"
_OCTET = "application/octet-stream"
_NDJSON = "application/x-ndjson"


def _error_responses(schema: str = "Error") -> dict[str, Any]:
    error = {"content": {_JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}
    return {
        "400": {"description": "The body is not valid JSON.", **error},
        "406": {"description": "The Accept header names no supported format.", **error},
        "413": {
            "description": "A limit was exceeded: body bytes, number of inputs or characters of one input.",
            **error,
        },
        "415": {"description": "The Content-Type is not JSON.", **error},
        "422": {"description": "Wrong field types or values.", **error},
    }


def _matrix_responses(
    json_schema: dict[str, Any], line_schema: dict[str, Any], what: str, error_schema: str = "Error"
) -> dict[str, Any]:
    return {
        "200": {
            "description": (
                f"{what}. `application/octet-stream`: little-endian float32 rows, shape in the "
                "`X-Embedding-Shape` header; `application/x-ndjson`: one row per line."
            ),
            "headers": {
                "X-Embedding-Shape": {
                    "description": "Comma-separated shape (binary format only).",
                    "schema": {"type": "string"},
                },
                "X-Embedding-Dtype": {
                    "description": "Always `<f4` (binary format only).",
                    "schema": {"type": "string"},
                },
            },
            "content": {
                _JSON: {"schema": json_schema},
                _OCTET: {"schema": {"type": "string", "format": "binary"}},
                _NDJSON: {"schema": line_schema},
            },
        },
        **_error_responses(error_schema),
    }


def _accept_parameter() -> dict[str, Any]:
    return {
        "name": "Accept",
        "in": "header",
        "required": False,
        "description": (
            "Response format: application/json (default, also for */* or no header), application/octet-stream or "
            "application/x-ndjson (q-values honoured); anything else is 406."
        ),
        "schema": {"type": "string", "pattern": r"^(|application/(json|octet-stream|x-ndjson|\*)|\*/\*)$"},
    }


def build_openapi(limits: Limits, model_name: str) -> dict[str, Any]:
    """The OpenAPI document for a service with these limits.

    Args:
        limits: The service limits and model facts (dimension, prompt names).
        model_name: The served model's name (shown in the title).

    Returns:
        The OpenAPI 3.1 document as a dict.
    """
    text = {"type": "string", "maxLength": limits.max_input_chars}
    texts = {
        "oneOf": [text, {"type": "array", "items": text, "minItems": 1, "maxItems": limits.max_batch}],
        "description": f"A text or a list of 1..{limits.max_batch} texts of at most {limits.max_input_chars} characters.",
    }
    dim = {"type": ["integer", "null"], "minimum": 1, "maximum": limits.dim}
    prompt_name: dict[str, Any] = {
        "type": ["string", "null"],
        "enum": [*limits.prompt_names, None],
        "description": "Prepend the model's prompt of this name.",
    }
    vector = {"type": "array", "items": {"type": "number"}}
    matrix = {"type": "array", "items": vector}
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error", "error_type"],
            "properties": {
                "error": {"type": "string"},
                "error_type": {"type": "string"},
                "param": {"type": "string"},
                "limit": {"type": "integer"},
                "value": {},
            },
        },
        "OpenAIError": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["message", "type", "code"],
                    "properties": {
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                        "param": {"type": ["string", "null"]},
                        "code": {"type": "string"},
                        "limit": {"type": "integer"},
                        "value": {},
                    },
                }
            },
        },
        "EmbedRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["inputs"],
            "properties": {
                "inputs": texts,
                "normalize": {"type": ["boolean", "null"], "default": True},
                "truncate_dim": dim,
                "prompt_name": prompt_name,
                "truncate": {"type": ["boolean", "null"], "description": "Accepted for compatibility; no effect."},
            },
        },
        "OpenAIEmbeddingsRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["input"],
            "properties": {
                "input": texts,
                "model": {"type": ["string", "null"]},
                "dimensions": dim,
                "encoding_format": {"type": ["string", "null"], "enum": ["float", "base64", None]},
                "user": {"type": ["string", "null"]},
            },
        },
        "OpenAIEmbeddingsResponse": {
            "type": "object",
            "required": ["object", "data", "model", "usage"],
            "properties": {
                "object": {"const": "list"},
                "data": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/OpenAIEmbedding"},
                },
                "model": {"type": "string"},
                "usage": {
                    "type": "object",
                    "properties": {"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}},
                },
            },
        },
        "OpenAIEmbedding": {
            "type": "object",
            "required": ["object", "index", "embedding"],
            "properties": {
                "object": {"const": "embedding"},
                "index": {"type": "integer"},
                "embedding": {"oneOf": [vector, {"type": "string", "contentEncoding": "base64"}]},
            },
        },
        "SimilarityRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["inputs"],
            "properties": {
                "inputs": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["source_sentence", "sentences"],
                    "properties": {
                        "source_sentence": text,
                        "sentences": {
                            "type": "array",
                            "items": text,
                            "minItems": 1,
                            "maxItems": limits.max_batch - 1,
                        },
                    },
                },
                "prompt_name": prompt_name,
                "truncate": {"type": ["boolean", "null"]},
            },
        },
    }

    def post(summary: str, request: str, responses: dict[str, Any]) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "parameters": [_accept_parameter()],
                "requestBody": {
                    "required": True,
                    "content": {_JSON: {"schema": {"$ref": f"#/components/schemas/{request}"}}},
                },
                "responses": responses,
            }
        }

    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"staticst embedding service ({model_name})",
            "version": "1",
            "description": "Static sentence embeddings over HTTP. Formats are chosen by the Accept header.",
        },
        "paths": {
            "/embed": post(
                "Embed texts (text-embeddings-inference compatible); always a matrix, one row per input.",
                "EmbedRequest",
                _matrix_responses(matrix, vector, "The embeddings, one row per input"),
            ),
            "/v1/embeddings": post(
                "Embed texts (OpenAI compatible); L2-normalised, truncated to `dimensions` first.",
                "OpenAIEmbeddingsRequest",
                _matrix_responses(
                    {"$ref": "#/components/schemas/OpenAIEmbeddingsResponse"},
                    {"$ref": "#/components/schemas/OpenAIEmbedding"},
                    "The embeddings",
                    "OpenAIError",
                ),
            ),
            "/similarity": post(
                "Similarity of the source sentence to each sentence (model.similarity).",
                "SimilarityRequest",
                _matrix_responses(vector, {"type": "number"}, "One score per sentence"),
            ),
            "/health": {
                "get": {
                    "summary": "Liveness.",
                    "responses": {
                        "200": {
                            "description": "The service is up.",
                            "content": {
                                _JSON: {
                                    "schema": {
                                        "type": "object",
                                        "required": ["status"],
                                        "properties": {"status": {"const": "ok"}},
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/info": {
                "get": {
                    "summary": "The served model: name, dimensions, layout, limits.",
                    "responses": {
                        "200": {
                            "description": "Model and service facts.",
                            "content": {
                                _JSON: {
                                    "schema": {
                                        "type": "object",
                                        "required": ["model", "dim", "layout", "limits"],
                                        "properties": {
                                            "model": {"type": "string"},
                                            "dim": {"type": "integer"},
                                            "layout": {"type": "string"},
                                            "limits": {"type": "object"},
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
        },
        "components": {"schemas": schemas},
    }
