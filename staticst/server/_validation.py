"""Request validation for the HTTP service: plain Python, no web framework.

:class:`Validator` walks a :class:`~staticst.server._spec.Body` description and turns a decoded JSON body
into the arguments of a library call (a dict by field name), or raises :class:`RequestError` with the HTTP
status, a message naming the offending value and the limit, and machine-readable fields (``param``,
``limit``, ``value``). Each field kind has one checker here and one JSON Schema in
:mod:`staticst.server._openapi`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from staticst.server._errors import (
    BAD_REQUEST,
    NOT_ACCEPTABLE,
    PAYLOAD_TOO_LARGE,
    SHOWN_CHARS,
    UNPROCESSABLE,
    UNSUPPORTED_MEDIA_TYPE,
    RequestError,
    shown,
)
from staticst.server._spec import Args, Body, Field, Kind

__all__ = [
    "BAD_REQUEST",
    "DEFAULT_MAX_TOKENIZE_TOKENS",
    "NOT_ACCEPTABLE",
    "PAYLOAD_TOO_LARGE",
    "UNPROCESSABLE",
    "UNSUPPORTED_MEDIA_TYPE",
    "Limits",
    "RequestError",
    "Validator",
    "parse",
]

DEFAULT_MAX_TOKENIZE_TOKENS = 262_144
"""Default most tokens one ``/tokenize`` answer lists (about 17 MB of JSON)."""


@dataclass(frozen=True)
class Limits:
    """The service's input limits and the model facts validation needs.

    Attributes:
        max_batch: Most texts in one request.
        max_input_chars: Most characters (code points) in one text.
        max_body_bytes: Largest request body in bytes.
        dim: The model's embedding dimension (the largest allowed ``truncate_dim``).
        prompt_names: The model's prompt names (allowed values of ``prompt_name``).
        vocab_size: The tokenizer's vocabulary size (token ids are ``0..vocab_size - 1``); ``None``: unknown,
            any non-negative id.
        max_tokenize_tokens: Most tokens ``/tokenize`` lists in one answer (413 above: each token is a JSON
            object of ~65 bytes, so this bounds the answer and the server's memory for it).
    """

    max_batch: int
    max_input_chars: int
    max_body_bytes: int
    dim: int
    prompt_names: tuple[str, ...] = field(default_factory=tuple)
    vocab_size: int | None = None
    max_tokenize_tokens: int = DEFAULT_MAX_TOKENIZE_TOKENS


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value (as in :data:`staticst.server._spec.KIND_TYPES`).

    A value JSON cannot hold is named by its Python type (``"bytes"``, ``"tuple"``...).
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _key(key: str) -> str:
    """An unknown key as the error's ``param``: itself, or its :func:`shown` summary when long."""
    return key if len(key) <= SHOWN_CHARS else shown(key)


def _wrong_type(param: str, expected: str, value: Any) -> RequestError:
    kind = json_type(value)
    return RequestError(UNPROCESSABLE, f"{param} must be {expected}, got {kind}", param=param, value=kind)


def _check_text(text: Any, param: str, limits: Limits) -> str:
    if not isinstance(text, str):
        raise _wrong_type(param, "a string", text)
    if len(text) > limits.max_input_chars:
        raise RequestError(
            PAYLOAD_TOO_LARGE,
            f"{param} has {len(text)} characters; the limit is {limits.max_input_chars} (server option --max-input-chars)",
            error_type="input_too_long",
            param=param,
            limit=limits.max_input_chars,
            value=len(text),
        )
    return text


def _texts(value: Any, name: str, limits: Limits) -> list[str]:
    """A string or a non-empty list of strings, within the batch and length limits, as a list."""
    if value is None:
        raise RequestError(UNPROCESSABLE, f"field {name!r} is required (a string or a list of strings)", param=name)
    if isinstance(value, str):
        return [_check_text(value, name, limits)]
    if not isinstance(value, list):
        raise _wrong_type(name, "a string or a list of strings", value)
    if not value:
        raise RequestError(UNPROCESSABLE, f"{name} is an empty list; send at least one text", param=name, value=0)
    if len(value) > limits.max_batch:
        raise RequestError(
            PAYLOAD_TOO_LARGE,
            f"{name} has {len(value)} texts; the limit is {limits.max_batch} per request (server option --max-batch)",
            error_type="too_many_inputs",
            param=name,
            limit=limits.max_batch,
            value=len(value),
        )
    max_chars = limits.max_input_chars
    for i, text in enumerate(value):
        if type(text) is not str or len(text) > max_chars:
            _check_text(text, f"{name}[{i}]", limits)
    return value


# ----------------------------------------------------------------------------- one checker per kind
# check(field, param, limits, container) -> the field's value, where ``container`` is the JSON object holding
# the field and ``param`` its path in error messages. A Validator binds the first three once (functools.partial).
_Check = Callable[[Field, str, Limits, Mapping[str, Any]], Any]


def _missing(f: Field, param: str) -> Any:
    """The value of an absent (or null) field: its default, or a 422 when it is required."""
    if f.required:
        raise RequestError(UNPROCESSABLE, f"field {param!r} is required", param=param)
    return f.default


def _check_texts(f: Field, param: str, limits: Limits, body: Mapping[str, Any]) -> Any:
    value = body.get(f.name)
    if value is None and not f.required:
        return f.default
    if f.token_ids and isinstance(value, list) and value and isinstance(value[0], (int, list)):
        if not isinstance(value[0], bool):
            raise RequestError(
                UNPROCESSABLE, "token-id inputs are not supported; send the texts as strings", param=param
            )
    return _texts(value, param, limits)


def _check_one_text(f: Field, param: str, limits: Limits, body: Mapping[str, Any]) -> Any:
    value = body.get(f.name)
    if value is None and (not f.required or f.name not in body):  # a required text's null is a type error
        return _missing(f, param)
    return _check_text(value, param, limits)


def _check_sentences(f: Field, param: str, limits: Limits, body: Mapping[str, Any]) -> Any:
    value = body.get(f.name)
    if value is None and not f.required:
        return f.default
    if value is None or isinstance(value, str):
        raise RequestError(UNPROCESSABLE, f"{param} must be a non-empty list of strings", param=param)
    sentences = _texts(value, param, limits)
    if len(sentences) + 1 > limits.max_batch:
        raise RequestError(
            PAYLOAD_TOO_LARGE,
            f"{param} has {len(sentences)} texts; with the source sentence the limit is "
            f"{limits.max_batch - 1} (server option --max-batch)",
            error_type="too_many_inputs",
            param=param,
            limit=limits.max_batch - 1,
            value=len(sentences),
        )
    return sentences


def _check_bool(f: Field, param: str, limits: Limits, body: Mapping[str, Any]) -> Any:
    value = body.get(f.name)
    if value is None:
        return _missing(f, param)
    if not isinstance(value, bool):
        raise _wrong_type(param, "true or false", value)
    return value


def _check_dimension(f: Field, param: str, limits: Limits, body: Mapping[str, Any]) -> Any:
    value = body.get(f.name)
    if value is None:
        return _missing(f, param)
    sent = value
    if isinstance(value, float) and value.is_integer():  # JSON Schema: 64.0 is an integer
        if not 1 <= value <= limits.dim:  # checked as a float: int(1e300) is an integer orjson cannot write
            raise _out_of_range(param, sent, limits)
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(param, "an integer", value)
    if not 1 <= value <= limits.dim:
        raise _out_of_range(param, sent, limits)
    return value


def _out_of_range(param: str, value: float, limits: Limits) -> RequestError:
    return RequestError(
        UNPROCESSABLE,
        f"{param}={shown(value)} is out of range; the model has {limits.dim} dimensions, use 1..{limits.dim}",
        param=param,
        limit=limits.dim,
        value=value,
    )


def _check_prompt_name(f: Field, param: str, limits: Limits, body: Mapping[str, Any]) -> Any:
    value = body.get(f.name)
    if value is None:
        return _missing(f, param)
    if not isinstance(value, str):
        raise _wrong_type(param, "a string", value)
    if value not in limits.prompt_names:
        known = ", ".join(repr(n) for n in limits.prompt_names) or "none (this model has no prompts)"
        raise RequestError(UNPROCESSABLE, f"unknown {param} {shown(value)}; known prompt names: {known}", param=param)
    return value


def _check_string(f: Field, param: str, limits: Limits, body: Mapping[str, Any]) -> Any:
    value = body.get(f.name)
    if value is None:
        return _missing(f, param)
    if not isinstance(value, str):
        raise _wrong_type(param, "a string", value)
    return value


def _check_enum(f: Field, param: str, limits: Limits, body: Mapping[str, Any]) -> Any:
    value = body.get(f.name)
    if value is None:
        return _missing(f, param)
    if value not in f.values:
        allowed = " or ".join(repr(v) for v in f.values)
        raise RequestError(UNPROCESSABLE, f"{param} must be {allowed}, got {shown(value)}", param=param)
    return value


def _check_id(value: Any, param: str, limits: Limits) -> int:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:  # JSON Schema: 7.0 is an integer
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(param, "a token id (an integer)", value)
    top = limits.vocab_size
    if value < 0 or (top is not None and value >= top):
        bound = f"0..{top - 1}" if top is not None else "0 or more"
        raise RequestError(
            UNPROCESSABLE,
            f"{param}={shown(value)} is not a token id of this model; use {bound}",
            param=param,
            limit=None if top is None else top - 1,
            value=value,
        )
    return value


def _check_id_list(value: list[Any], param: str, limits: Limits) -> list[int]:
    if not value:
        raise RequestError(UNPROCESSABLE, f"{param} is an empty list; send at least one token id", param=param, value=0)
    if len(value) > limits.max_input_chars:
        raise RequestError(
            PAYLOAD_TOO_LARGE,
            f"{param} has {len(value)} token ids; the limit is {limits.max_input_chars} per sequence "
            "(server option --max-input-chars)",
            error_type="input_too_long",
            param=param,
            limit=limits.max_input_chars,
            value=len(value),
        )
    return [_check_id(v, f"{param}[{i}]", limits) for i, v in enumerate(value)]


def _check_token_ids(f: Field, param: str, limits: Limits, body: Mapping[str, Any]) -> Any:
    """One sequence of ids (``[1, 2]``) or a batch (``[[1, 2], [3]]``), always returned as a batch."""
    value = body.get(f.name)
    if value is None and not f.required:
        return f.default
    if not isinstance(value, list):
        raise _wrong_type(param, "a list of token ids or a list of such lists", value)
    if not value or not isinstance(value[0], list):
        return [_check_id_list(value, param, limits)]
    if len(value) > limits.max_batch:
        raise RequestError(
            PAYLOAD_TOO_LARGE,
            f"{param} has {len(value)} sequences; the limit is {limits.max_batch} per request (server option --max-batch)",
            error_type="too_many_inputs",
            param=param,
            limit=limits.max_batch,
            value=len(value),
        )
    for i, item in enumerate(value):
        if not isinstance(item, list):
            raise _wrong_type(f"{param}[{i}]", "a list of token ids", item)
    return [_check_id_list(item, f"{param}[{i}]", limits) for i, item in enumerate(value)]


# How each kind reads in an object's "must be an object {...}" message.
_SHAPES: dict[Kind, str] = {
    "texts": "str | [str]",
    "text": "str",
    "sentences": "[str]",
    "bool": "bool",
    "dimension": "int",
    "prompt-name": "str",
    "string": "str",
    "enum": "str",
    "object": "{...}",
    "token-ids": "[int] | [[int]]",
}


def _check_object(
    f: Field,
    param: str,
    limits: Limits,
    known: frozenset[str],
    nested: tuple[tuple[str, Callable[[Mapping[str, Any]], Any]], ...],
    body: Mapping[str, Any],
) -> Any:
    value = body.get(f.name)
    if value is None and not f.required:
        return f.default
    if not isinstance(value, dict):
        shape = ", ".join(f'"{g.name}": {_SHAPES[g.kind]}' for g in f.fields)
        kind = json_type(value)
        raise RequestError(UNPROCESSABLE, f"{param} must be an object {{{shape}}}, got {kind}", param=param, value=kind)
    for key in value:
        if key not in known:
            raise RequestError(
                UNPROCESSABLE,
                f"unknown field {param}.{_key(key)}; allowed: {', '.join(name for name, _ in nested)}",
                param=f"{param}.{_key(key)}",
            )
    return {name: check(value) for name, check in nested}


def _compile(f: Field, param: str, limits: Limits) -> Callable[[Mapping[str, Any]], Any]:
    """``check(container) -> value`` for field ``f`` at path ``param``."""
    if f.kind == "object":
        nested = tuple((g.name, _compile(g, f"{param}.{g.name}", limits)) for g in f.fields)
        known = frozenset(g.name for g in f.fields)
        return functools.partial(_check_object, f, param, limits, known, nested)
    return functools.partial(_CHECKS[f.kind], f, param, limits)


_CHECKS: dict[Kind, _Check] = {
    "texts": _check_texts,
    "text": _check_one_text,
    "sentences": _check_sentences,
    "bool": _check_bool,
    "dimension": _check_dimension,
    "prompt-name": _check_prompt_name,
    "string": _check_string,
    "enum": _check_enum,
    "token-ids": _check_token_ids,
}


class Validator:
    """Validates request bodies of one :class:`Body` against fixed :class:`Limits` (built once per route).

    Example:
        >>> from staticst.server._routes import EMBED_BODY
        >>> validate = Validator(EMBED_BODY, Limits(max_batch=8, max_input_chars=100, max_body_bytes=4096, dim=256))
        >>> validate({"inputs": "hello"})
        {'inputs': ['hello'], 'truncate_dim': None, 'truncate': True, 'normalize': True, 'prompt_name': None}
    """

    __slots__ = ("_allowed", "_known", "_steps", "body", "limits")

    def __init__(self, body: Body, limits: Limits) -> None:
        """Precompute the checks of ``body``.

        Args:
            body: The request body description.
            limits: The service limits.
        """
        self.body = body
        self.limits = limits
        self._known = frozenset(body.names)
        self._allowed = ", ".join(body.names)
        self._steps = tuple((f.name, _compile(f, f.name, limits)) for f in body.checked)

    def __call__(self, data: Any) -> Args:
        """Validate one decoded JSON body.

        Args:
            data: The decoded JSON body.

        Returns:
            Every field's value (its default when absent) by field name.

        Raises:
            RequestError: When the body is invalid or exceeds a limit.
        """
        if not isinstance(data, dict):
            kind = json_type(data)
            raise RequestError(UNPROCESSABLE, f"the request body must be a JSON object, got {kind}", value=kind)
        known = self._known
        for key in data:
            if key not in known:
                raise RequestError(
                    UNPROCESSABLE, f"unknown field {shown(key)}; allowed fields: {self._allowed}", param=_key(key)
                )
        return {name: check(data) for name, check in self._steps}


def parse(body: Body, data: Any, limits: Limits) -> Args:
    """Validate a decoded JSON body against a body description (a one-off :class:`Validator`).

    Args:
        body: The request body description.
        data: The decoded JSON body.
        limits: The service limits.

    Returns:
        Every field's value (its default when absent) by field name.

    Raises:
        RequestError: When the body is invalid or exceeds a limit.
    """
    return Validator(body, limits)(data)
