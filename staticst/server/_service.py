"""The running service: the model, its limits, reading bodies, and encoding inline or in a worker thread."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import numpy as np
from starlette.requests import ClientDisconnect, Request

from staticst.errors import TokenizerError
from staticst.server._errors import BAD_REQUEST, PAYLOAD_TOO_LARGE, REQUEST_TIMEOUT, UNPROCESSABLE, RequestError
from staticst.server._media import FORMATS, decode_json, request_codec
from staticst.server._metrics import Metrics
from staticst.server._spec import Route as RouteSpec
from staticst.server._spec import Run, Truncation, inputs_param
from staticst.server._timeouts import body_deadline
from staticst.server._tokens import Truncator, token_limit
from staticst.server._validation import DEFAULT_MAX_TOKENIZE_TOKENS, Limits

if TYPE_CHECKING:
    from collections.abc import Callable

    from staticst.model import StaticSentenceTransformer

__all__ = ["INLINE_CHARS", "INLINE_TEXTS", "Service", "served_model_name", "tokenizer_failure"]

# Requests with at most this many characters (or token ids) in total are encoded on the event loop (a thread
# hop costs more than the encode); larger ones go to a worker thread so the loop keeps serving other connections.
INLINE_CHARS = 8192
INLINE_TEXTS = 64


class Service:
    """The served model, its limits, and what every request needs, computed once when the app is built.

    Attributes:
        model: The model.
        routes: The route table the app serves.
        limits: The input limits and model facts validation needs.
        stream_chunk: Rows per chunk of a streamed JSON Lines answer.
        timeout_body: Seconds the whole request body may take to arrive (408 after).
        model_name: The name reported by ``/info``, ``/v1/models`` and ``/v1/embeddings``: the given name,
            else the model folder's name or the Hub id (:func:`served_model_name`), never a path.
        truncator: How ``truncate`` / ``truncation_direction`` map onto the model (its ``max_seq_length``).
        metrics: The Prometheus metrics (``/metrics``).
        created: When the service was built (Unix time; OpenAI's ``created`` of the model).
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
        auto_truncate: bool = True,
        max_tokenize_tokens: int = DEFAULT_MAX_TOKENIZE_TOKENS,
    ) -> None:
        self.model = model
        self.routes = tuple(routes)
        info: dict[str, Any] = dict(model.info()) if hasattr(model, "info") else {}
        dim = int(model.get_sentence_embedding_dimension() or info.get("dim") or 0)
        prompts = getattr(model, "prompts", None) or {}
        tokenizer = getattr(model, "tokenizer", None)
        vocab = info.get("vocab_size") or (tokenizer.get_vocab_size(with_added_tokens=True) if tokenizer else None)
        self.limits = Limits(
            max_batch=max_batch,
            max_input_chars=max_input_chars,
            max_body_bytes=max_body_bytes,
            dim=dim,
            prompt_names=tuple(sorted(prompts)),
            vocab_size=int(vocab) if vocab else None,
            max_tokenize_tokens=max_tokenize_tokens,
        )
        self.stream_chunk = stream_chunk
        self.timeout_body = timeout_body
        self.model_name = str(model_name or served_model_name(info.get("model"), info.get("path")))
        self.truncator = Truncator(model, auto_truncate)
        self.metrics = Metrics(self.model_name, dim)
        self.created = int(time.time())
        self._encode_with_usage = getattr(model, "encode_with_usage", None)
        self.info: dict[str, Any] = {
            **{key: value for key, value in info.items() if not _is_path(key, value)},
            "model": self.model_name,
            "dim": dim,
            "layout": info.get("layout", "unknown"),
            "similarity_fn_name": getattr(model, "similarity_fn_name", "cosine"),
            "prompt_names": list(self.limits.prompt_names),
            "formats": list(FORMATS),
            "limits": {
                "max_batch": max_batch,
                "max_input_chars": max_input_chars,
                "max_body_bytes": max_body_bytes,
                "max_tokenize_tokens": max_tokenize_tokens,
            },
            "max_seq_length": token_limit(model),
            "auto_truncate": auto_truncate,
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
            with body_deadline(self.timeout_body):
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
        self,
        texts: list[Any],
        kwargs: dict[str, Any],
        count: bool = False,
        run: Run | None = None,
        param: Callable[[int], str] = inputs_param,
        truncation: Truncation | None = None,
    ) -> tuple[Any, int | None]:
        """``model.encode(texts, **kwargs)`` as a float32 matrix, or ``run(model, texts, kwargs)``.

        Small requests run on the event loop, large ones in a worker thread.

        Args:
            texts: The texts (at least one); token-id lists for a ``run`` that takes ids.
            kwargs: Keyword arguments of ``model.encode`` (or of ``run``).
            count: Also count the token ids pooled, in the same call (``model.encode_with_usage``).
            run: Called instead of ``model.encode``.
            param: Names text ``i`` in error messages.
            truncation: The request's choice of truncation (``None``: the model's own rule, always).

        Returns:
            The result (one row per text for ``encode``), and the token count (``None`` unless ``count``; 0 for
            a model without ``encode_with_usage``).

        Raises:
            RequestError: 422 when the model rejects the arguments, 413 for a text over the token limit when
                the request asked not to truncate.
        """
        model, strict = self.truncator.resolve(truncation)
        if len(texts) <= INLINE_TEXTS and sum(map(len, texts)) <= INLINE_CHARS:
            return self._encode(model, strict, texts, kwargs, count, run, param)
        return await anyio.to_thread.run_sync(self._encode, model, strict, texts, kwargs, count, run, param)

    async def check(
        self, texts: list[str], kwargs: dict[str, Any], truncation: Truncation | None, param: Callable[[int], str]
    ) -> None:
        """Refuse (413) a text over the token limit when the request asked not to truncate; nothing else.

        For answers streamed chunk by chunk, whose status is sent before the first chunk is encoded.
        """
        model, strict = self.truncator.resolve(truncation)
        if not strict:
            return
        check = self.truncator.check
        try:
            if len(texts) <= INLINE_TEXTS and sum(map(len, texts)) <= INLINE_CHARS:
                check(model, texts, kwargs.get("prompt_name"), param)
            else:
                await anyio.to_thread.run_sync(check, model, texts, kwargs.get("prompt_name"), param)
        except TokenizerError as exc:
            raise tokenizer_failure(exc, texts, param) from exc

    def _encode(
        self,
        model: Any,
        strict: bool,
        texts: list[Any],
        kwargs: dict[str, Any],
        count: bool,
        run: Run | None,
        param: Callable[[int], str],
    ) -> tuple[Any, int | None]:
        try:
            if strict:
                self.truncator.check(model, texts, kwargs.get("prompt_name"), param)
            if run is not None:
                return run(model, texts, kwargs, self.limits), None
            if count and self._encode_with_usage is not None:
                emb, tokens = model.encode_with_usage(texts, **kwargs)
                return np.asarray(emb, dtype=np.float32).reshape(len(texts), -1), int(tokens)
            if len(texts) == 1:  # encode(str) is the model's short path (same values); keep the 2-D shape
                emb = np.asarray(model.encode(texts[0], **kwargs), dtype=np.float32).reshape(1, -1)
            else:
                emb = np.asarray(model.encode(texts, **kwargs), dtype=np.float32)
        except TokenizerError as exc:
            raise tokenizer_failure(exc, texts, param) from exc
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


def tokenizer_failure(exc: TokenizerError, texts: list[Any], param: Callable[[int], str]) -> RequestError:
    """The 422 for a text the model's tokenizer failed on (as text-embeddings-inference answers tokenizer errors).

    The input's fault as far as the client can act (another text works; the message says what to change), so
    a 4xx; ``param`` names the field when the failing text (which may carry a prompt, or be cut) is found.
    """
    failed, where = exc.text, None
    if failed is not None:
        for i, text in enumerate(texts):
            if isinstance(text, str) and text and (failed.endswith(text) or text.startswith(failed)):
                where = param(i)
                break
    return RequestError(UNPROCESSABLE, str(exc), error_type="tokenizer", param=where)


def _is_path(key: str, value: Any) -> bool:
    """Whether an entry of ``model.info()`` is a filesystem path (left out of ``/info``)."""
    return key == "path" or (isinstance(value, str) and os.path.isabs(value))
