"""The ASGI application: one generic handler per kind of route, built from the route table.

Every POST route is the same skeleton, written once in :func:`_post_endpoint`: negotiate the format
(``Accept``), read and validate the JSON body, encode (inline for small requests, in a worker thread for
large ones; JSON Lines answers for large batches are streamed chunk by chunk), render the result in the
negotiated format. What differs between routes is data: an entry of
:data:`staticst.server._routes.ROUTES`. Formats are described in :mod:`staticst.server._media`.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from staticst.server._errors import BAD_REQUEST, PAYLOAD_TOO_LARGE, REQUEST_TIMEOUT, UNPROCESSABLE, RequestError
from staticst.server._media import FORMATS, JSON, NDJSON, decode_json, error_response, negotiate, request_codec
from staticst.server._routes import ROUTES
from staticst.server._spec import USAGE, Args, Get, Post
from staticst.server._spec import Route as RouteSpec
from staticst.server._validation import Limits, Validator

if TYPE_CHECKING:
    from staticst.model import StaticSentenceTransformer

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_INPUT_CHARS",
    "DEFAULT_STREAM_CHUNK",
    "DEFAULT_TIMEOUT_BODY",
    "Service",
    "create_app",
    "negotiate",
]

logger = logging.getLogger("staticst.server")

DEFAULT_MAX_BATCH = 2048
DEFAULT_MAX_INPUT_CHARS = 20_000
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_STREAM_CHUNK = 256
DEFAULT_TIMEOUT_BODY = 30.0
"""Seconds a request's whole body may take to arrive once its headers are in (408 after)."""
# Requests with at most this many characters in total are encoded on the event loop (a thread hop costs
# more than the encode); larger ones go to a worker thread so the loop keeps serving other connections.
INLINE_CHARS = 8192
INLINE_TEXTS = 64

Endpoint = Callable[[Request], Awaitable[Response]]


