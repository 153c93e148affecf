"""The ASGI application: a thin Starlette layer over ``model.encode`` and ``model.similarity``.

Response formats are chosen by the ``Accept`` header:

* ``application/json`` (default): orjson straight from the numpy array (float32 shortest round-trip repr).
* ``application/octet-stream``: the little-endian float32 rows of the result, as one buffer; the shape is
  in the ``X-Embedding-Shape`` header (``"rows,dim"``) and the dtype in ``X-Embedding-Dtype`` (``"<f4"``).
* ``application/x-ndjson`` (JSON Lines): one row per line; batches larger than ``stream_chunk`` are
  encoded chunk by chunk and streamed as each chunk is done.
"""

from __future__ import annotations

import base64
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from staticst.server._openapi import build_openapi
from staticst.server._validation import (
    BAD_REQUEST,
    NOT_ACCEPTABLE,
    PAYLOAD_TOO_LARGE,
    UNPROCESSABLE,
    UNSUPPORTED_MEDIA_TYPE,
    Limits,
    RequestError,
    parse_embed,
    parse_openai,
    parse_similarity,
)

if TYPE_CHECKING:
    from staticst import StaticSentenceTransformer

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_INPUT_CHARS",
    "JSON",
    "NDJSON",
    "OCTET",
    "create_app",
]

logger = logging.getLogger("staticst.server")

DEFAULT_MAX_BATCH = 2048
DEFAULT_MAX_INPUT_CHARS = 20_000
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_STREAM_CHUNK = 256
# Requests with at most this many characters in total are encoded on the event loop (a thread hop costs
# more than the encode); larger ones go to a worker thread so the loop keeps serving other connections.
INLINE_CHARS = 8192

JSON = "application/json"
OCTET = "application/octet-stream"
NDJSON = "application/x-ndjson"
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
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


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


def _error_response(exc: RequestError, *, openai: bool = False) -> Response:
    body = exc.to_openai_json() if openai else exc.to_json()
    return Response(orjson.dumps(body), status_code=exc.status, media_type=JSON)


def _json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload, option=_NUMPY), status_code=status, media_type=JSON)


def _binary_response(array: np.ndarray) -> Response:
    data = np.ascontiguousarray(array, dtype="<f4")
    return Response(
        data.tobytes(),
        media_type=OCTET,
        headers={"x-embedding-shape": ",".join(str(s) for s in data.shape), "x-embedding-dtype": "<f4"},
    )


def _ndjson_lines(array: np.ndarray) -> bytes:
    if array.ndim == 1:
        return b"".join(orjson.dumps(float(v)) + b"\n" for v in array.tolist())
    return b"".join(orjson.dumps(row, option=_NUMPY) + b"\n" for row in array)


