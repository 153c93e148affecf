"""The ASGI application: one generic handler per kind of route, built from the route table.

Every POST route is the same skeleton, written once in :func:`_post_endpoint`: negotiate the format
(``Accept``), read the JSON body, pick the route when several share the path (by the JSON type of one
field, :func:`staticst.server._spec.dispatch_field`), validate, encode (inline for small requests, in a
worker thread for large ones; JSON Lines answers for large batches are streamed chunk by chunk), render the
result in the negotiated format, and count the request in the metrics. What differs between routes is
data: an entry of :data:`staticst.server._routes.ROUTES`. Formats are described in
:mod:`staticst.server._media`, the running service in :mod:`staticst.server._service`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from staticst.server._errors import ErrorStyle, RequestError
from staticst.server._media import FORMATS, JSON, NDJSON, error_response, negotiate
from staticst.server._metrics import UNMATCHED
from staticst.server._routes import ROUTES
from staticst.server._service import Service, served_model_name
from staticst.server._spec import TRUNCATION, USAGE, Args, Get, Post, Truncation, dispatch_field
from staticst.server._timeouts import DEFAULT_TIMEOUT_BODY, check_timeout
from staticst.server._validation import DEFAULT_MAX_TOKENIZE_TOKENS, Validator, json_type

if TYPE_CHECKING:
    from staticst.model import StaticSentenceTransformer

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_INPUT_CHARS",
    "DEFAULT_MAX_TOKENIZE_TOKENS",
    "DEFAULT_STREAM_CHUNK",
    "DEFAULT_TIMEOUT_BODY",
    "Service",
    "create_app",
    "negotiate",
    "served_model_name",
]

logger = logging.getLogger("staticst.server")

DEFAULT_MAX_BATCH = 2048
DEFAULT_MAX_INPUT_CHARS = 20_000
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_STREAM_CHUNK = 256

Endpoint = Callable[[Request], Awaitable[Response]]


async def _stream(
    service: Service,
    texts: list[str],
    kwargs: dict[str, Any],
    args: Args,
    line: Callable[[Args, int, np.ndarray], bytes],
    truncation: Truncation | None,
    style: ErrorStyle,
    param: Callable[[int], str],
) -> Response:
    """A JSON Lines answer encoded and sent ``service.stream_chunk`` rows at a time.

    The first chunk is encoded before the status is sent, so its errors are ordinary 4xx answers. A later
    chunk that fails (the status is out) ends the stream with one line holding the error body, in the route's
    error style, instead of a cut connection.
    """
    chunk = service.stream_chunk

    def rendered(start: int, part: np.ndarray) -> bytes:
        return b"".join(line(args, start + i, row) for i, row in enumerate(part))

    def named(start: int) -> Callable[[int], str]:
        return lambda i: param(start + i)

    first, _ = await service.encode(texts[:chunk], kwargs, param=param, truncation=truncation)

    async def lines() -> AsyncIterator[bytes]:
        yield rendered(0, first)
        for start in range(chunk, len(texts), chunk):
            try:
                part, _ = await service.encode(
                    texts[start : start + chunk], kwargs, param=named(start), truncation=truncation
                )
            except RequestError as exc:
                yield orjson.dumps(style.body(exc)) + b"\n"
                return
            yield rendered(start, part)

    return StreamingResponse(lines(), media_type=NDJSON)


Handler = Callable[[str, Any], Awaitable[Response]]


def _handler(service: Service, route: Post) -> Handler:
    """Validate, encode and render for one route: everything it needs is looked up here, once."""
    if JSON not in route.formats or not set(route.formats) <= set(FORMATS):
        raise ValueError(f"{route.path}: formats must include {JSON} and be among {', '.join(FORMATS)}")
    validate = Validator(route.body, service.limits)
    encode, model = service.encode, service.model
    encode_args, then, line, run, param = route.encode, route.then, route.stream, route.run, route.text_param
    formats = dict(route.formats)
    counted = frozenset(route.usage)
    chunk = service.stream_chunk
    batch = service.metrics.route(route.path, "POST").batch

    async def handle(fmt: str, data: Any) -> Response:
        args = validate(data)
        texts, kwargs = encode_args(args)
        truncation = kwargs.pop(TRUNCATION, None)  # the service's, not a keyword of model.encode
        batch.observe(len(texts))
        if line is not None and fmt == NDJSON and len(texts) > chunk:
            await service.check(texts, kwargs, truncation, param)  # a 413 must come before the 200 is sent
            return await _stream(service, texts, kwargs, args, line, truncation, route.errors, param)
        result, tokens = await encode(texts, kwargs, fmt in counted, run, param, truncation)
        if tokens is not None:
            args[USAGE] = tokens
        if then is not None:
            result = then(model, result)
        return formats[fmt](service, args, result)

    return handle


def _post_endpoint(service: Service, routes: Sequence[Post]) -> Endpoint:
    """The handler of the POST routes of one path (one route, or several told apart by a field's JSON type)."""
    first = routes[0]
    handlers = [_handler(service, route) for route in routes]
    offered = tuple(f for f in FORMATS if f in first.formats)
    style = first.errors
    if len(routes) > 1:
        key, picks = dispatch_field([r.body for r in routes])
        if any(set(r.formats) != set(first.formats) or r.errors != style for r in routes):
            raise ValueError(f"{first.path}: the routes of one path must have the same formats and error style")
    else:
        key, picks = "", {}
    single = handlers[0]
    read_json = service.read_json
    metrics = service.metrics
    record = metrics.route(first.path, "POST").done

    async def endpoint(request: Request) -> Response:
        start = time.perf_counter()
        metrics.in_flight += 1
        try:
            fmt = negotiate(request.headers.get("accept"), offered)
            data = await read_json(request)
            if picks and isinstance(data, dict):
                response = await handlers[picks.get(json_type(data.get(key)), 0)](fmt, data)
            else:
                response = await single(fmt, data)
        except RequestError as exc:
            response = error_response(exc, style)
        finally:
            metrics.in_flight -= 1
        record(response.status_code, time.perf_counter() - start)
        return response

    return endpoint


class _Methods:
    """One path's endpoints by method, as one ASGI app: ``Allow`` lists every method of the path.

    ``GET /`` (liveness) and ``POST /`` (embed or similarity) share a path: one Starlette route per method
    would answer the first route's methods only (``OPTIONS /`` said ``Allow: POST``). Here ``OPTIONS`` is a
    204 with the path's ``Allow``, ``HEAD`` is ``GET`` without a body, any other method a 405 naming them.
    """

    def __init__(self, endpoints: dict[str, Endpoint]) -> None:
        self.endpoints = dict(endpoints)
        if "GET" in self.endpoints:
            self.endpoints["HEAD"] = self.endpoints["GET"]  # the server sends no body for HEAD
        self.allow = ", ".join(sorted({*self.endpoints, "OPTIONS"}))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive, send)
        endpoint = self.endpoints.get(request.method)
        if endpoint is not None:
            response = await endpoint(request)
        elif request.method == "OPTIONS":
            _count_unrouted(request, 204)
            response = Response(status_code=204, headers={"Allow": self.allow})
        else:
            raise HTTPException(405, headers={"Allow": self.allow})
        await response(scope, receive, send)


