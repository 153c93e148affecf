"""The OpenAPI request schemas and the validators describe the same bodies (no server, no model needed).

The accepted fields are found by *probing the validators* (an unknown field is a 422 naming it) and the
documented ones are read from the generated OpenAPI document, so a field added to one but not the other,
a required flag or a limit that differs, fails here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed: pip install 'staticst[server]'")
jsonschema = pytest.importorskip("jsonschema")

from staticst.server._errors import OPENAI_ERRORS, TEI_ERRORS, RequestError  # noqa: E402
from staticst.server._media import FORMATS  # noqa: E402
from staticst.server._openapi import body_schema, build_openapi  # noqa: E402
from staticst.server._routes import ROUTES  # noqa: E402
from staticst.server._spec import KINDS, Body, Field, Get, Post, dispatch_field  # noqa: E402
from staticst.server._validation import Limits, Validator  # noqa: E402

LIMITS = Limits(
    max_batch=8, max_input_chars=50, max_body_bytes=10_000, dim=16, prompt_names=("passage", "query"), vocab_size=30
)
POSTS = [r for r in ROUTES if isinstance(r, Post)]
SHARED_PATHS = sorted({r.path for r in POSTS if sum(q.path == r.path for q in POSTS) > 1})
# Names a validator might accept without the spec knowing: every documented name plus common API names.
CANDIDATES = {f.name for r in POSTS for f in r.body.fields} | {
    "text",
    "texts",
    "sentences",
    "source_sentence",
    "query",
    "prompt",
    "batch_size",
    "normalize_embeddings",
    "precision",
    "truncation_direction",
    "encoding",
    "options",
    "input_ids",
    "model",
    "user",
    "raw_scores",
}
# Values tried in every field: for each, the schema and the validator must agree on valid / invalid.
PROBES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    16,
    17,
    2.0,
    2.5,
    -1,
    "",
    "a",
    "query",
    "passage",
    "float",
    "base64",
    "x" * 51,
    [],
    ["a"],
    ["a", "b"],
    ["a"] * 7,
    ["a"] * 8,
    ["a"] * 9,
    ["a", 1],
    [1, 2],
    [[1, 2]],
    ["x" * 51],
    {},
    {"source_sentence": "a", "sentences": ["b"]},
    {"source_sentence": "a", "sentences": ["b"] * 8},
    {"source_sentence": "a"},
    {"source_sentence": "a", "sentences": ["b"], "other": 1},
    {"t": "a"},
    "left",
    "Right",
    "up",
    [0],
    [29],
    [30],
    [-1],
    [1.0],
    [True],
    [1] * 50,
    [1] * 51,
    [[1], [2, 3]],
    [[]],
    [[1]] * 8,
    [[1]] * 9,
    [[1, "a"]],
    [[1], 2],
    [1, [2]],
]


def request_schema(doc: dict[str, Any], route: Post) -> dict[str, Any]:
    """The route's request body schema; on a path several routes share, its alternative of the ``oneOf``."""
    schema = doc["paths"][route.path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    refs = [s["$ref"] for s in schema["oneOf"]] if "oneOf" in schema else [schema["$ref"]]
    [ref] = [r for r in refs if r.rsplit("/", 1)[1] == route.body.name]
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]


def example(schema: dict[str, Any], objects: bool = False) -> Any:
    """A small valid instance of a request schema, read from the schema alone (``objects``: with the optional
    object-valued fields too, so that their nested fields can be probed)."""
    if "oneOf" in schema:
        return example(schema["oneOf"][0], objects)
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    kind = schema["type"][0] if isinstance(schema["type"], list) else schema["type"]
    if kind == "object":
        props = schema["properties"]
        names = [n for n in props if n in schema.get("required", []) or (objects and _is_object(props[n]))]
        return {name: example(props[name], objects) for name in names}
    if kind == "array":
        return [example(schema["items"])] * schema.get("minItems", 0)
    return {"string": "a", "integer": schema.get("minimum", 1), "boolean": True}[kind]


def outcome(validate: Validator, body: Any) -> RequestError | None:
    try:
        validate(body)
    except RequestError as exc:
        return exc
    return None


def is_unknown(error: RequestError | None, param: str) -> bool:
    return error is not None and error.param == param and error.message.startswith("unknown field")


def accepted_fields(
    validate: Validator, minimal: dict[str, Any], documented: set[str], path: tuple[str, ...] = ()
) -> set[str]:
    """The names among ``documented`` and :data:`CANDIDATES` that the validator accepts at ``path`` in ``minimal``.

    Probed (an unknown field is a 422 naming it), not read from the spec.
    """
    names = set()
    for name in CANDIDATES | documented | set(_at(minimal, path)):
        body = _with(minimal, path, name, _at(minimal, path).get(name))
        if not is_unknown(outcome(validate, body), ".".join((*path, name))):
            names.add(name)
    return names


