"""Reading and writing safetensors files: a strict header parser and private-memory tensor reads.

The reader parses the safetensors header itself (8-byte little-endian length + JSON) and accepts exactly
the files the reference ``safetensors.safe_open`` accepts (``tests/test_io_fuzz.py`` checks that on
generated malformed files): a UTF-8 JSON object at most 100 MB, nested at most 127 levels; every
tensor an object (or a 3-item array) with a known ``dtype``, a ``shape`` of non-negative 64-bit integers
and two ``data_offsets`` integers; ``__metadata__`` absent, ``null`` or an object of strings; the tensors,
sorted by offsets, covering the data region from byte 0 to the end of the file with no gap, overlap or
trailing byte, each exactly ``prod(shape) * itemsize`` bytes. Anything else is
:class:`~staticst.errors.CorruptModelError` naming the file and what is wrong.

Tensors are read into private memory (``numpy.fromfile``), not memory-mapped: a process never dies with
SIGBUS because a model file was truncated or overwritten in place while it runs (``docs/reliability.md``).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from staticst.errors import CorruptModelError, ModelNotFoundError

__all__ = ["SafetensorsFile", "TensorInfo", "read_safetensors", "write_safetensors"]

# dtype -> item size in bytes, for every dtype safetensors knows (header validation).
ITEM_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
}  # fmt: skip
# The dtypes staticst reads into numpy.
_DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
MAX_HEADER = 100_000_000
MAX_DEPTH = 127  # serde_json's recursion limit, as safetensors applies it
_U64 = 1 << 64
_FIX = "The file is truncated or corrupt: download or save the model again."


class _Bad:
    """A JSON number safetensors does not read as an unsigned integer (a float, or a negative literal)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _parse_int(text: str) -> int | _Bad:
    return _Bad(text) if text.startswith("-") else int(text)


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives inside a safetensors file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class SafetensorsFile:
    """A parsed, validated safetensors header plus the path; tensors are read on demand."""

    path: Path
    data_offset: int
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]

    def get(self, name: str) -> np.ndarray:
        """Return tensor ``name`` as a numpy array in private memory.

        Raises:
            CorruptModelError: The tensor's dtype is not one staticst reads, or the file changed since its
                header was read.
        """
        info = self.tensors[name]
        dtype = _DTYPES.get(info.dtype)
        if dtype is None:
            raise CorruptModelError(
                f"Tensor {name!r} in {self.path} has dtype {info.dtype}, which staticst cannot read. "
                f"Supported: {', '.join(sorted(_DTYPES))}. Re-save the table as float32, float16 or int8."
            )
        count = math.prod(info.shape)
        if count == 0:
            return np.zeros(info.shape, dtype=dtype)
        try:
            arr = np.fromfile(self.path, dtype=dtype, count=count, offset=self.data_offset + info.start)
        except (OSError, ValueError) as exc:
            raise CorruptModelError(f"Could not read tensor {name!r} from {self.path}: {exc}. {_FIX}") from exc
        if arr.size != count:
            raise CorruptModelError(f"{self.path} ended inside tensor {name!r} (it changed while being read). {_FIX}")
        return arr.reshape(info.shape)


def _depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value (an object or array is one level), iteratively."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _valid_strings(value: Any) -> bool:
    """No lone surrogate in any key or string: safetensors requires valid UTF-8 text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _u64(value: Any) -> int | None:
    """``value`` as safetensors reads a ``usize``: a non-negative JSON integer below 2**64, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U64:
        return None
    return value


