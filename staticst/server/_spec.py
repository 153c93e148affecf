"""The routes and request bodies of the service, described as data (no web framework, no logic).

A request body is a :class:`Body`: its :class:`Field` s, each with a name, a kind, a default, a
description and whether it is required. The validator (:mod:`staticst.server._validation`) walks these
descriptions and the OpenAPI document (:mod:`staticst.server._openapi`) is generated from them, so what
the service accepts and what it documents cannot drift apart.

A route is a :class:`Post` (validate the body, run the model, render the result in the negotiated format)
or a :class:`Get` (a JSON body computed once). The table of routes is :data:`staticst.server._routes.ROUTES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from starlette.responses import Response

from staticst.server._errors import ErrorStyle

if TYPE_CHECKING:
    from staticst.model import StaticSentenceTransformer

__all__ = ["KINDS", "USAGE", "Args", "Body", "EncodeCall", "Field", "Get", "Kind", "Post", "Render", "Route"]

Kind = Literal["texts", "text", "sentences", "bool", "dimension", "prompt-name", "string", "enum", "object"]
"""What a field holds (each kind has one validator and one JSON Schema):

* ``texts``: a string or a non-empty list of strings: one batch (``max_batch``, ``max_input_chars``).
* ``text``: one string (``max_input_chars``).
* ``sentences``: a non-empty list of strings sent with one more text (the source sentence): ``max_batch - 1``.
* ``bool``: ``true`` / ``false``.
* ``dimension``: an integer in ``1..dim`` (a float with an integer value is accepted).
* ``prompt-name``: one of the model's prompt names.
* ``string``: any string.
* ``enum``: one of :attr:`Field.values`.
* ``object``: a JSON object with the nested :attr:`Field.fields` (no others).
"""
KINDS: tuple[Kind, ...] = ("texts", "text", "sentences", "bool", "dimension", "prompt-name", "string", "enum", "object")

Args = dict[str, Any]
"""A validated body: every field's value (or default) by field name; objects are nested dicts.

For a route that counts tokens (:attr:`Post.usage`), the renderers also find the count under :data:`USAGE`."""
USAGE = "usage_tokens"
"""The key of the token count in the arguments a counting route's renderer gets (never a field name)."""
EncodeCall = tuple[list[str], dict[str, Any]]
"""What a route encodes: the texts and the keyword arguments of ``model.encode``."""


class Service(Protocol):
    """What a route's functions read of the running service (``staticst.server._app.Service``)."""

    model: Any
    model_name: str
    routes: tuple[Any, ...]
    limits: Any
    info: dict[str, Any]


Render = Callable[[Service, Args, np.ndarray], Response]
"""Writes a route's result in one format: ``render(service, args, result) -> Response``."""


@dataclass(frozen=True)
class Field:
    """One field of a JSON request body.

    Attributes:
        name: The JSON key.
        kind: What it holds (see :data:`Kind`).
        description: One sentence for the OpenAPI document.
        required: Whether the body must have it. Optional fields may be absent or ``null``.
        default: The value when absent or ``null`` (also shown in the OpenAPI document).
        values: ``enum`` only: the allowed values.
        fields: ``object`` only: the nested fields.
        token_ids: ``texts`` only: refuse lists of token ids (OpenAI's other ``input`` form) with a clear message.
    """

    name: str
    kind: Kind
    description: str
    required: bool = False
    default: Any = None
    values: tuple[str, ...] = ()
    fields: tuple[Field, ...] = ()
    token_ids: bool = False

    def __post_init__(self) -> None:
        if self.name == USAGE:
            raise ValueError(f"field name {USAGE!r} is reserved (the token count of routes with usage)")
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name!r}: unknown kind {self.kind!r}; kinds: {', '.join(KINDS)}")
        if (self.kind == "enum") != bool(self.values):
            raise ValueError(f"field {self.name!r}: values are for (and required by) kind 'enum'")
        if (self.kind == "object") != bool(self.fields):
            raise ValueError(f"field {self.name!r}: fields are for (and required by) kind 'object'")
        if self.token_ids and self.kind != "texts":
            raise ValueError(f"field {self.name!r}: token_ids is for kind 'texts'")


