"""Reading and writing model files: a memory-mapped safetensors reader and the folder writer.

The reader parses the safetensors header itself (8-byte little-endian length + JSON) and maps the
tensors it needs straight from the file with ``numpy.memmap``: no copy, no torch, and every
truncation or inconsistency is reported as :class:`~staticst.errors.CorruptModelError`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from staticst.errors import CorruptModelError, ModelNotFoundError

__all__ = ["SafetensorsFile", "TensorInfo", "read_safetensors", "write_safetensors"]

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
_MAX_HEADER = 100 * 1024 * 1024


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
    """A parsed safetensors header plus the path; tensors are mapped on demand."""

    path: Path
    data_offset: int
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]

    def get(self, name: str) -> np.ndarray:
        """Return tensor ``name`` as a read-only memory-mapped array (a copy for zero-size tensors).

        Raises:
            CorruptModelError: The tensor's dtype is not supported.
        """
        info = self.tensors[name]
        dtype = _DTYPES.get(info.dtype)
        if dtype is None:
            raise CorruptModelError(
                f"Tensor {name!r} in {self.path} has dtype {info.dtype}, which staticst cannot read. "
                f"Supported: {', '.join(sorted(_DTYPES))}. Re-save the table as float32, float16 or int8."
            )
        count = int(np.prod(info.shape, dtype=np.int64)) if info.shape else 1
        if count == 0:
            return np.zeros(info.shape, dtype=dtype)
        arr = np.memmap(self.path, dtype=dtype, mode="r", offset=self.data_offset + info.start, shape=(count,))
        return np.asarray(arr).reshape(info.shape)


def read_safetensors(path: Path) -> SafetensorsFile:
    """Parse and validate the header of a safetensors file.

    Args:
        path: The ``.safetensors`` file.

    Returns:
        The parsed file description.

    Raises:
        ModelNotFoundError: The file does not exist.
        CorruptModelError: The file is truncated, its header is not valid JSON, or tensor byte ranges
            are inconsistent with their dtype/shape or the file size.
    """
    if not path.is_file():
        raise ModelNotFoundError(f"Missing weights file {path}.")
    size = path.stat().st_size
    fix = "The file is truncated or corrupt: download or save the model again."
    if size < 8:
        raise CorruptModelError(f"{path} is {size} bytes, too small to be a safetensors file. {fix}")
    with path.open("rb") as handle:
        (header_len,) = struct.unpack("<Q", handle.read(8))
        if header_len > _MAX_HEADER or 8 + header_len > size:
            raise CorruptModelError(
                f"{path} declares a {header_len}-byte header but the file holds {size} bytes. {fix}"
            )
        raw = handle.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptModelError(f"{path} has an unreadable safetensors header ({exc}). {fix}") from exc
    if not isinstance(header, dict):
        raise CorruptModelError(f"{path} has a safetensors header that is not a JSON object. {fix}")
    data_offset = 8 + header_len
    metadata = header.pop("__metadata__", None) or {}
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        try:
            dtype = str(entry["dtype"])
            shape = tuple(int(d) for d in entry["shape"])
            start, end = (int(x) for x in entry["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptModelError(f"{path}: malformed header entry for tensor {name!r} ({exc}). {fix}") from exc
        itemsize = _DTYPES[dtype].itemsize if dtype in _DTYPES else None
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if start < 0 or end < start or (itemsize is not None and end - start != count * itemsize):
            raise CorruptModelError(
                f"{path}: tensor {name!r} claims bytes {start}..{end} for shape {shape} of {dtype}. {fix}"
            )
        if data_offset + end > size:
            raise CorruptModelError(
                f"{path}: tensor {name!r} ends at byte {data_offset + end} but the file holds {size} bytes. {fix}"
            )
        tensors[name] = TensorInfo(name, dtype, shape, start, end)
    return SafetensorsFile(path, data_offset, tensors, {str(k): str(v) for k, v in dict(metadata).items()})


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write numpy arrays with the reference ``safetensors`` library (so any reader accepts the file)."""
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), metadata=metadata)
