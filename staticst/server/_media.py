"""The media types the service speaks (defined here only), ``Accept`` negotiation, and response writers.

* ``application/json`` (default): orjson straight from the numpy array (float32 shortest round-trip repr).
* ``application/octet-stream``: the little-endian float32 rows of the result, as one buffer; the shape is
  in the ``X-Embedding-Shape`` header (``"rows,dim"``) and the dtype in ``X-Embedding-Dtype`` (``"<f4"``).
* ``application/x-ndjson`` (JSON Lines): one row per line.

Requests: the body must be declared JSON (``Content-Type: application/json`` or ``*/*+json``); its
``charset`` parameter is honoured for UTF-8, UTF-16, UTF-32, US-ASCII, ISO-8859-* and windows-125*
(:func:`request_codec`), anything else is a 415 naming the charset.
"""

from __future__ import annotations

import codecs
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from staticst.server._errors import BAD_REQUEST, NOT_ACCEPTABLE, UNSUPPORTED_MEDIA_TYPE, ErrorStyle, RequestError, shown

__all__ = [
    "FORMATS",
    "JSON",
    "NDJSON",
    "NUMPY",
    "OCTET",
    "binary_response",
    "decode_json",
    "error_response",
    "json_response",
    "ndjson_response",
    "negotiate",
    "request_codec",
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

MISSING_CONTENT_TYPE = "Expected request with `Content-Type: application/json`"
"""The 415 message for a body sent without a Content-Type: text-embeddings-inference's (axum's ``Json``)."""
_UTF8 = "utf-8"
_CHARSET_NAMES = (
    "utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "us-ascii",
    *(f"iso-8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16)),
    *(f"windows-{n}" for n in range(1250, 1259)),
)  # fmt: skip
CHARSETS = frozenset(codecs.lookup(name).name for name in _CHARSET_NAMES)
"""The body charsets honoured, as Python codec names (any alias Python knows is accepted: latin-1, cp1252...)."""


def negotiate(accept: str | None, offered: tuple[str, ...] = FORMATS) -> str:
    """The response media type for an ``Accept`` header value.

    Args:
        accept: The header value, or ``None`` when absent (then JSON).
        offered: The media types the route renders (JSON among them; default: all of :data:`FORMATS`).

    Returns:
        One of ``offered``.

    Raises:
        RequestError: 406 when the header names none of them.
    """
    if not accept:
        return JSON
    if accept in _FORMAT_ALIASES and _FORMAT_ALIASES[accept] in offered:  # the common case: one bare media type
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
        if fmt is not None and fmt in offered and q > best_q:
            best, best_q = fmt, q
    if best is None:
        names = ", ".join(offered[:-1]) + f" or {offered[-1]}" if len(offered) > 1 else offered[0]
        raise RequestError(
            NOT_ACCEPTABLE,
            f"Accept: {shown(accept)} names no format this route produces; use {names}",
            error_type="not_acceptable",
            value=accept,
        )
    return best


def request_codec(content_type: str | None) -> str | None:
    """The codec to decode a request body with, from its ``Content-Type``.

    Args:
        content_type: The header value, or ``None`` when absent.

    Returns:
        ``None`` for UTF-8 (the default: orjson reads the bytes as they are), else the Python codec name of
        the declared ``charset`` (one of :data:`CHARSETS`).

    Raises:
        RequestError: 415 when the header is absent, names a type that is not JSON, or a charset outside
            :data:`CHARSETS`.
    """
    if content_type == JSON:  # the common case
        return None
    if content_type is None:
        raise RequestError(UNSUPPORTED_MEDIA_TYPE, MISSING_CONTENT_TYPE, error_type="unsupported_media_type")
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media != JSON and not media.endswith("+json"):
        raise RequestError(
            UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type {shown(content_type)} is not supported; send the body as {JSON}",
            error_type="unsupported_media_type",
            value=content_type,
        )
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').strip()
    if charset is None:
        return None
    try:
        codec = codecs.lookup(charset).name
    except (LookupError, ValueError):
        codec = ""
    if codec == _UTF8:
        return None
    if codec not in CHARSETS:
        raise RequestError(
            UNSUPPORTED_MEDIA_TYPE,
            f"charset {shown(charset)} is not supported; send the body as UTF-8 (Content-Type: {JSON}), or declare "
            "one of utf-8, utf-16, utf-32, us-ascii, iso-8859-*, windows-125*",
            error_type="unsupported_charset",
            value=charset,
        )
    return codec


def decode_json(body: bytes, codec: str | None) -> Any:
    """Decode a JSON request body: UTF-8 bytes straight to orjson, another declared charset through its codec.

    Args:
        body: The body (not empty).
        codec: What :func:`request_codec` said: ``None`` for UTF-8, else a codec of :data:`CHARSETS`.

    Returns:
        The decoded JSON value.

    Raises:
        RequestError: 400 when the bytes are not valid in the charset or not valid JSON; for bytes that
            are not UTF-8 the message names the first bad byte and the ``charset`` fix.
    """
    data: bytes | str = body
    if codec is not None:
        try:
            data = body.decode(codec)
        except UnicodeDecodeError as exc:
            raise RequestError(
                BAD_REQUEST,
                f"the request body is not valid {codec} (the Content-Type charset): byte {exc.start}: {exc.reason}",
                error_type="invalid_json",
            ) from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        message = f"the request body is not valid JSON: {exc}"
        if codec is None and "UTF-8" in str(exc):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as bad:
                message = (
                    f"the request body is not valid UTF-8 (byte {bad.start}: {bad.reason}); JSON is UTF-8: send it "
                    f"encoded so, or name its charset, e.g. Content-Type: {JSON}; charset=latin-1"
                )
        raise RequestError(BAD_REQUEST, message, error_type="invalid_json") from None


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
        The response, with ``exc.status`` (and ``Connection: close`` when ``exc.close``).
    """
    try:
        body = orjson.dumps(style.body(exc))
    except (TypeError, orjson.JSONEncodeError):  # never a 500 over the error body itself: drop the echoed value
        exc.value = None
        exc.message = exc.message.encode("utf-8", "replace").decode("utf-8")
        if exc.param is not None:
            exc.param = exc.param.encode("utf-8", "replace").decode("utf-8")
        body = orjson.dumps(style.body(exc))
    headers = {"connection": "close"} if exc.close else None
    return Response(body, status_code=exc.status, media_type=JSON, headers=headers)