@dataclass(frozen=True)
class Body:
    """A JSON request body: an object with these fields and no others.

    Attributes:
        name: Its schema's name under ``components/schemas`` in the OpenAPI document.
        fields: The fields, in the order they are documented and listed in the "unknown field" message.
        check_order: Field names in the order they are validated, which decides the error reported when
            several fields are wrong; empty for the documented order.
    """

    name: str
    fields: tuple[Field, ...]
    check_order: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate field names in {names}")
        if self.check_order and sorted(self.check_order) != sorted(names):
            raise ValueError(f"{self.name}: check_order {self.check_order} must name each field once: {names}")

    @property
    def names(self) -> tuple[str, ...]:
        """The accepted field names, in documented order."""
        return tuple(f.name for f in self.fields)

    @property
    def checked(self) -> tuple[Field, ...]:
        """The fields in validation order."""
        if not self.check_order:
            return self.fields
        by_name = {f.name: f for f in self.fields}
        return tuple(by_name[name] for name in self.check_order)


@dataclass(frozen=True)
class Post:
    """A POST route: negotiate the format, validate the JSON body, encode, render.

    The service runs ``texts, kwargs = encode(args)``, then ``model.encode(texts, **kwargs)`` (inline for
    small requests, in a worker thread for large ones), then ``then(model, embeddings)`` when given, and
    answers ``formats[media_type](service, args, result)``.

    Attributes:
        path: The URL path.
        summary: One line for the OpenAPI document.
        body: The request body.
        encode: What to encode for validated arguments: ``(texts, model.encode keyword arguments)``.
        formats: How the result is rendered, for each media type of :data:`staticst.server._media.FORMATS`.
        errors: The error body style (text-embeddings-inference or OpenAI).
        result: OpenAPI: what the 200 body is ("The embeddings, one row per input").
        json_schema: OpenAPI: the schema of the JSON 200 body.
        line_schema: OpenAPI: the schema of one JSON Lines line.
        then: Turns the embeddings into the result with the model (e.g. similarity scores); ``None``: the
            embeddings are the result.
        stream: Writes row ``i`` of the result as one JSON Lines line: ``stream(args, i, row)``. When given
            (and ``then`` is ``None``), JSON Lines answers with more texts than the service's
            ``stream_chunk`` are encoded and sent chunk by chunk.
        components: OpenAPI: more schemas (under ``components/schemas``) the response schemas refer to.
        usage: The formats whose renderer reports token usage (OpenAI's ``usage``). For these the service
            calls ``model.encode_with_usage(texts, **kwargs)`` instead of ``encode``: the token ids are
            counted in the same pass (and the same worker thread) as the embedding, and the count reaches
            the renderer as ``args[USAGE]``. Streamed answers never count.
    """

    path: str
    summary: str
    body: Body
    encode: Callable[[Args], EncodeCall]
    formats: Mapping[str, Render]
    errors: ErrorStyle
    result: str
    json_schema: Mapping[str, Any]
    line_schema: Mapping[str, Any]
    then: Callable[[StaticSentenceTransformer, np.ndarray], np.ndarray] | None = None
    stream: Callable[[Args, int, np.ndarray], bytes] | None = None
    components: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    usage: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.stream is not None and self.then is not None:
            raise ValueError(f"{self.path}: a route with `then` cannot stream (its rows are not the embeddings)")
        if not set(self.usage) <= set(self.formats):
            raise ValueError(f"{self.path}: usage names formats the route does not render: {self.usage}")


@dataclass(frozen=True)
class Get:
    """A GET route answering a JSON body computed once, when the app is built.

    Attributes:
        path: The URL path.
        summary: One line for the OpenAPI document.
        payload: The body for a service: ``payload(service)``, any orjson-serialisable value.
        result: OpenAPI: what the 200 body is.
        schema: OpenAPI: the schema of the body; ``None`` leaves the route out of the document.
    """

    path: str
    summary: str
    payload: Callable[[Service], Any]
    result: str = ""
    schema: Mapping[str, Any] | None = None


Route = Post | Get
