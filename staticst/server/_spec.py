"""The routes and request bodies of the service, described as data (no web framework, no logic).

A request body is a :class:`Body`: its :class:`Field` s, each with a name, a kind, a default, a
description and whether it is required. The validator (:mod:`staticst.server._validation`) walks these
descriptions and the OpenAPI document (:mod:`staticst.server._openapi`) is generated from them, so what
the service accepts and what it documents cannot drift apart.

A route is a :class:`Post` (validate the body, run the model, render the result in the negotiated format)
or a :class:`Get` (a JSON body computed once). The table of routes is :data:`staticst.server._routes.ROUTES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from starlette.responses import Response

from staticst.server._errors import ErrorStyle

if TYPE_CHECKING:
    from staticst.model import StaticSentenceTransformer

__all__ = [
    "KINDS",
    "KIND_TYPES",
    "TRUNCATION",
    "USAGE",
    "Args",
    "Body",
    "EncodeCall",
    "Field",
    "Get",
    "Kind",
    "Post",
    "Render",
    "Route",
    "Truncation",
    "dispatch_field",
]

Kind = Literal[
    "texts", "text", "sentences", "bool", "dimension", "prompt-name", "string", "enum", "object", "token-ids"
]
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
* ``token-ids``: token ids of the model's vocabulary: one non-empty list (one sequence) or a non-empty list
  of them (a batch; ``max_batch`` sequences of at most ``max_input_chars`` ids).
"""
KINDS: tuple[Kind, ...] = (
    "texts", "text", "sentences", "bool", "dimension", "prompt-name", "string", "enum", "object", "token-ids"
)  # fmt: skip
KIND_TYPES: dict[Kind, frozenset[str]] = {
    "texts": frozenset({"string", "array"}),
    "text": frozenset({"string"}),
    "sentences": frozenset({"array"}),
    "bool": frozenset({"boolean"}),
    "dimension": frozenset({"integer", "number"}),
    "prompt-name": frozenset({"string"}),
    "string": frozenset({"string"}),
    "enum": frozenset({"string"}),
    "object": frozenset({"object"}),
    "token-ids": frozenset({"array"}),
}
"""The JSON types a valid value of each kind has (how the routes sharing a path are told apart)."""

Args = dict[str, Any]
"""A validated body: every field's value (or default) by field name; objects are nested dicts.

For a route that counts tokens (:attr:`Post.usage`), the renderers also find the count under :data:`USAGE`."""
USAGE = "usage_tokens"
"""The key of the token count in the arguments a counting route's renderer gets (never a field name)."""
EncodeCall = tuple[list[Any], dict[str, Any]]
"""What a route encodes: the texts (token-id lists for :attr:`Post.run` routes that take ids) and the keyword
arguments of ``model.encode`` (or of the route's :attr:`Post.run`), plus optionally a :class:`Truncation`
under :data:`TRUNCATION`, which the POST handler takes out and hands to the service."""
TRUNCATION = "truncation"
"""The key of a request's :class:`Truncation` in the keyword arguments of an :data:`EncodeCall`."""


@dataclass(frozen=True)
class Truncation:
    """How a request wants texts over the model's token limit (``max_seq_length``) handled.

    Attributes:
        truncate: ``True``: cut them (as ``model.encode`` does); ``False``: refuse them (413), as
            text-embeddings-inference does; ``None``: the service's default (``--auto-truncate``).
        direction: ``"right"`` keeps the first tokens, ``"left"`` the last; ``None``: the model's own side.
    """

    truncate: bool | None = None
    direction: str | None = None


class Service(Protocol):
    """What a route's functions read of the running service (``staticst.server._app.Service``)."""

    model: Any
    model_name: str
    routes: tuple[Any, ...]
    limits: Any
    info: dict[str, Any]
    metrics: Any
    created: int


Render = Callable[[Service, Args, Any], Response]
"""Writes a route's result in one format: ``render(service, args, result) -> Response`` (the result is the
embeddings, or what the route's ``then`` / ``run`` made of them)."""
Run = Callable[[Any, list[Any], dict[str, Any], Any], Any]
"""What a route calls instead of ``model.encode``: ``run(model, texts, kwargs, limits) -> result`` (``limits``:
the service's :class:`~staticst.server._validation.Limits`, for work that is only bounded once it runs)."""


