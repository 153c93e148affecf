"""Client errors: :class:`RequestError`, the HTTP statuses for bad input, and the two error body styles.

An :class:`ErrorStyle` is how a route writes a :class:`RequestError`: text-embeddings-inference style
(``{"error": message, "error_type": ...}``) or OpenAI style (``{"error": {"message": ..., ...}}``),
together with the OpenAPI schema of that body, so the document and the bodies come from one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BAD_REQUEST",
    "NOT_ACCEPTABLE",
    "OPENAI_ERRORS",
    "PAYLOAD_TOO_LARGE",
    "TEI_ERRORS",
    "UNPROCESSABLE",
    "UNSUPPORTED_MEDIA_TYPE",
    "ErrorStyle",
    "RequestError",
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
class ErrorStyle:
    """How a route writes its error bodies.

    Attributes:
        schema_name: Name of the body's schema under ``components/schemas`` in the OpenAPI document.
        schema: The JSON Schema of the body.
        body: Turns a :class:`RequestError` into the body (a JSON-serialisable dict).
    """

    schema_name: str
    schema: Mapping[str, Any]
    body: Callable[[RequestError], dict[str, Any]]


TEI_ERRORS = ErrorStyle(
    "Error",
    {
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
    RequestError.to_json,
)

OPENAI_ERRORS = ErrorStyle(
    "OpenAIError",
    {
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
    RequestError.to_openai_json,
)