def _tensor(path: Path, name: str, entry: Any) -> TensorInfo:
    where = f"{path}: tensor {name!r}"
    if isinstance(entry, list):  # serde also reads a struct from a [dtype, shape, data_offsets] array
        if len(entry) != 3:
            raise CorruptModelError(f"{where} is an array of {len(entry)} items, not [dtype, shape, offsets]. {_FIX}")
        entry = dict(zip(("dtype", "shape", "data_offsets"), entry, strict=True))
    if not isinstance(entry, dict):
        raise CorruptModelError(f"{where} is a JSON {type(entry).__name__}, not an object. {_FIX}")
    missing = [key for key in ("dtype", "shape", "data_offsets") if key not in entry]
    if missing:
        raise CorruptModelError(f"{where} has no {missing[0]!r}. {_FIX}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in ITEM_SIZES:
        raise CorruptModelError(f"{where} has an unknown dtype {dtype!r}; safetensors dtypes: {sorted(ITEM_SIZES)}. {_FIX}")
    dims = [_u64(d) for d in shape] if isinstance(shape, list) else [None]
    if not isinstance(shape, list) or any(d is None for d in dims):
        raise CorruptModelError(f"{where} has shape {shape!r}; a shape is a list of non-negative integers. {_FIX}")
    ends = [_u64(o) for o in offsets] if isinstance(offsets, list) else [None]
    if not isinstance(offsets, list) or len(offsets) != 2 or any(o is None for o in ends):
        raise CorruptModelError(f"{where} has data_offsets {offsets!r}; expected [start, end] integers. {_FIX}")
    return TensorInfo(name, dtype, tuple(d for d in dims if d is not None), ends[0] or 0, ends[1] or 0)


def _layout_check(path: Path, tensors: list[TensorInfo], data_size: int) -> None:
    """Sorted by offsets, the tensors tile the data region exactly: no hole, overlap or trailing byte."""
    position = 0
    for info in sorted(tensors, key=lambda t: (t.start, t.end)):
        if info.start != position or info.end < info.start:
            raise CorruptModelError(
                f"{path}: tensor {info.name!r} claims bytes {info.start}..{info.end}, but the previous tensor ends at "
                f"{position} (a gap or an overlap). {_FIX}"
            )
        count = math.prod(info.shape)
        nbytes = count * ITEM_SIZES[info.dtype]
        if count >= _U64 or nbytes >= _U64:
            raise CorruptModelError(f"{path}: tensor {info.name!r} has a shape {info.shape} too large to exist. {_FIX}")
        if info.end - info.start != nbytes:
            raise CorruptModelError(
                f"{path}: tensor {info.name!r} claims {info.end - info.start} bytes for shape {info.shape} of "
                f"{info.dtype} ({nbytes} bytes). {_FIX}"
            )
        position = info.end
    if position != data_size:
        raise CorruptModelError(
            f"{path}: the tensors cover {position} bytes of data but the file holds {data_size} after the header "
            f"(truncated, or trailing bytes). {_FIX}"
        )


def read_safetensors(path: Path) -> SafetensorsFile:
    """Parse and validate the header of a safetensors file (see the module docstring for the rules).

    Args:
        path: The ``.safetensors`` file.

    Returns:
        The parsed file description.

    Raises:
        ModelNotFoundError: The file does not exist.
        CorruptModelError: The file is one ``safetensors.safe_open`` would refuse.
    """
    if not path.is_file():
        raise ModelNotFoundError(f"Missing weights file {path}.")
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(0)
            if size < 8:
                raise CorruptModelError(f"{path} is {size} bytes, too small to be a safetensors file. {_FIX}")
            (header_len,) = struct.unpack("<Q", handle.read(8))
            if header_len > MAX_HEADER or 8 + header_len > size:
                raise CorruptModelError(
                    f"{path} declares a {header_len}-byte header but the file holds {size} bytes "
                    f"(at most {MAX_HEADER} are allowed). {_FIX}"
                )
            raw = handle.read(header_len)
    except OSError as exc:
        raise CorruptModelError(f"Could not read {path}: {exc}.") from exc
    try:
        text = raw.decode("utf-8")
        header = json.loads(text, parse_int=_parse_int, parse_float=_Bad, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptModelError(f"{path} has an unreadable safetensors header ({type(exc).__name__}: {exc}). {_FIX}") from None
    if not isinstance(header, dict):
        raise CorruptModelError(f"{path} has a safetensors header that is a JSON {type(header).__name__}, not an object. {_FIX}")
    if _depth(header) > MAX_DEPTH or not _valid_strings(header):
        raise CorruptModelError(f"{path} has a safetensors header nested too deeply or holding invalid text. {_FIX}")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and (
        not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
    ):
        raise CorruptModelError(f"{path}: '__metadata__' must be an object of strings, got {metadata!r:.80}. {_FIX}")
    tensors = [_tensor(path, str(name), entry) for name, entry in header.items()]
    data_offset = 8 + header_len
    _layout_check(path, tensors, size - data_offset)
    return SafetensorsFile(path, data_offset, {t.name: t for t in tensors}, dict(metadata or {}))


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write numpy arrays with the reference ``safetensors`` library (so any reader accepts the file)."""
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), metadata=metadata)
