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
    "REQUEST_TIMEOUT",
    "TEI_ERRORS",
    "UNPROCESSABLE",
    "UNSUPPORTED_MEDIA_TYPE",
    "ErrorStyle",
    "RequestError",
    "jsonable",
    "shown",
]

# HTTP statuses used for bad input.
BAD_REQUEST = 400  # body is not JSON / not a JSON object
NOT_ACCEPTABLE = 406  # Accept header names no format we produce
REQUEST_TIMEOUT = 408  # the body did not arrive within the body timeout
PAYLOAD_TOO_LARGE = 413  # a size limit: body bytes, number of inputs, characters of one input
UNSUPPORTED_MEDIA_TYPE = 415  # Content-Type missing, not JSON, or an unsupported charset
UNPROCESSABLE = 422  # well-formed JSON with wrong types / values

SHOWN_CHARS = 60
"""Most characters of a client's string quoted back in an error message (the rest is summarised)."""
_INT64 = (-(2**63), 2**64)  # the integers orjson writes (int64 and uint64)


def shown(value: Any) -> str:
    """A short, safe rendering of a client's value for an error message.

    Strings are quoted and cut to :data:`SHOWN_CHARS` characters; numbers, booleans and null are spelled
    as in JSON; arrays and objects are named, never printed (they may be huge or nested 1000 deep).

    Args:
        value: A decoded JSON value.

    Returns:
        The text to put in the message.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} digits)"
    if isinstance(value, str):
        if len(value) <= SHOWN_CHARS:
            return repr(value)
        return f"{value[:SHOWN_CHARS]!r}... ({len(value)} characters)"
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    return type(value).__name__


def jsonable(value: Any) -> Any:
    """``value`` as something orjson always serialises, for the ``value`` field of an error body.

    Integers beyond 64 bits become floats, non-finite floats ``null``, long strings are cut, arrays and
    objects are replaced by their :func:`shown` summary.

    Args:
        value: Any value.

    Returns:
        A JSON-serialisable value.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _INT64[0] <= value < _INT64[1] else float(value)
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        return value if len(value) <= SHOWN_CHARS else shown(value)
    return shown(value)


class RequestError(Exception):
    """A client error: becomes a JSON error response with ``status``.

    Attributes:
        status: The HTTP status code (400, 406, 413, 415 or 422).
        message: Human-readable message naming the value and the fix.
        error_type: Short machine-readable kind (``"validation"``, ``"payload_too_large"``, ...).
        param: The offending field (``"inputs[3]"``), when there is one.
        limit: The limit that was exceeded, when a limit was exceeded.
        value: The actual value (a size, a count, a type name), when useful; always JSON-serialisable
            (see :func:`jsonable`).
        close: Close the connection after the answer (the rest of the request may still be arriving).
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
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param
        self.limit = limit
        self.value = jsonable(value)
        self.close = close

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