def required_fields(validate: Validator, minimal: dict[str, Any], path: tuple[str, ...] = ()) -> set[str]:
    """The fields whose absence from a valid body the validator reports (naming the field)."""
    assert outcome(validate, minimal) is None
    required = set()
    for name in _at(minimal, path):
        body = _with(minimal, path, name, _DROP)
        error = outcome(validate, body)
        if error is not None and error.param == ".".join((*path, name)):
            required.add(name)
    return required


_DROP = object()


def _at(body: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        body = body[key]
    return body


def _with(body: dict[str, Any], path: tuple[str, ...], name: str, value: Any) -> dict[str, Any]:
    if path:
        return {**body, path[0]: _with(body[path[0]], path[1:], name, value)}
    out = {k: v for k, v in body.items() if k != name}
    if value is not _DROP:
        out[name] = value
    return out


def _is_object(schema: dict[str, Any]) -> bool:
    return schema.get("type") in ("object", ["object", "null"])


def nested_objects(schema: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """``(path, object schema)`` for the body and each nested object property."""
    found = [(path, schema)]
    for name, prop in schema["properties"].items():
        if prop.get("type") == "object" or prop.get("type") == ["object", "null"]:
            found += nested_objects(prop, (*path, name))
    return found


# ----------------------------------------------------------------------------- the live route table
@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build_openapi(ROUTES, LIMITS, "test-model")


@pytest.mark.parametrize("route", POSTS, ids=[r.path for r in POSTS])
def test_documented_fields_are_exactly_the_accepted_fields(doc: dict[str, Any], route: Post) -> None:
    schema = request_schema(doc, route)
    validate = Validator(route.body, LIMITS)
    minimal = example(schema, objects=True)
    objects = nested_objects(schema)
    assert len(objects) >= 1
    for path, obj in objects:
        assert obj["additionalProperties"] is False, path
        assert accepted_fields(validate, minimal, set(obj["properties"]), path) == set(obj["properties"]), path
        assert required_fields(validate, minimal, path) == set(obj["required"]), path


@pytest.mark.parametrize("route", POSTS, ids=[r.path for r in POSTS])
def test_schema_and_validator_agree_on_every_value_of_every_field(doc: dict[str, Any], route: Post) -> None:
    schema = request_schema(doc, route)
    checker = jsonschema.Draft202012Validator(schema)
    validate = Validator(route.body, LIMITS)
    minimal = example(schema, objects=True)
    for path, obj in nested_objects(schema):
        for name in obj["properties"]:
            for value in PROBES:
                body = _with(minimal, path, name, value)
                documented = checker.is_valid(body)
                accepted = outcome(validate, body) is None
                assert documented == accepted, (route.path, path, name, value, outcome(validate, body))
    full = {name: example(prop) for name, prop in schema["properties"].items()}  # every optional field set too
    assert checker.is_valid(full) and outcome(validate, full) is None


def test_every_route_is_in_the_document_as_in_the_table(doc: dict[str, Any]) -> None:
    listed = {(r.path, "post") for r in POSTS} | {(r.path, "get") for r in ROUTES if isinstance(r, Get) and r.schema}
    assert {(path, method) for path, ops in doc["paths"].items() for method in ops} == listed
    assert "/openapi.json" not in doc["paths"]  # served, but not an operation of the document itself
    for route in POSTS:
        assert request_schema(doc, route) == body_schema(route.body, LIMITS)
        assert "application/json" in route.formats and set(route.formats) <= set(FORMATS)
        assert set(doc["paths"][route.path]["post"]["responses"]["200"]["content"]) == set(route.formats)
        accept = doc["paths"][route.path]["post"]["parameters"][0]["schema"]["pattern"]
        assert all((fmt in accept) == (fmt in route.formats) for fmt in FORMATS)
        error_ref = doc["paths"][route.path]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
        assert error_ref == {"$ref": f"#/components/schemas/{route.errors.schema_name}"}


def test_error_bodies_match_their_documented_schemas() -> None:
    errors = [
        RequestError(422, "x must be a string", param="x", value="integer"),
        RequestError(413, "too many", error_type="too_many_inputs", param="inputs", limit=8, value=9),
        RequestError(400, "not JSON", error_type="invalid_json"),
    ]
    for style in (TEI_ERRORS, OPENAI_ERRORS):
        for error in errors:
            jsonschema.validate(style.body(error), style.schema)


# ----------------------------------------------------------------------------- edits to a spec reach both
def _table_with(route: Post, body: Body) -> tuple[Post, dict[str, Any]]:
    """The route with another body, alone on its path (other routes of the table share its body object)."""
    changed = dataclasses.replace(route, body=body)
    table = (changed, *(r for r in ROUTES if not isinstance(r, Post)))
    return changed, request_schema(build_openapi(table, LIMITS, "m"), changed)


@pytest.mark.parametrize(
    ("route", "name"), [(r, f.name) for r in POSTS for f in r.body.fields], ids=lambda v: getattr(v, "path", v)
)
def test_a_field_removed_from_the_spec_disappears_from_both(route: Post, name: str) -> None:
    body = route.body
    smaller = dataclasses.replace(
        body,
        fields=tuple(f for f in body.fields if f.name != name),
        check_order=tuple(n for n in body.check_order if n != name),
    )
    changed, schema = _table_with(route, smaller)
    assert name not in schema["properties"] and name not in schema["required"]
    validate = Validator(changed.body, LIMITS)
    assert accepted_fields(validate, example(schema), {name, *schema["properties"]}) == set(schema["properties"])


@pytest.mark.parametrize("route", POSTS, ids=[r.path for r in POSTS])
def test_a_field_added_to_the_spec_appears_in_both(route: Post) -> None:
    extra = Field("extra_flag", "bool", "A new option.", default=False)
    body = route.body
    bigger = dataclasses.replace(
        body, fields=(*body.fields, extra), check_order=(*body.check_order, "extra_flag") if body.check_order else ()
    )
    changed, schema = _table_with(route, bigger)
    assert schema["properties"]["extra_flag"]["type"] == ["boolean", "null"]
    validate = Validator(changed.body, LIMITS)
    assert accepted_fields(validate, example(schema), set(schema["properties"])) == set(schema["properties"])
    assert validate({**example(schema), "extra_flag": True})["extra_flag"] is True
    assert validate(example(schema))["extra_flag"] is False


# ----------------------------------------------------------------------------- every kind, required or not
def _field_of(kind: str, required: bool) -> Field:
    extra: dict[str, Any] = {}
    if kind == "enum":
        extra["values"] = ("float", "base64")
    if kind == "object":
        extra["fields"] = (Field("t", "text", "A text.", required=True),)
    return Field("f", kind, "A field.", required=required, **extra)


@pytest.mark.parametrize("required", [True, False], ids=["required", "optional"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_has_a_checker_and_a_schema_that_agree(kind: str, required: bool) -> None:
    body = Body("Probe", (_field_of(kind, required), Field("anchor", "bool", "Another field.")))
    schema = body_schema(body, LIMITS)
    checker = jsonschema.Draft202012Validator(schema)
    validate = Validator(body, LIMITS)
    assert (schema["required"] == ["f"]) is required
    for value in PROBES:
        documented = checker.is_valid({"f": value})
        accepted = outcome(validate, {"f": value}) is None
        assert documented == accepted, (kind, required, value, outcome(validate, {"f": value}))
    assert checker.is_valid({}) == (outcome(validate, {}) is None) == (not required)
    assert is_unknown(outcome(validate, {"f": example(schema["properties"]["f"]), "g": 1}), "g")


# ----------------------------------------------------------------------------- routes sharing a path
def test_routes_sharing_a_path_are_told_apart_by_one_field() -> None:
    """``POST /`` and ``/invocations`` serve an embed and a similarity body: the document's ``oneOf`` and the
    dispatch agree, and every valid body of one alternative is invalid for the others."""
    assert {"/", "/invocations"} <= set(SHARED_PATHS)
    doc = build_openapi(ROUTES, LIMITS, "m")
    for path in SHARED_PATHS:
        routes = [r for r in POSTS if r.path == path]
        key, picks = dispatch_field([r.body for r in routes])
        assert key == "inputs" and picks["object"] == 1 and picks["string"] == picks["array"] == 0
        whole = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        checker = jsonschema.Draft202012Validator({**whole, "components": doc["components"]})
        for i, route in enumerate(routes):
            schema = request_schema(doc, route)
            every = {n: example(p) for n, p in schema["properties"].items()}
            for body in (example(schema), example(schema, objects=True), every):
                assert checker.is_valid(body), (path, route.body.name, body)  # exactly one alternative matches
                assert picks[{str: "string", list: "array", dict: "object"}[type(body[key])]] == i
        assert doc["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"] == {
            "anyOf": [dict(r.json_schema) for r in routes]
        }


def test_routes_that_cannot_be_told_apart_are_refused() -> None:
    texts = Body("A", (Field("inputs", "texts", "Texts.", required=True),))
    text = Body("B", (Field("inputs", "text", "A text.", required=True),))
    with pytest.raises(ValueError, match="no required field tells them apart"):
        dispatch_field([texts, text])
    optional = Body("C", (Field("inputs", "object", "O.", fields=(Field("t", "text", "T."),)),))
    with pytest.raises(ValueError, match="no required field tells them apart"):
        dispatch_field([texts, optional])