class _Service:
    """Holds the model and limits; its bound methods are the route endpoints."""

    def __init__(
        self,
        model: StaticSentenceTransformer,
        *,
        max_batch: int,
        max_input_chars: int,
        max_body_bytes: int,
        stream_chunk: int,
        model_name: str | None,
    ) -> None:
        self.model = model
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
        self.model_name = str(model_name or info.get("model") or "staticst")
        self.info = {
            **info,
            "model": self.model_name,
            "dim": dim,
            "layout": info.get("layout", "unknown"),
            "similarity_fn_name": getattr(model, "similarity_fn_name", "cosine"),
            "prompt_names": list(self.limits.prompt_names),
            "formats": [JSON, OCTET, NDJSON],
            "limits": {"max_batch": max_batch, "max_input_chars": max_input_chars, "max_body_bytes": max_body_bytes},
        }
        self.info_body = orjson.dumps(self.info)
        self.openapi_body = orjson.dumps(build_openapi(self.limits, self.model_name))

    # ----------------------------------------------------------------- request plumbing
    async def read_json(self, request: Request) -> Any:
        """Read the body within ``max_body_bytes`` and decode it as JSON."""
        content_type = request.headers.get("content-type")
        if content_type is not None:
            media = content_type.partition(";")[0].strip().lower()
            if media != JSON and not media.endswith("+json"):
                raise RequestError(
                    UNSUPPORTED_MEDIA_TYPE,
                    f"Content-Type {content_type!r} is not supported; send the body as {JSON}",
                    error_type="unsupported_media_type",
                    value=content_type,
                )
        limit = self.limits.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise RequestError(BAD_REQUEST, f"invalid Content-Length {length!r}", value=length) from None
            if declared > limit:
                raise self._too_large(declared)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise self._too_large(size)
                chunks.append(chunk)
        except ClientDisconnect:  # nobody to answer; end the request quietly
            raise RequestError(BAD_REQUEST, "the client disconnected before sending the whole body") from None
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if not body:
            raise RequestError(BAD_REQUEST, "the request body is empty; send a JSON object", error_type="invalid_json")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise RequestError(
                BAD_REQUEST, f"the request body is not valid JSON: {exc}", error_type="invalid_json"
            ) from None

    def _too_large(self, size: int) -> RequestError:
        return RequestError(
            PAYLOAD_TOO_LARGE,
            f"the request body has {size} bytes; the limit is {self.limits.max_body_bytes} bytes",
            error_type="payload_too_large",
            limit=self.limits.max_body_bytes,
            value=size,
        )

    async def run_encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        """``model.encode(texts, **kwargs)``; large requests run in a worker thread."""
        if len(texts) <= 64 and sum(map(len, texts)) <= INLINE_CHARS:
            return self._encode(texts, kwargs)
        return await anyio.to_thread.run_sync(self._encode, texts, kwargs)

    def _encode(self, texts: list[str], kwargs: dict[str, Any]) -> np.ndarray:
        try:
            if len(texts) == 1:  # encode(str) is the model's short path (same values); keep the 2-D shape
                return np.asarray(self.model.encode(texts[0], **kwargs), dtype=np.float32).reshape(1, -1)
            return np.asarray(self.model.encode(texts, **kwargs), dtype=np.float32)
        except (ValueError, TypeError, KeyError) as exc:
            raise RequestError(UNPROCESSABLE, f"the model rejected the request: {exc}") from exc

    def _stream(self, texts: list[str], kwargs: dict[str, Any], line: Callable[[int, Any], bytes]) -> Response:
        chunk = self.stream_chunk

        async def lines() -> AsyncIterator[bytes]:
            for start in range(0, len(texts), chunk):
                part = await self.run_encode(texts[start : start + chunk], **kwargs)
                yield b"".join(line(start + i, row) for i, row in enumerate(part))

        return StreamingResponse(lines(), media_type=NDJSON)

    # ----------------------------------------------------------------- routes
    async def embed(self, request: Request) -> Response:
        try:
            fmt = negotiate(request.headers.get("accept"))
            args = parse_embed(await self.read_json(request), self.limits)
            kwargs = {
                "normalize_embeddings": args.normalize,
                "truncate_dim": args.truncate_dim,
                "prompt_name": args.prompt_name,
            }
            if fmt == NDJSON and len(args.texts) > self.stream_chunk:
                return self._stream(args.texts, kwargs, lambda i, row: orjson.dumps(row, option=_NUMPY) + b"\n")
            emb = await self.run_encode(args.texts, **kwargs)
        except RequestError as exc:
            return _error_response(exc)
        if fmt == JSON:
            return _json_response(emb)
        if fmt == OCTET:
            return _binary_response(emb)
        return Response(_ndjson_lines(emb), media_type=NDJSON)

    async def openai_embeddings(self, request: Request) -> Response:
        try:
            fmt = negotiate(request.headers.get("accept"))
            args = parse_openai(await self.read_json(request), self.limits)
            kwargs = {"normalize_embeddings": True, "truncate_dim": args.dimensions}
            b64 = args.encoding_format == "base64"

            def item(i: int, row: np.ndarray) -> dict[str, Any]:
                vec: Any = base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode() if b64 else row
                return {"object": "embedding", "index": i, "embedding": vec}

            if fmt == NDJSON and len(args.texts) > self.stream_chunk:
                return self._stream(
                    args.texts, kwargs, lambda i, row: orjson.dumps(item(i, row), option=_NUMPY) + b"\n"
                )
            emb = await self.run_encode(args.texts, **kwargs)
        except RequestError as exc:
            return _error_response(exc, openai=True)
        if fmt == OCTET:
            return _binary_response(emb)
        if fmt == NDJSON:
            return Response(
                b"".join(orjson.dumps(item(i, row), option=_NUMPY) + b"\n" for i, row in enumerate(emb)),
                media_type=NDJSON,
            )
        tokens = self._count_tokens(args.texts)
        return _json_response(
            {
                "object": "list",
                "data": [item(i, row) for i, row in enumerate(emb)],
                "model": self.model_name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    def _count_tokens(self, texts: Sequence[str]) -> int:
        tokenize = getattr(self.model, "tokenize", None)
        if tokenize is None:
            return 0
        try:
            features = tokenize(list(texts))
            mask = features.get("attention_mask")
            if mask is not None:  # padded 2-D ids (sentence-transformers style)
                return int(np.asarray(mask).sum())
            ids = features["input_ids"]
            if isinstance(ids, np.ndarray) and ids.ndim == 1:  # staticst: flat ids of the whole batch
                return int(ids.size)
            return int(sum(len(row) for row in ids))
        except Exception:  # noqa: BLE001 - usage is informational; never fail a request over it
            return 0

    async def similarity(self, request: Request) -> Response:
        try:
            fmt = negotiate(request.headers.get("accept"))
            args = parse_similarity(await self.read_json(request), self.limits)
            emb = await self.run_encode([args.source, *args.sentences], prompt_name=args.prompt_name)
            scores = np.asarray(self.model.similarity(emb[:1], emb[1:]), dtype=np.float32).reshape(-1)
        except RequestError as exc:
            return _error_response(exc)
        if fmt == OCTET:
            return _binary_response(scores)
        if fmt == NDJSON:
            return Response(_ndjson_lines(scores), media_type=NDJSON)
        return _json_response(scores)

    async def health(self, request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    async def get_info(self, request: Request) -> Response:
        return Response(self.info_body, media_type=JSON)

    async def openapi(self, request: Request) -> Response:
        return Response(self.openapi_body, media_type=JSON)


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


def create_app(
    model: StaticSentenceTransformer,
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    stream_chunk: int = DEFAULT_STREAM_CHUNK,
    model_name: str | None = None,
) -> Starlette:
    """Build the ASGI application serving ``model``.

    Routes: ``POST /embed`` (text-embeddings-inference style), ``POST /v1/embeddings`` (OpenAI style),
    ``POST /similarity``, ``GET /health``, ``GET /info`` and ``GET /openapi.json``.

    Args:
        model: The model; only its public API is used (``encode``, ``similarity``,
            ``get_sentence_embedding_dimension``, ``prompts``, ``info``).
        max_batch: Most texts in one request (413 above it).
        max_input_chars: Most characters in one text (413 above it).
        max_body_bytes: Largest request body (413 above it).
        stream_chunk: JSON Lines responses with more rows than this are streamed, this many rows at a time.
        model_name: Name reported by ``/info`` and ``/v1/embeddings`` (default: ``model.info()["model"]``).

    Returns:
        A Starlette application (any ASGI server can run it).

    Raises:
        ValueError: When a limit is not a positive integer.
    """
    for name, value in (
        ("max_batch", max_batch),
        ("max_input_chars", max_input_chars),
        ("max_body_bytes", max_body_bytes),
        ("stream_chunk", stream_chunk),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if max_batch < 2:
        raise ValueError(f"max_batch must be at least 2 (/similarity needs a source and a sentence), got {max_batch}")
    service = _Service(
        model,
        max_batch=max_batch,
        max_input_chars=max_input_chars,
        max_body_bytes=max_body_bytes,
        stream_chunk=stream_chunk,
        model_name=model_name,
    )
    routes = [
        Route("/embed", service.embed, methods=["POST"]),
        Route("/v1/embeddings", service.openai_embeddings, methods=["POST"]),
        Route("/similarity", service.similarity, methods=["POST"]),
        Route("/health", service.health, methods=["GET"]),
        Route("/info", service.get_info, methods=["GET"]),
        Route("/openapi.json", service.openapi, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    app.state.service = service
    return app
