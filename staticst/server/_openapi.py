"""The OpenAPI 3.1 document of the service, generated from the route table and the live limits.

The request schemas come from the same :class:`~staticst.server._spec.Body` descriptions the validator
walks (one JSON Schema per field kind here, one checker per kind in :mod:`staticst.server._validation`),
and the limits are the live ones, so the document states exactly what the service accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from staticst.server._errors import ErrorStyle
from staticst.server._media import JSON, NDJSON, OCTET
from staticst.server._spec import Body, Field, Get, Kind, Post, Route, dispatch_field
from staticst.server._validation import Limits

__all__ = ["body_schema", "build_openapi", "field_schema"]


# ----------------------------------------------------------------------------- request schemas, one per kind
def _text(limits: Limits) -> dict[str, Any]:
    return {"type": "string", "maxLength": limits.max_input_chars}


def _texts(f: Field, limits: Limits) -> dict[str, Any]:
    text = _text(limits)
    return {
        "oneOf": [text, {"type": "array", "items": text, "minItems": 1, "maxItems": limits.max_batch}],
        "description": f"{f.description} A text or a list of 1..{limits.max_batch} texts of at most "
        f"{limits.max_input_chars} characters.",
    }


def _sentences(f: Field, limits: Limits) -> dict[str, Any]:
    return {"type": "array", "items": _text(limits), "minItems": 1, "maxItems": limits.max_batch - 1}


def _token_ids(f: Field, limits: Limits) -> dict[str, Any]:
    token: dict[str, Any] = {"type": "integer", "minimum": 0}
    if limits.vocab_size is not None:
        token["maximum"] = limits.vocab_size - 1
    sequence = {"type": "array", "items": token, "minItems": 1, "maxItems": limits.max_input_chars}
    return {
        "oneOf": [sequence, {"type": "array", "items": sequence, "minItems": 1, "maxItems": limits.max_batch}],
        "description": f"{f.description} One sequence of 1..{limits.max_input_chars} token ids, or a list of "
        f"1..{limits.max_batch} such sequences.",
    }


_SCHEMAS: dict[Kind, Callable[[Field, Limits], dict[str, Any]]] = {
    "texts": _texts,
    "text": lambda f, limits: _text(limits),
    "sentences": _sentences,
    "bool": lambda f, limits: {"type": "boolean"},
    "dimension": lambda f, limits: {"type": "integer", "minimum": 1, "maximum": limits.dim},
    "prompt-name": lambda f, limits: {"type": "string", "enum": list(limits.prompt_names)},
    "string": lambda f, limits: {"type": "string"},
    "enum": lambda f, limits: {"type": "string", "enum": list(f.values)},
    "object": lambda f, limits: _object(f.fields, limits),
    "token-ids": _token_ids,
}


def _object(fields: Sequence[Field], limits: Limits) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [f.name for f in fields if f.required],
        "properties": {f.name: field_schema(f, limits) for f in fields},
    }


def field_schema(f: Field, limits: Limits) -> dict[str, Any]:
    """The JSON Schema of one field: its kind's schema; ``null`` is allowed when the field is optional.

    Args:
        f: The field.
        limits: The service limits and model facts.

    Returns:
        The schema, with the field's default and description.
    """
    schema = _SCHEMAS[f.kind](f, limits)
    if not f.required:  # the validators read an optional field's null as "absent"
        if "oneOf" in schema:
            schema["oneOf"] = [*schema["oneOf"], {"type": "null"}]
        else:
            schema["type"] = [schema["type"], "null"]
            if "enum" in schema:
                schema["enum"] = [*schema["enum"], None]
    if f.default is not None:
        schema["default"] = f.default
    schema.setdefault("description", f.description)
    return schema


def body_schema(body: Body, limits: Limits) -> dict[str, Any]:
    """The JSON Schema of a request body: an object with exactly the described fields.

    Args:
        body: The request body description.
        limits: The service limits and model facts.

    Returns:
        The schema (``additionalProperties: false``, the required fields, one property per field).
    """
    return _object(body.fields, limits)


# ----------------------------------------------------------------------------- operations
def _error_responses(style: ErrorStyle) -> dict[str, Any]:
    error = {"content": {JSON: {"schema": {"$ref": f"#/components/schemas/{style.schema_name}"}}}}
    return {
        "400": {"description": "The body is not valid JSON (or not valid in its declared charset).", **error},
        "406": {"description": "The Accept header names no supported format.", **error},
        "408": {"description": "The body did not arrive within the body timeout; the connection is closed.", **error},
        "413": {
            "description": "A limit was exceeded: body bytes, number of inputs, characters of one input, or "
            "(with `truncate: false`) tokens of one input over the model's `max_seq_length`.",
            **error,
        },
        "415": {
            "description": "The Content-Type is missing, not JSON, or names a charset other than UTF-8/16/32, "
            "US-ASCII, ISO-8859-* or windows-125*.",
            **error,
        },
        "422": {"description": "Wrong field types or values.", **error},
    }


def _accept(formats: Sequence[str]) -> dict[str, Any]:
    offered = [JSON, *(f for f in (OCTET, NDJSON) if f in formats)]
    choices = "|".join([*offered, r"application/\*", r"\*/\*"])
    return {
        "name": "Accept",
        "in": "header",
        "required": False,
        "description": (
            f"Response format: {JSON} (default, also for */* or no header)"
            + "".join(f", {f}" for f in offered[1:])
            + " (q-values honoured); anything else is 406."
        ),
        "schema": {"type": "string", "pattern": rf"^(|{choices})$"},
    }


_FORMAT_NOTES = {
    JSON: "",
    OCTET: f" `{OCTET}`: little-endian float32 values, shape in the `X-Embedding-Shape` header.",
    NDJSON: f" `{NDJSON}`: one row (one input) per line.",
}
_SHAPE_HEADERS = {
    "X-Embedding-Shape": {"description": "Comma-separated shape (binary format only).", "schema": {"type": "string"}},
    "X-Embedding-Dtype": {"description": "Always `<f4` (binary format only).", "schema": {"type": "string"}},
}


def _one_or_any(schemas: list[Any]) -> Any:
    unique = [s for i, s in enumerate(schemas) if s not in schemas[:i]]
    return unique[0] if len(unique) == 1 else {"anyOf": unique}


def _post(routes: Sequence[Post]) -> dict[str, Any]:
    """The operation of the routes of one path (one route, or several told apart by a field's JSON type)."""
    first = routes[0]
    formats = [f for f in (JSON, OCTET, NDJSON) if f in first.formats]
    for route in routes[1:]:
        if set(route.formats) != set(first.formats) or route.errors != first.errors:
            raise ValueError(f"{route.path}: the routes of one path must have the same formats and error style")
    if len(routes) == 1:
        summary = first.summary
        request: dict[str, Any] = {"$ref": f"#/components/schemas/{first.body.name}"}
    else:
        key, picks = dispatch_field([r.body for r in routes])
        by_route = {i: sorted(t for t, j in picks.items() if j == i) for i in range(len(routes))}
        summary = " Or: ".join(
            f"With `{key}` of type {' / '.join(by_route[i])}: {r.summary}" for i, r in enumerate(routes)
        )
        request = {"oneOf": [{"$ref": f"#/components/schemas/{r.body.name}"} for r in routes]}
    result = "; or: ".join(dict.fromkeys(r.result for r in routes))
    content: dict[str, Any] = {JSON: {"schema": _one_or_any([r.json_schema for r in routes])}}
    if OCTET in formats:
        content[OCTET] = {"schema": {"type": "string", "format": "binary"}}
    if NDJSON in formats:
        content[NDJSON] = {"schema": _one_or_any([r.line_schema for r in routes])}
    ok: dict[str, Any] = {"description": f"{result}.{''.join(_FORMAT_NOTES[f] for f in formats)}", "content": content}
    if OCTET in formats:
        ok["headers"] = _SHAPE_HEADERS
    return {
        "summary": summary,
        "parameters": [_accept(formats)],
        "requestBody": {"required": True, "content": {JSON: {"schema": request}}},
        "responses": {"200": ok, **_error_responses(first.errors)},
    }


def _get(route: Get) -> dict[str, Any]:
    return {
        "summary": route.summary,
        "responses": {
            "200": {"description": route.result, "content": {route.media_type.split(";")[0]: {"schema": route.schema}}}
        },
    }


def build_openapi(routes: Sequence[Route], limits: Limits, model_name: str) -> dict[str, Any]:
    """The OpenAPI document for these routes with these limits.

    Args:
        routes: The route table (:data:`staticst.server._routes.ROUTES`); a :class:`Get` route without a
            schema is left out; POST routes sharing a path are one operation whose body is ``oneOf`` theirs.
        limits: The service limits and model facts (dimension, prompt names).
        model_name: The served model's name (shown in the title).

    Returns:
        The OpenAPI 3.1 document as a dict.
    """
    posts = [r for r in routes if isinstance(r, Post)]
    schemas: dict[str, Any] = {}
    for post in posts:
        schemas.setdefault(post.errors.schema_name, post.errors.schema)
    for post in posts:
        schemas[post.body.name] = body_schema(post.body, limits)
        schemas.update(post.components)
    paths: dict[str, dict[str, Any]] = {}
    by_path: dict[str, list[Post]] = {}
    for post in posts:
        by_path.setdefault(post.path, []).append(post)
    for route in routes:
        if isinstance(route, Post):
            if "post" not in paths.get(route.path, {}):
                paths.setdefault(route.path, {})["post"] = _post(by_path[route.path])
        elif route.schema is not None:
            paths.setdefault(route.path, {})["get"] = _get(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"staticst embedding service ({model_name})",
            "version": "1",
            "description": "Static sentence embeddings over HTTP. Formats are chosen by the Accept header.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