def _get_endpoint(service: Service, route: Get) -> Endpoint:
    """The handler of a GET route: its body is serialised once, here (or on each request when ``live``)."""
    record = service.metrics.route(route.path, "GET").done
    media_type = route.media_type

    def serialise() -> bytes:
        payload = route.payload(service)
        if media_type == JSON:
            return orjson.dumps(payload)
        return payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)

    body = b"" if route.live else serialise()
    live = route.live

    async def endpoint(request: Request) -> Response:
        start = time.perf_counter()
        response = Response(serialise() if live else body, media_type=media_type)
        record(200, time.perf_counter() - start)
        return response

    return endpoint


def _count_unrouted(request: Request, status: int) -> None:
    """Count a request Starlette answered without a route handler (404, 405) or that failed (500)."""
    service = getattr(request.app.state, "service", None)
    if service is None:
        return
    path = request.url.path
    known = any(route.path == path for route in service.routes)
    method = request.method if request.method in _METHODS else "other"  # labels never come from the client
    service.metrics.route(path if known else UNMATCHED, method if known else "any").count(status)


_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    _count_unrouted(request, exc.status_code)
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
    _count_unrouted(request, 500)
    return Response(
        orjson.dumps({"error": f"internal server error: {type(exc).__name__}", "error_type": "internal"}),
        status_code=500,
        media_type=JSON,
    )


def create_app(
    model: StaticSentenceTransformer,
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    stream_chunk: int = DEFAULT_STREAM_CHUNK,
    model_name: str | None = None,
    timeout_body: float = DEFAULT_TIMEOUT_BODY,
    auto_truncate: bool = True,
    max_tokenize_tokens: int = DEFAULT_MAX_TOKENIZE_TOKENS,
) -> Starlette:
    """Build the ASGI application serving ``model``.

    Routes (:data:`staticst.server._routes.ROUTES`): text-embeddings-inference's ``POST /embed``, ``POST /``
    and ``POST /invocations`` (embeddings, or similarity scores for a ``source_sentence`` payload),
    ``POST /similarity``, ``POST /tokenize``, ``POST /decode``; OpenAI's ``POST /v1/embeddings`` and
    ``GET /v1/models``; ``GET /health`` (also ``/`` and ``/ping``), ``GET /info``, ``GET /metrics``
    (Prometheus) and ``GET /openapi.json``.

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
        auto_truncate: What a request without ``truncate`` gets: ``True`` cuts texts at the model's
            ``max_seq_length`` (as ``model.encode`` does), ``False`` refuses longer texts with a 413 (as
            text-embeddings-inference does by default).
        max_tokenize_tokens: Most tokens one ``/tokenize`` answer lists (413 above; bounds its memory).

    Returns:
        A Starlette application (any ASGI server can run it).

    Raises:
        ValueError: When a limit is not a positive integer up to ``sys.maxsize`` or the timeout not a positive
            number.
    """
    for name, value in (
        ("max_batch", max_batch),
        ("max_input_chars", max_input_chars),
        ("max_body_bytes", max_body_bytes),
        ("stream_chunk", stream_chunk),
        ("max_tokenize_tokens", max_tokenize_tokens),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= sys.maxsize:
            raise ValueError(f"{name} must be a positive integer up to {sys.maxsize}, got {value!r}")
    check_timeout("timeout_body", timeout_body)
    if not isinstance(auto_truncate, bool):
        raise ValueError(f"auto_truncate must be True or False, got {auto_truncate!r}")
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
        auto_truncate=auto_truncate,
        max_tokenize_tokens=max_tokenize_tokens,
    )
    posts: dict[str, list[Post]] = {}
    for spec in service.routes:
        if isinstance(spec, Post):
            posts.setdefault(spec.path, []).append(spec)
    by_path: dict[str, dict[str, Endpoint]] = {}
    for spec in service.routes:
        if isinstance(spec, Get):
            by_path.setdefault(spec.path, {})["GET"] = _get_endpoint(service, spec)
        elif posts[spec.path][0] is spec:  # the first route of its path serves them all
            by_path.setdefault(spec.path, {})["POST"] = _post_endpoint(service, posts[spec.path])
    routes = [Route(path, _Methods(endpoints)) for path, endpoints in by_path.items()]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    app.state.service = service
    return app
