"""Request validation for the HTTP service: plain Python, no web framework.

Every function here turns a decoded JSON body into the arguments of a library call, or raises
:class:`RequestError` with the HTTP status, a message naming the offending value and the limit, and
machine-readable fields (``param``, ``limit``, ``value``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EmbedArgs",
    "Limits",
    "OpenAIArgs",
    "RequestError",
    "SimilarityArgs",
    "parse_embed",
    "parse_openai",
    "parse_similarity",
]

# HTTP statuses used for bad input.
BAD_REQUEST = 400  # body is not JSON / not a JSON object
NOT_ACCEPTABLE = 406  # Accept header names no format we produce
PAYLOAD_TOO_LARGE = 413  # a size limit: body bytes, number of inputs, characters of one input
UNSUPPORTED_MEDIA_TYPE = 415  # Content-Type is not JSON
UNPROCESSABLE = 422  # well-formed JSON with wrong types / values


class RequestError(Exception):
    """A client error: becomes a JSON error response with ``status``.

    Attributes:
        status: The HTTP status code (400, 406, 413, 415 or 422).
        message: Human-readable message naming the value and the fix.
        error_type: Short machine-readable kind (``"validation"``, ``"payload_too_large"``, ...).
        param: The offending field (``"inputs[3]"``), when there is one.
        limit: The limit that was exceeded, when a limit was exceeded.
        value: The actual value (a size, a count, a type name), when useful.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "validation",
        param: str | None = None,
        limit: int | None = None,
        value: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param
        self.limit = limit
        self.value = value

    def to_json(self) -> dict[str, Any]:
        """The JSON error body: ``{"error": message, "error_type": ..., "param"?, "limit"?, "value"?}``."""
        body: dict[str, Any] = {"error": self.message, "error_type": self.error_type}
        if self.param is not None:
            body["param"] = self.param
        if self.limit is not None:
            body["limit"] = self.limit
        if self.value is not None:
            body["value"] = self.value
        return body

    def to_openai_json(self) -> dict[str, Any]:
        """The error body in OpenAI's shape (``{"error": {"message", "type", "param", "code", ...}}``)."""
        error: dict[str, Any] = {
            "message": self.message,
            "type": "invalid_request_error",
            "param": self.param,
            "code": self.error_type,
        }
        if self.limit is not None:
            error["limit"] = self.limit
        if self.value is not None:
            error["value"] = self.value
        return {"error": error}


@dataclass(frozen=True)
class Limits:
    """The service's input limits and the model facts validation needs.

    Attributes:
        max_batch: Most texts in one request.
        max_input_chars: Most characters (code points) in one text.
        max_body_bytes: Largest request body in bytes.
        dim: The model's embedding dimension (the largest allowed ``truncate_dim``).
        prompt_names: The model's prompt names (allowed values of ``prompt_name``).
    """

    max_batch: int
    max_input_chars: int
    max_body_bytes: int
    dim: int
    prompt_names: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class EmbedArgs:
    """Validated ``POST /embed`` arguments."""

    texts: list[str]
    normalize: bool
    truncate_dim: int | None
    prompt_name: str | None


@dataclass(frozen=True)
class OpenAIArgs:
    """Validated ``POST /v1/embeddings`` arguments."""

    texts: list[str]
    model: str | None
    dimensions: int | None
    encoding_format: str