class Service:
    """The served model, its limits, and what every request needs, computed once when the app is built.

    Attributes:
        model: The model.
        routes: The route table the app serves.
        limits: The input limits and model facts validation needs.
        stream_chunk: Rows per chunk of a streamed JSON Lines answer.
        timeout_body: Seconds the whole request body may take to arrive (408 after).
        model_name: The name reported by ``/info`` and ``/v1/embeddings``: the given name, else the model
            folder's name or the Hub id (:func:`served_model_name`), never a path.
        info: The ``/info`` body (no filesystem paths).
    """

    def __init__(
        self,
        model: StaticSentenceTransformer,
        *,
        routes: Sequence[RouteSpec],
        max_batch: int,
        max_input_chars: int,
        max_body_bytes: int,
        stream_chunk: int,
        timeout_body: float,
        model_name: str | None,
    ) -> None:
        self.model = model
        self.routes = tuple(routes)
        info: dict[str, Any] = dict(model.info()) if hasattr(model, "info") else {}
        dim = int(model.get_sentence_embedding_dimension() or info.get("dim") or 0)
        prompts = getattr(model, "prompts", None) or {}
        self.limits = Limits(
            max_batch=max_batch,
            max_input_chars=max_input_chars,
            max_body_bytes=max_body_bytes,
            dim=dim,
            prompt_names=tuple(sorted(prompts)),
        )
        self.stream_chunk = stream_chunk
        self.timeout_body = timeout_body
        self.model_name = str(model_name or served_model_name(info.get("model"), info.get("path")))
        self._encode_with_usage = getattr(model, "encode_with_usage", None)
        self.info: dict[str, Any] = {
            **{key: value for key, value in info.items() if not _is_path(key, value)},
            "model": self.model_name,
            "dim": dim,
            "layout": info.get("layout", "unknown"),
            "similarity_fn_name": getattr(model, "similarity_fn_name", "cosine"),
            "prompt_names": list(self.limits.prompt_names),
            "formats": list(FORMATS),
            "limits": {"max_batch": max_batch, "max_input_chars": max_input_chars, "max_body_bytes": max_body_bytes},
            "timeouts": {"body": timeout_body},
        }

    async def read_json(self, request: Request) -> Any:
        """Read the body within ``max_body_bytes`` and ``timeout_body`` seconds and decode it as JSON.

        Args:
            request: The request.

        Returns:
            The decoded body.

        Raises:
            RequestError: 415 for a missing or non-JSON Content-Type or an unsupported charset, 413 for a
                body over the limit, 408 (closing the connection) for a body that does not arrive in time,
                400 for an empty or malformed body (or a client that disconnected mid-body).
        """
        codec = request_codec(request.headers.get("content-type"))
        limit = self.limits.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise RequestError(BAD_REQUEST, f"invalid Content-Length {length[:40]!r}", value=length) from None
            if declared > limit:
                raise self._too_large(declared)
        chunks: list[bytes] = []
        size = 0
        try:
            with anyio.fail_after(self.timeout_body):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise self._too_large(size)
                    chunks.append(chunk)
        except ClientDisconnect:  # nobody to answer; end the request quietly
            raise RequestError(BAD_REQUEST, "the client disconnected before sending the whole body") from None
        except TimeoutError:
            raise RequestError(
                REQUEST_TIMEOUT,
                f"the request body did not arrive within {self.timeout_body:g} s ({size} bytes received; "
                "server option --timeout-body)",
                error_type="timeout",
                value=size,
                close=True,
            ) from None
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if not body:
            raise RequestError(BAD_REQUEST, "the request body is empty; send a JSON object", error_type="invalid_json")
        return decode_json(body, codec)

    def _too_large(self, size: int) -> RequestError:
        return RequestError(
            PAYLOAD_TOO_LARGE,
            f"the request body has {size} bytes; the limit is {self.limits.max_body_bytes} bytes",
            error_type="payload_too_large",
            limit=self.limits.max_body_bytes,
            value=size,
        )

    async def encode(
        self, texts: list[str], kwargs: dict[str, Any], count: bool = False
    ) -> tuple[np.ndarray, int | None]:
        """``model.encode(texts, **kwargs)`` as a float32 matrix; large requests run in a worker thread.

        Args:
            texts: The texts (at least one).
            kwargs: Keyword arguments of ``model.encode``.
            count: Also count the token ids pooled, in the same call (``model.encode_with_usage``).

        Returns:
            One row per text, and the token count (``None`` unless ``count``; 0 for a model without
            ``encode_with_usage``).

        Raises:
            RequestError: 422 when the model rejects the arguments.
        """
        if len(texts) <= INLINE_TEXTS and sum(map(len, texts)) <= INLINE_CHARS:
            return self._encode(texts, kwargs, count)
        return await anyio.to_thread.run_sync(self._encode, texts, kwargs, count)

    def _encode(self, texts: list[str], kwargs: dict[str, Any], count: bool) -> tuple[np.ndarray, int | None]:
        model = self.model
        try:
            if count and self._encode_with_usage is not None:
                emb, tokens = self._encode_with_usage(texts, **kwargs)
                return np.asarray(emb, dtype=np.float32).reshape(len(texts), -1), int(tokens)
            if len(texts) == 1:  # encode(str) is the model's short path (same values); keep the 2-D shape
                emb = np.asarray(model.encode(texts[0], **kwargs), dtype=np.float32).reshape(1, -1)
            else:
                emb = np.asarray(model.encode(texts, **kwargs), dtype=np.float32)
        except (ValueError, TypeError, KeyError) as exc:
            raise RequestError(UNPROCESSABLE, f"the model rejected the request: {exc}") from exc
        return emb, (0 if count else None)


def served_model_name(model_id: Any, path: Any = None) -> str:
    """The default served model name: the Hub id, or the folder's name for a model loaded from a folder.

    Never a filesystem path (``/info`` and the OpenAI ``model`` field are seen by every client).

    Args:
        model_id: What the model was loaded from (``model.info()["model"]``): a Hub id or a folder.
        path: The model's folder (``model.info()["path"]``), when known.

    Returns:
        The name.

    Example:
        >>> served_model_name("/srv/models/potion-base-8M", "/srv/models/potion-base-8M")
        'potion-base-8M'
        >>> served_model_name("minishlab/potion-base-8M", "/cache/models--minishlab--potion-base-8M/snapshots/1")
        'minishlab/potion-base-8M'
    """
    if not model_id:
        return "staticst"
    name = str(model_id)
    local = os.path.expanduser(name)
    is_folder = path is not None and os.path.isdir(local) and os.path.realpath(local) == os.path.realpath(str(path))
    if is_folder or os.path.isabs(local) or name.startswith((".", "~")):
        return os.path.basename(os.path.normpath(os.path.realpath(local))) or "staticst"
    return name


def _is_path(key: str, value: Any) -> bool:
    """Whether an entry of ``model.info()`` is a filesystem path (left out of ``/info``)."""
    return key == "path" or (isinstance(value, str) and os.path.isabs(value))


def _stream(
    service: Service,
    texts: list[str],
    kwargs: dict[str, Any],
    args: Args,
    line: Callable[[Args, int, np.ndarray], bytes],
) -> Response:
    """A JSON Lines answer encoded and sent ``service.stream_chunk`` rows at a time."""
    chunk = service.stream_chunk

    async def lines() -> AsyncIterator[bytes]:
        for start in range(0, len(texts), chunk):
            part, _ = await service.encode(texts[start : start + chunk], kwargs)
            yield b"".join(line(args, start + i, row) for i, row in enumerate(part))

    return StreamingResponse(lines(), media_type=NDJSON)