def inputs_param(i: int) -> str:
    """The default :attr:`Post.text_param`: text ``i`` of the request is ``inputs[i]``."""
    return f"inputs[{i}]"


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

    The service runs ``texts, kwargs = encode(args)``, then ``model.encode(texts, **kwargs)`` (or
    ``run(model, texts, kwargs)``; inline for small requests, in a worker thread for large ones), then
    ``then(model, embeddings)`` when given, and answers ``formats[media_type](service, args, result)``.

    Several routes may share a path (``POST /`` embeds texts and scores a similarity payload): their bodies
    must then differ in the JSON type of one required field (:func:`dispatch_field`), which picks the route
    for each request; the OpenAPI document lists the bodies as ``oneOf``.

    Attributes:
        path: The URL path.
        summary: One line for the OpenAPI document.
        body: The request body.
        encode: What to encode for validated arguments: ``(texts, model.encode keyword arguments)``.
        formats: How the result is rendered, by media type: JSON and any of the other media types of
            :data:`staticst.server._media.FORMATS` (an ``Accept`` naming none of them is a 406).
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
        run: Called instead of ``model.encode`` (e.g. the tokenizer for ``/tokenize``); ``None``: encode.
        text_param: The name of text ``i`` of the request in error messages (``inputs[3]``).
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
    run: Run | None = None
    text_param: Callable[[int], str] = inputs_param

    def __post_init__(self) -> None:
        if self.stream is not None and (self.then is not None or self.run is not None):
            raise ValueError(
                f"{self.path}: a route with `then` or `run` cannot stream (its rows are not the embeddings)"
            )
        if self.usage and self.run is not None:
            raise ValueError(f"{self.path}: usage is counted by model.encode_with_usage, not by `run`")
        if not set(self.usage) <= set(self.formats):
            raise ValueError(f"{self.path}: usage names formats the route does not render: {self.usage}")


@dataclass(frozen=True)
class Get:
    """A GET route answering a body computed once, when the app is built (or on each request when ``live``).

    Attributes:
        path: The URL path.
        summary: One line for the OpenAPI document.
        payload: The body for a service: ``payload(service)``, any orjson-serialisable value (for
            ``media_type`` JSON), else the body as ``str`` or ``bytes``.
        result: OpenAPI: what the 200 body is.
        schema: OpenAPI: the schema of the body; ``None`` leaves the route out of the document.
        media_type: The Content-Type of the answer.
        live: Compute the payload on every request (e.g. ``/metrics``), not once.
    """

    path: str
    summary: str
    payload: Callable[[Service], Any]
    result: str = ""
    schema: Mapping[str, Any] | None = None
    media_type: str = "application/json"
    live: bool = False


Route = Post | Get


def dispatch_field(bodies: Sequence[Body]) -> tuple[str, dict[str, int]]:
    """How requests to routes sharing a path are told apart, and which body each JSON type picks.

    The field is a required field of every body whose JSON types (:data:`KIND_TYPES` of its kinds) differ
    between the bodies.

    Args:
        bodies: The bodies of the routes of one path, in table order.

    Returns:
        ``(field name, {JSON type: index of the body})``; a value of another type (or a missing field, or a
        body that is not an object) goes to the first body, whose validator then names the problem.

    Raises:
        ValueError: When no such field exists (the routes could not be told apart).

    Example:
        >>> a = Body("A", (Field("inputs", "texts", "Texts.", required=True),))
        >>> b = Body("B", (Field("inputs", "object", "Pair.", required=True, fields=(Field("t", "text", "T."),)),))
        >>> dispatch_field([a, b])
        ('inputs', {'array': 0, 'string': 0, 'object': 1})
    """
    for first in bodies[0].fields:
        if not first.required:
            continue
        types: list[frozenset[str]] = []
        for body in bodies:
            same = next((f for f in body.fields if f.name == first.name and f.required), None)
            if same is None:
                break
            types.append(KIND_TYPES[same.kind])
        else:
            if sum(map(len, types)) == len(frozenset().union(*types)):  # pairwise disjoint
                return first.name, {t: i for i, kinds in enumerate(types) for t in sorted(kinds)}
    names = ", ".join(b.name for b in bodies)
    raise ValueError(f"bodies {names} share a path but no required field tells them apart by its JSON type")