@dataclass(frozen=True)
class SimilarityArgs:
    """Validated ``POST /similarity`` arguments."""

    source: str
    sentences: list[str]
    prompt_name: str | None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _require_object(body: Any, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise RequestError(
            UNPROCESSABLE, f"the request body must be a JSON object, got {_type_name(body)}", value=_type_name(body)
        )
    unknown = [key for key in body if key not in allowed]
    if unknown:
        raise RequestError(
            UNPROCESSABLE,
            f"unknown field {unknown[0]!r}; allowed fields: {', '.join(allowed)}",
            param=unknown[0],
        )
    return body


def _check_text(text: Any, param: str, limits: Limits) -> str:
    if not isinstance(text, str):
        raise RequestError(
            UNPROCESSABLE, f"{param} must be a string, got {_type_name(text)}", param=param, value=_type_name(text)
        )
    if len(text) > limits.max_input_chars:
        raise RequestError(
            PAYLOAD_TOO_LARGE,
            f"{param} has {len(text)} characters; the limit is {limits.max_input_chars} (server option --max-input-chars)",
            error_type="input_too_long",
            param=param,
            limit=limits.max_input_chars,
            value=len(text),
        )
    return text


def _texts(value: Any, name: str, limits: Limits, *, required: bool = True) -> list[str]:
    """A string or a non-empty list of strings, within the batch and length limits, as a list."""
    if value is None:
        raise RequestError(UNPROCESSABLE, f"field {name!r} is required (a string or a list of strings)", param=name)
    if isinstance(value, str):
        return [_check_text(value, name, limits)]
    if not isinstance(value, list):
        raise RequestError(
            UNPROCESSABLE,
            f"{name} must be a string or a list of strings, got {_type_name(value)}",
            param=name,
            value=_type_name(value),
        )
    if not value:
        raise RequestError(UNPROCESSABLE, f"{name} is an empty list; send at least one text", param=name, value=0)
    if len(value) > limits.max_batch:
        raise RequestError(
            PAYLOAD_TOO_LARGE,
            f"{name} has {len(value)} texts; the limit is {limits.max_batch} per request (server option --max-batch)",
            error_type="too_many_inputs",
            param=name,
            limit=limits.max_batch,
            value=len(value),
        )
    max_chars = limits.max_input_chars
    for i, text in enumerate(value):
        if type(text) is not str or len(text) > max_chars:
            _check_text(text, f"{name}[{i}]", limits)
    return value


def _bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RequestError(
            UNPROCESSABLE, f"{name} must be true or false, got {_type_name(value)}", param=name, value=_type_name(value)
        )
    return value


def _dim(body: Mapping[str, Any], name: str, limits: Limits) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():  # JSON Schema: 64.0 is an integer
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(
            UNPROCESSABLE, f"{name} must be an integer, got {_type_name(value)}", param=name, value=_type_name(value)
        )
    if not 1 <= value <= limits.dim:
        raise RequestError(
            UNPROCESSABLE,
            f"{name}={value} is out of range; the model has {limits.dim} dimensions, use 1..{limits.dim}",
            param=name,
            limit=limits.dim,
            value=value,
        )
    return value


def _prompt_name(body: Mapping[str, Any], limits: Limits) -> str | None:
    value = body.get("prompt_name")
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(
            UNPROCESSABLE,
            f"prompt_name must be a string, got {_type_name(value)}",
            param="prompt_name",
            value=_type_name(value),
        )
    if value not in limits.prompt_names:
        known = ", ".join(repr(n) for n in limits.prompt_names) or "none (this model has no prompts)"
        raise RequestError(
            UNPROCESSABLE, f"unknown prompt_name {value!r}; known prompt names: {known}", param="prompt_name"
        )
    return value


EMBED_FIELDS = ("inputs", "normalize", "truncate_dim", "prompt_name", "truncate")
OPENAI_FIELDS = ("input", "model", "dimensions", "encoding_format", "user")
SIMILARITY_FIELDS = ("inputs", "prompt_name", "truncate")


def parse_embed(body: Any, limits: Limits) -> EmbedArgs:
    """Validate a text-embeddings-inference style ``/embed`` body.

    ``{"inputs": str | [str], "normalize": bool = true, "truncate_dim": int, "prompt_name": str,
    "truncate": bool}``; ``truncate`` is accepted for TEI compatibility (static models never reject long texts for tokens).

    Args:
        body: The decoded JSON body.
        limits: The service limits.

    Returns:
        The validated arguments.

    Raises:
        RequestError: When the body is invalid or exceeds a limit.
    """
    body = _require_object(body, EMBED_FIELDS)
    texts = _texts(body.get("inputs"), "inputs", limits)
    truncate_dim = _dim(body, "truncate_dim", limits)
    _bool(body, "truncate", True)
    return EmbedArgs(
        texts=texts,
        normalize=_bool(body, "normalize", True),
        truncate_dim=truncate_dim,
        prompt_name=_prompt_name(body, limits),
    )


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise RequestError(
            UNPROCESSABLE, f"{name} must be a string, got {_type_name(value)}", param=name, value=_type_name(value)
        )
    return value


def parse_openai(body: Any, limits: Limits) -> OpenAIArgs:
    """Validate an OpenAI style ``/v1/embeddings`` body.

    ``{"input": str | [str], "model": str, "dimensions": int, "encoding_format": "float" | "base64",
    "user": str}``. Token-id inputs (lists of integers) are rejected: send text.

    Args:
        body: The decoded JSON body.
        limits: The service limits.

    Returns:
        The validated arguments.

    Raises:
        RequestError: When the body is invalid or exceeds a limit.
    """
    body = _require_object(body, OPENAI_FIELDS)
    raw = body.get("input")
    if isinstance(raw, list) and raw and isinstance(raw[0], (int, list)) and not isinstance(raw[0], bool):
        raise RequestError(UNPROCESSABLE, "token-id inputs are not supported; send the texts as strings", param="input")
    texts = _texts(raw, "input", limits)
    model = _optional_str(body, "model")
    _optional_str(body, "user")
    encoding_format = body.get("encoding_format")
    if encoding_format is None:
        encoding_format = "float"
    if encoding_format not in ("float", "base64"):
        raise RequestError(
            UNPROCESSABLE,
            f"encoding_format must be 'float' or 'base64', got {encoding_format!r}",
            param="encoding_format",
        )
    return OpenAIArgs(
        texts=texts, model=model, dimensions=_dim(body, "dimensions", limits), encoding_format=encoding_format
    )


def parse_similarity(body: Any, limits: Limits) -> SimilarityArgs:
    """Validate a text-embeddings-inference style ``/similarity`` body.

    ``{"inputs": {"source_sentence": str, "sentences": [str]}, "prompt_name": str}``.

    Args:
        body: The decoded JSON body.
        limits: The service limits.

    Returns:
        The validated arguments.

    Raises:
        RequestError: When the body is invalid or exceeds a limit.
    """
    body = _require_object(body, SIMILARITY_FIELDS)
    inputs = body.get("inputs")
    if not isinstance(inputs, dict):
        raise RequestError(
            UNPROCESSABLE,
            f'inputs must be an object {{"source_sentence": str, "sentences": [str]}}, got {_type_name(inputs)}',
            param="inputs",
            value=_type_name(inputs),
        )
    unknown = [key for key in inputs if key not in ("source_sentence", "sentences")]
    if unknown:
        raise RequestError(
            UNPROCESSABLE,
            f"unknown field inputs.{unknown[0]}; allowed: source_sentence, sentences",
            param=f"inputs.{unknown[0]}",
        )
    if "source_sentence" not in inputs:
        raise RequestError(UNPROCESSABLE, "field 'inputs.source_sentence' is required", param="inputs.source_sentence")
    source = _check_text(inputs["source_sentence"], "inputs.source_sentence", limits)
    sentences = inputs.get("sentences")
    if sentences is None or isinstance(sentences, str):
        raise RequestError(
            UNPROCESSABLE, "inputs.sentences must be a non-empty list of strings", param="inputs.sentences"
        )
    sentences = _texts(sentences, "inputs.sentences", limits)
    if len(sentences) + 1 > limits.max_batch:
        raise RequestError(
            PAYLOAD_TOO_LARGE,
            f"inputs.sentences has {len(sentences)} texts; with the source sentence the limit is "
            f"{limits.max_batch - 1} (server option --max-batch)",
            error_type="too_many_inputs",
            param="inputs.sentences",
            limit=limits.max_batch - 1,
            value=len(sentences),
        )
    _bool(body, "truncate", True)
    return SimilarityArgs(source=source, sentences=sentences, prompt_name=_prompt_name(body, limits))
