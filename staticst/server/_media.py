"""The media types the service speaks (defined here only), ``Accept`` negotiation, and response writers.

* ``application/json`` (default): orjson straight from the numpy array (float32 shortest round-trip repr).
* ``application/octet-stream``: the little-endian float32 rows of the result, as one buffer; the shape is
  in the ``X-Embedding-Shape`` header (``"rows,dim"``) and the dtype in ``X-Embedding-Dtype`` (``"<f4"``).
* ``application/x-ndjson`` (JSON Lines): one row per line.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from staticst.server._errors import NOT_ACCEPTABLE, ErrorStyle, RequestError

__all__ = [
    "FORMATS",
    "JSON",
    "NDJSON",
    "NUMPY",
    "OCTET",
    "binary_response",
    "error_response",
    "json_response",
    "ndjson_response",
    "negotiate",
]

JSON = "application/json"
OCTET = "application/octet-stream"
NDJSON = "application/x-ndjson"
FORMATS = (JSON, OCTET, NDJSON)
"""Every response format, in the order documented; every POST route renders all of them."""

_FORMAT_ALIASES = {
    JSON: JSON,
    "application/*": JSON,
    "*/*": JSON,
    OCTET: OCTET,
    NDJSON: NDJSON,
    "application/jsonl": NDJSON,
    "application/json-lines": NDJSON,
    "application/jsonlines": NDJSON,
}
NUMPY = orjson.OPT_SERIALIZE_NUMPY
"""The orjson option that writes numpy arrays directly."""


def negotiate(accept: str | None) -> str:
    """The response media type for an ``Accept`` header value.

    Args:
        accept: The header value, or ``None`` when absent (then JSON).

    Returns:
        One of :data:`JSON`, :data:`OCTET`, :data:`NDJSON`.

    Raises:
        RequestError: 406 when the header names no format this service produces.
    """
    if not accept:
        return JSON
    if accept in _FORMAT_ALIASES:  # the common case: a single media type, no parameters
        return _FORMAT_ALIASES[accept]
    best: str | None = None
    best_q = 0.0
    for part in accept.split(","):
        media, _, params = part.partition(";")
        fmt = _FORMAT_ALIASES.get(media.strip().lower())
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if fmt is not None and q > best_q:
            best, best_q = fmt, q
    if best is None:
        raise RequestError(
            NOT_ACCEPTABLE,
            f"Accept: {accept!r} names no format this service produces; use {JSON}, {OCTET} or {NDJSON}",
            error_type="not_acceptable",
            value=accept,
        )
    return best


def json_response(payload: Any) -> Response:
    """A ``200 application/json`` response; numpy arrays are written directly.

    Args:
        payload: Anything orjson serialises (with numpy support).

    Returns:
        The response.
    """
    return Response(orjson.dumps(payload, option=NUMPY), media_type=JSON)


def binary_response(array: np.ndarray) -> Response:
    """A ``200 application/octet-stream`` response: the array as little-endian float32 bytes.

    Args:
        array: The result (any shape); its shape goes to ``X-Embedding-Shape``.

    Returns:
        The response.
    """
    data = np.ascontiguousarray(array, dtype="<f4")
    return Response(
        data.tobytes(),
        media_type=OCTET,
        headers={"x-embedding-shape": ",".join(str(s) for s in data.shape), "x-embedding-dtype": "<f4"},
    )


def ndjson_response(body: bytes) -> Response:
    """A ``200 application/x-ndjson`` response.

    Args:
        body: The lines, each ending in a newline.

    Returns:
        The response.
    """
    return Response(body, media_type=NDJSON)


def error_response(exc: RequestError, style: ErrorStyle) -> Response:
    """The JSON error response for ``exc``, in the route's error body style.

    Args:
        exc: The client error.
        style: The route's error body style.

    Returns:
        The response, with ``exc.status``.
    """
    return Response(orjson.dumps(style.body(exc)), status_code=exc.status, media_type=JSON)
