"""The safetensors reader accepts exactly what ``safetensors.safe_open`` accepts, on generated malformed files.

Every file is a valid one (1-3 tensors, optional metadata) with up to three random corruptions of its
header, its length field or its data; the reference decides. Where both accept, the tensors read are equal.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from staticst.errors import CorruptModelError
from staticst.persistence.io import ITEM_SIZES, read_safetensors

_JSON_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.lists(st.integers(0, 9), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1"}


@st.composite
def _files(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    """A safetensors file as bytes (possibly corrupted), and the header it was built from."""
    n = draw(st.integers(0, 3))
    header: dict[str, Any] = {}
    start = 0
    for i in range(n):
        dtype = draw(st.sampled_from(sorted(ITEM_SIZES)))
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        size = math.prod(shape) * ITEM_SIZES[dtype]
        header[f"t{i}"] = {"dtype": dtype, "shape": shape, "data_offsets": [start, start + size]}
        start += size
    if draw(st.booleans()):
        header["__metadata__"] = {"format": "np"}
    data = bytes(draw(st.binary(min_size=start, max_size=start)))
    names = [k for k in header if k != "__metadata__"]
    raw_edits: list[tuple[str, str]] = []
    length_delta = 0
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["dtype", "shape", "offset", "data", "meta", "entry", "field", "text", "length", "order"]))
        editable = [k for k in names if isinstance(header.get(k), dict)]
        name = draw(st.sampled_from(editable)) if editable else None
        if kind == "dtype" and name:
            header[name]["dtype"] = draw(st.one_of(st.sampled_from(["f32", "F33", "BF16", "U64", ""]), _JSON_JUNK))
        elif kind == "shape" and name:
            shape = list(header[name]["shape"]) if isinstance(header[name].get("shape"), list) else [1]
            shape = shape or [1]
            shape[draw(st.integers(0, len(shape) - 1))] = draw(_JSON_JUNK)
            header[name]["shape"] = draw(st.sampled_from([shape, None, "x", [2**64, 2**64], [2**32, 2**32]]))
        elif kind == "offset" and name:
            offsets = list(header[name]["data_offsets"]) if isinstance(header[name].get("data_offsets"), list) else [0, 0]
            offsets = (offsets + [0, 0])[:2] if all(isinstance(o, int) for o in offsets) else [0, 0]
            which = draw(st.integers(0, 1))
            offsets[which] = draw(st.one_of(st.integers(-3, 3).map(lambda d, o=offsets[which]: o + d), _JSON_JUNK))
            header[name]["data_offsets"] = draw(st.sampled_from([offsets, offsets + [0], offsets[:1], offsets[::-1]]))
        elif kind == "data":
            data = data + b"\0" * draw(st.integers(1, 5)) if draw(st.booleans()) else data[: draw(st.integers(0, len(data)))]
        elif kind == "meta":
            header["__metadata__"] = draw(st.one_of(_JSON_JUNK, st.dictionaries(st.text(max_size=3), _JSON_JUNK, max_size=2)))
        elif kind == "entry" and name:
            entry = {"dtype": "F32", "shape": [], "data_offsets": [0, 4], **header[name]}
            header[name] = draw(
                st.sampled_from(
                    [[entry["dtype"], entry["shape"], entry["data_offsets"]], [entry["dtype"], entry["shape"]], 7, "x", None]
                )
            )
        elif kind == "field" and name:
            if draw(st.booleans()):
                header[name].pop(draw(st.sampled_from(["dtype", "shape", "data_offsets"])), None)
            else:
                depth = draw(st.integers(1, 140))
                header[name]["extra"] = json.loads("[" * depth + "]" * depth)
        elif kind == "text":
            raw_edits.append(
                draw(st.sampled_from([("{", " \n{"), ("}", "} "), ("}", "}x"), ("}", "}\0"), (":0,", ":-0,"), (":0,", ":0e0,"),
                                      ("}", ', "z": NaN}'), ('"t0"', '"\\ud800"'), ('"t0"', '"t1"')]))  # fmt: skip
            )
        elif kind == "length":
            length_delta = draw(st.sampled_from([-2, -1, 1, 3, 10**9]))
        elif kind == "order":
            header = dict(reversed(list(header.items())))
    text = json.dumps(header)
    for old, new in raw_edits:
        text = text.replace(old, new, 1)
    raw = text.encode("utf-8", "surrogatepass")
    return struct.pack("<Q", max(0, len(raw) + length_delta)) + raw + data, header


def _reference(path: Path) -> dict[str, np.ndarray] | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as handle:
            keys = list(handle.keys())
            tensors = {}
            for key in keys:
                if handle.get_slice(key).get_dtype() in _NUMPY_DTYPES:
                    tensors[key] = handle.get_tensor(key)
            return tensors
    except Exception:  # noqa: BLE001 - any refusal by the reference is what we compare with
        return None


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(_files())
def test_reader_agrees_with_safe_open(tmp_path: Path, generated: tuple[bytes, dict[str, Any]]) -> None:
    blob, _ = generated
    path = tmp_path / "model.safetensors"
    path.write_bytes(blob)
    expected = _reference(path)
    try:
        ours = read_safetensors(path)
    except CorruptModelError:
        assert expected is None, "refused a file safe_open accepts"
        return
    assert expected is not None, f"accepted a file safe_open refuses: {blob[:200]!r}"
    assert set(ours.tensors) >= set(expected)
    for name, reference in expected.items():
        got = ours.get(name)
        assert got.dtype == reference.dtype and got.shape == reference.shape
        assert got.tobytes() == reference.tobytes()


@pytest.mark.parametrize(
    "header, data",
    [
        ({"embeddings": {"dtype": "F32", "shape": [2, 2], "data_offsets": [4, 20]}}, bytes(20)),  # a hole at the start
        ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, bytes(16)),
        ({"a": {"dtype": "F32", "shape": ["2", 2], "data_offsets": [0, 16]}}, bytes(16)),
        ({"a": {"dtype": "F32", "shape": [2.0, 2], "data_offsets": [0, 16]}}, bytes(16)),
        ({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, bytes(18)),  # trailing data
        ({"__metadata__": [1], "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, bytes(16)),
        ({"a": {"dtype": "F32", "shape": [-1, 2], "data_offsets": [0, 16]}}, bytes(16)),
        ({"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 16]}}, bytes(16)),
    ],
)
def test_the_issue_cases_are_refused(tmp_path: Path, header: dict[str, Any], data: bytes) -> None:
    raw = json.dumps(header).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    assert _reference(path) is None
    with pytest.raises(CorruptModelError, match=str(path)):
        read_safetensors(path)


def test_deep_headers_are_corrupt_not_recursion_errors(tmp_path: Path) -> None:
    raw = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(CorruptModelError, match="unreadable safetensors header|nested too deeply"):
        read_safetensors(path)