def _post_endpoint(service: Service, route: Post) -> Endpoint:
    """The handler of a POST route: everything it needs is looked up here, once."""
    if set(route.formats) != set(FORMATS):
        raise ValueError(f"{route.path}: formats must render each of {', '.join(FORMATS)}")
    validate = Validator(route.body, service.limits)
    read_json, encode, model = service.read_json, service.encode, service.model
    encode_args, then, line, style = route.encode, route.then, route.stream, route.errors
    formats = dict(route.formats)
    counted = frozenset(route.usage)
    chunk = service.stream_chunk

    async def endpoint(request: Request) -> Response:
        try:
            fmt = negotiate(request.headers.get("accept"))
            args = validate(await read_json(request))
            texts, kwargs = encode_args(args)
            if line is not None and fmt == NDJSON and len(texts) > chunk:
                return _stream(service, texts, kwargs, args, line)
            result, tokens = await encode(texts, kwargs, fmt in counted)
            if tokens is not None:
                args[USAGE] = tokens
            if then is not None:
                result = then(model, result)
        except RequestError as exc:
            return error_response(exc, style)
        return formats[fmt](service, args, result)

    return endpoint


def _get_endpoint(service: Service, route: Get) -> Endpoint:
    """The handler of a GET route: its body is serialised once, here."""
    body = orjson.dumps(route.payload(service))

    async def endpoint(request: Request) -> Response:
        return Response(body, media_type=JSON)

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    elif exc.status_code == 404:
        message = f"no route {request.url.path}; see /openapi.json"
    else:
        message = str(exc.detail)
    return Response(
        orjson.dumps({"error": message, "error_type": "http"}),
        status_code=exc.status_code,
        media_type=JSON,
        headers=exc.headers,
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=sys.exc_info())
    return Response(
        orjson.dumps({"error": f"internal server error: {type(exc).__name__}", "error_type": "internal"}),
        status_code=500,
        media_type=JSON,
    )


def check_timeout(name: str, value: Any) -> float:
    """``value`` as a timeout in seconds: a positive finite number.

    Args:
        name: The option's name, for the message.
        value: The value.

    Returns:
        The value as a float.

    Raises:
        ValueError: When it is not a positive finite number.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def create_app(
    model: StaticSentenceTransformer,
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    stream_chunk: int = DEFAULT_STREAM_CHUNK,
    model_name: str | None = None,
    timeout_body: float = DEFAULT_TIMEOUT_BODY,
) -> Starlette:
    """Build the ASGI application serving ``model``.

    Routes (:data:`staticst.server._routes.ROUTES`): ``POST /embed`` (text-embeddings-inference style),
    ``POST /v1/embeddings`` (OpenAI style), ``POST /similarity``, ``GET /health``, ``GET /info`` and
    ``GET /openapi.json``.

    Args:
        model: The model; only its public API is used (``encode``, ``similarity``,
            ``get_sentence_embedding_dimension``, ``prompts``, ``info``).
        max_batch: Most texts in one request (413 above it).
        max_input_chars: Most characters in one text (413 above it).
        max_body_bytes: Largest request body (413 above it).
        stream_chunk: JSON Lines responses with more rows than this are streamed, this many rows at a time.
        model_name: Name reported by ``/info`` and ``/v1/embeddings`` (default: the model folder's name or
            its Hub id, never a path; see :func:`served_model_name`).
        timeout_body: Seconds a request's body may take to arrive once its headers are in; slower bodies
            get a 408 and the connection is closed.

    Returns:
        A Starlette application (any ASGI server can run it).

    Raises:
        ValueError: When a limit is not a positive integer or the timeout not a positive number.
    """
    for name, value in (
        ("max_batch", max_batch),
        ("max_input_chars", max_input_chars),
        ("max_body_bytes", max_body_bytes),
        ("stream_chunk", stream_chunk),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    check_timeout("timeout_body", timeout_body)
    if max_batch < 2:
        raise ValueError(f"max_batch must be at least 2 (/similarity needs a source and a sentence), got {max_batch}")
    service = Service(
        model,
        routes=ROUTES,
        max_batch=max_batch,
        max_input_chars=max_input_chars,
        max_body_bytes=max_body_bytes,
        stream_chunk=stream_chunk,
        timeout_body=timeout_body,
        model_name=model_name,
    )
    routes = [
        Route(spec.path, _post_endpoint(service, spec), methods=["POST"])
        if isinstance(spec, Post)
        else Route(spec.path, _get_endpoint(service, spec), methods=["GET"])
        for spec in service.routes
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    app.state.service = service
    return app
